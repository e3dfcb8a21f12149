// The streaming dialect on /ws (issue 18 item 2): a client written for the
// Fastify /ws server (seed 003: connection_established, user_message ->
// stream_start / stream_chunk / stream_end with top-level content and
// sessionId, error {sessionId, error}) talks to the real helper with only
// its URL changed (a token in the query). The client is `ws`, written the
// way that server's docs show; the language model is the scripted ACP
// agent (tests/integration/agents/), named so.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Editor, tempDir, SLOW } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = path.join(here, 'agents/scripted-agent.mjs');

/* A client of the seed server: connects with ?token=, keeps every message. */
class StreamClient {
  static async open(url, token) {
    const c = new StreamClient();
    c.ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    c.msgs = [];
    c.waiters = [];
    c.ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      c.msgs.push(m);
      for (const w of c.waiters.splice(0)) w();
    });
    c.closed = new Promise((resolve) => c.ws.on('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => { c.ws.on('open', resolve); c.ws.on('error', reject); });
    return c;
  }

  async next(pred, timeoutMs = 15000 * SLOW) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.msgs.findIndex(pred);
      if (i >= 0) return this.msgs.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no matching message; have ${JSON.stringify(this.msgs)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }

  send(obj) { this.ws.send(JSON.stringify(obj)); }

  /* user_message, then everything up to stream_end (or an error). */
  async ask(content, sessionId) {
    this.send({ type: 'user_message', content, sessionId });
    const got = { start: null, chunks: [], end: null, errors: [] };
    for (;;) {
      const m = await this.next((x) => ['stream_start', 'stream_chunk', 'stream_end', 'error'].includes(x.type));
      if (m.type === 'error') { got.errors.push(m); if (!got.start) return got; continue; }
      if (m.type === 'stream_start') got.start = m;
      if (m.type === 'stream_chunk') got.chunks.push(m);
      if (m.type === 'stream_end') { got.end = m; return got; }
    }
  }

  close() { this.ws.close(); }
}

describe('the streaming dialect', () => {
  let ed;
  let dir;
  before(async () => {
    dir = tempDir('companion-streaming-');
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        limits: { commandsPerSecond: 1000 },
        agents: { scripted: { command: process.execPath, args: [AGENT] } },
        defaultAgent: 'scripted',
      },
    });
  });
  after(async () => { await ed.stop(); });

  test('a URL-token client gets connection_established {sessionId, content} right after auth_response', async () => {
    const c = await StreamClient.open(ed.url, ed.token({ sub: 'fastify-user', scope: 'agent' }));
    const auth = await c.next((m) => m.type === 'auth_response');
    assert.equal(auth.data.success, true);
    const hello = await c.next((m) => m.type === 'connection_established');
    assert.equal(hello.sessionId, auth.data.sessionId);
    assert.equal(hello.content, 'Connected to server');
    assert.ok(c.msgs.length === 0, `unexpected: ${JSON.stringify(c.msgs)}`);
    c.close();
  });

  test('a native client (token in its first message) does not get it: native shapes are unchanged', async () => {
    const c = await ed.client({ sub: 'native', scope: 'read' });
    const r = await c.request({ type: 'ping', id: 'p' });
    assert.equal(r.type, 'pong');
    await assert.rejects(c.next((m) => m.type === 'connection_established', 300), /./);
    c.close();
  });

  test('user_message is answered by the agent as stream_start / stream_chunk / stream_end with top-level content and sessionId', async () => {
    const c = await StreamClient.open(ed.url, ed.token({ sub: 'fastify-user', scope: 'agent' }));
    const { sessionId } = await c.next((m) => m.type === 'connection_established');
    const got = await c.ask('echo hello from the streaming client, in several pieces', sessionId);
    assert.deepEqual(got.errors, []);
    assert.equal(got.start.sessionId, sessionId);
    assert.equal(got.start.content, 'Starting response stream');
    assert.ok(got.chunks.length >= 2, `${got.chunks.length} chunks`);
    for (const ch of got.chunks) {
      assert.equal(ch.sessionId, sessionId);
      assert.equal(typeof ch.content, 'string');
    }
    assert.equal(got.chunks.map((ch) => ch.content).join(''), 'hello from the streaming client, in several pieces');
    assert.equal(got.end.sessionId, sessionId);
    assert.equal(got.end.content, 'Response stream complete');
    assert.equal(got.end.data.stopReason, 'end_turn');
    c.close();
  });

  test('one conversation per (user, sessionId): later messages and a reconnect with the old sessionId go on in it; another user does not', async () => {
    const token = ed.token({ sub: 'fastify-user', scope: 'agent' });
    const a = await StreamClient.open(ed.url, token);
    const first = await a.ask('echo one', 'my-session-1');
    const second = await a.ask('echo two', 'my-session-1');
    assert.equal(second.start.data.conversation, first.start.data.conversation);
    assert.equal(second.start.data.turn, first.start.data.turn + 1);
    const other = await a.ask('echo three', 'my-session-2');
    assert.notEqual(other.start.data.conversation, first.start.data.conversation);
    a.close();
    await a.closed;
    const again = await StreamClient.open(ed.url, token);
    const resumed = await again.ask('echo four', 'my-session-1');
    assert.equal(resumed.start.data.conversation, first.start.data.conversation);
    again.close();
    const stranger = await StreamClient.open(ed.url, ed.token({ sub: 'someone-else', scope: 'agent' }));
    const theirs = await stranger.ask('echo five', 'my-session-1');
    assert.notEqual(theirs.start.data.conversation, first.start.data.conversation);
    stranger.close();
  });

  test('a bad user_message gets {type:"error", sessionId, error} and the connection stays open', async () => {
    const c = await StreamClient.open(ed.url, ed.token({ sub: 'fastify-user', scope: 'agent' }));
    const { sessionId } = await c.next((m) => m.type === 'connection_established');
    const cases = [
      [{ type: 'user_message', sessionId }, /content/],
      [{ type: 'user_message', content: 42, sessionId }, /content/],
      [{ type: 'user_message', content: '', sessionId }, /content/],
      [{ type: 'user_message', content: 'x'.repeat(65537), sessionId }, /content/],
      [{ type: 'user_message', content: 'hi', sessionId: 7 }, /sessionId/],
      [{ type: 'user_message', content: 'hi', sessionId: 'x'.repeat(129) }, /sessionId/],
    ];
    for (const [msg, re] of cases) {
      c.send(msg);
      const e = await c.next((m) => m.type === 'error');
      assert.equal(e.sessionId, sessionId, JSON.stringify(e));
      assert.equal(typeof e.error, 'string');
      assert.match(e.error, re);
    }
    c.send({ type: 'ping', id: 'still' });
    assert.equal((await c.next((m) => m.id === 'still')).type, 'pong');
    c.close();
  });

  test('without the agent scope: an error, nothing reaches the agent', async () => {
    const c = await StreamClient.open(ed.url, ed.token({ sub: 'reader', scope: 'read' }));
    const got = await c.ask('echo should not run', 's');
    assert.equal(got.start, null);
    assert.equal(got.errors.length, 1);
    assert.equal(got.errors[0].sessionId, 's');
    assert.match(got.errors[0].error, /scope agent/);
    c.close();
  });

  test('an agent that crashes mid-answer: error {sessionId, error}, then stream_end', async () => {
    const c = await StreamClient.open(ed.url, ed.token({ sub: 'fastify-user', scope: 'agent' }));
    const got = await c.ask('crash', 'crashing');
    assert.equal(got.errors.length, 1, JSON.stringify(got));
    assert.equal(got.errors[0].sessionId, 'crashing');
    assert.ok(got.errors[0].error.length > 0);
    assert.equal(got.end.data.stopReason, 'error');
    c.close();
  });
});

describe('the streaming dialect without an agent', () => {
  test('user_message says no agent is configured', async () => {
    const ed = new Editor();
    try {
      await ed.startServer({});
      const c = await StreamClient.open(ed.url, ed.token({ sub: 'u', scope: 'agent' }));
      const got = await c.ask('hello', 'x');
      assert.equal(got.errors.length, 1);
      assert.match(got.errors[0].error, /no agent is configured/);
      c.close();
    } finally {
      await ed.stop();
    }
  });
});
