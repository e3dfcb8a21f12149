// Agents (issue 16): the helper as an ACP client. The agent is a real
// process speaking ACP through the official SDK (agents/scripted-agent.mjs);
// only its "language model" is scripted (the prompt's first word picks a
// script). Clients are `ws` clients through the real helper binary; the
// editor is vscode-jsonrpc.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Editor, Served, connect, configHome, tempDir, sleep, waitFor, SLOW } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = path.join(here, 'agents/scripted-agent.mjs');

function scripted(env = {}) {
  return { command: process.execPath, args: [AGENT], env };
}

/* Sends agent.prompt; returns {start, chunks, end, error}. */
async function prompt(c, text, args = {}, id = `p${Math.random().toString(36).slice(2)}`) {
  c.send({ type: 'command', id, data: { name: 'agent.prompt', args: { text, ...args } } });
  return collect(c, id);
}

async function collect(c, id, timeoutMs = 20000 * SLOW) {
  const out = { start: null, chunks: [], end: null, error: null };
  for (;;) {
    const m = await c.next((x) => x.id === id, timeoutMs);
    if (m.type === 'command_response') { out.error = m.data.error; return out; }
    if (m.type === 'stream_start') out.start = m.data;
    if (m.type === 'stream_chunk') out.chunks.push(m.data);
    if (m.type === 'stream_end') { out.end = m.data; return out; }
  }
}

const text = (chunks, kind = 'message') => chunks.filter((c) => c.kind === kind).map((c) => c.text).join('');

/* The scripted agent processes still alive whose environment names this marker. */
function agentPids(marker) {
  let out = '';
  try { out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }); } catch { return []; }
  return out.split('\n').filter((l) => l.includes(AGENT)).map((l) => Number(l.trim().split(/\s+/)[0])).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(marker); } catch { return false; }
  });
}

describe('agents over ACP', () => {
  let ed, dir;
  const settings = () => ({
    approvals: { timeoutSeconds: 5 },
    limits: { commandsPerSecond: 1000, agentUnwatchedSeconds: 5, agentStartTimeoutSeconds: 3, agentTurnTimeoutSeconds: 10 },
    agents: {
      scripted: scripted({ SCRIPTED_AGENT_STATE_DIR: path.join(dir, '.agent-state') }),
      noinit: scripted({ SCRIPTED_AGENT_NO_INIT: '1' }),
      exits: scripted({ SCRIPTED_AGENT_EXIT_AT_START: '7' }),
      missing: { command: '/nonexistent/agent-binary' },
      copilot: { type: 'vscode-lm', vendor: 'test-vendor' },
    },
    defaultAgent: 'scripted',
  });
  before(async () => {
    dir = tempDir('companion-agents-');
    ed = new Editor();
    await ed.startServer({ folders: [dir], settings: settings() });
  });
  after(async () => { await ed.stop(); });

  test('a prompt streams message chunks and ends with end_turn; agent.turn_finished is an event', async () => {
    const watcher = await ed.client({ sub: 'watcher', scope: 'agent' });
    const s = await watcher.request({ type: 'subscribe', id: 's1', data: { events: ['agent.turn_finished'] } });
    assert.equal(s.type, 'subscribed', JSON.stringify(s));
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const r = await prompt(c, 'echo hello there, this is a longer answer in pieces');
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.match(r.start.conversation, /^c\d+$/);
    assert.equal(r.start.agent, 'scripted');
    assert.equal(r.start.turn, 1);
    assert.ok(r.chunks.filter((x) => x.kind === 'message').length > 1, 'streamed in several chunks');
    assert.equal(text(r.chunks), 'hello there, this is a longer answer in pieces');
    assert.deepEqual(r.end, { stopReason: 'end_turn' });
    const ev = await watcher.next((m) => m.type === 'event' && m.data.event === 'agent.turn_finished');
    assert.equal(ev.data.payload.conversation, r.start.conversation);
    assert.equal(ev.data.payload.stopReason, 'end_turn');
    assert.equal(ev.data.payload.by, 'phone');
    // The same conversation goes on: turn 2.
    const r2 = await prompt(c, 'echo again', { conversation: r.start.conversation });
    assert.equal(r2.start.turn, 2);
    assert.equal(text(r2.chunks), 'again');
    c.close(); watcher.close();
  });

  test('thoughts, plans and tool calls arrive as their own kinds', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const t = await prompt(c, 'think');
    assert.ok(text(t.chunks, 'thought').startsWith('Thinking:'));
    assert.equal(text(t.chunks), 'I thought about it.');
    const p = await prompt(c, 'plan');
    const plan = p.chunks.find((x) => x.kind === 'plan');
    assert.deepEqual(plan.entries, [
      { content: 'Read the code', status: 'completed' },
      { content: 'Write the fix', status: 'in_progress' },
      { content: 'Run the tests', status: 'pending' },
    ]);
    c.close();
  });

  test('a permission request is an approval: a phone with approve allows it once', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    await phone.request({ type: 'subscribe', id: 's', data: { events: ['approval.requested', 'approval.resolved'] } });
    const c = await ed.client({ sub: 'asker', scope: 'agent' });
    const id = 'tool1';
    c.send({ type: 'command', id, data: { name: 'agent.prompt', args: { text: 'tool' } } });
    const perm = await c.next((m) => m.id === id && m.type === 'stream_chunk' && m.data.kind === 'permission');
    assert.ok(perm.data.approvalId > 0);
    assert.deepEqual(perm.data.options, ['allow_once', 'allow_always', 'deny']);
    assert.match(perm.data.title, /npm test/);
    assert.ok(perm.data.expiresAt > Date.now());
    const ev = await phone.next((m) => m.type === 'event' && m.data.event === 'approval.requested');
    assert.equal(ev.data.payload.approvalId, perm.data.approvalId);
    assert.equal(ev.data.payload.kind, 'agent');
    assert.equal(ev.data.payload.action.agent, 'scripted');
    assert.equal(ev.data.payload.action.toolCall.title, 'Running: npm test');
    // The editor's Approvals view hears of it too.
    await ed.waitNotification('companion/approvalRequested', (n) => n.approvalId === perm.data.approvalId);
    const d = await phone.command('approve', { approvalId: perm.data.approvalId, decision: 'allow_once' });
    assert.equal(d.data.success, true, JSON.stringify(d));
    const r = await collect(c, id);
    const resolved = r.chunks.find((x) => x.kind === 'permission_resolved');
    assert.deepEqual([resolved.outcome, resolved.decidedBy], ['allow_once', 'owner']);
    assert.ok(r.chunks.some((x) => x.kind === 'tool' && x.status === 'completed'));
    assert.equal(text(r.chunks), 'tool ran');
    assert.equal(r.end.stopReason, 'end_turn');
    c.close(); phone.close();
  });

  test('deny maps to the agent\'s reject option; expiry rejects too', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    const c = await ed.client({ sub: 'asker', scope: 'agent' });
    c.send({ type: 'command', id: 'd1', data: { name: 'agent.prompt', args: { text: 'tool' } } });
    const perm = await c.next((m) => m.id === 'd1' && m.type === 'stream_chunk' && m.data.kind === 'permission');
    const d = await phone.command('approve', { approvalId: perm.data.approvalId, decision: 'deny' });
    assert.equal(d.data.success, true);
    const r = await collect(c, 'd1');
    assert.equal(text(r.chunks), 'tool rejected');
    assert.ok(r.chunks.some((x) => x.kind === 'tool' && x.status === 'failed'));
    // Nobody answers: after approvals.timeoutSeconds (5) it is a reject.
    const t0 = Date.now();
    c.send({ type: 'command', id: 'e1', data: { name: 'agent.prompt', args: { text: 'tool' } } });
    const r2 = await collect(c, 'e1', 30000 * SLOW);
    assert.equal(r2.chunks.find((x) => x.kind === 'permission_resolved').outcome, 'expired');
    assert.equal(text(r2.chunks), 'tool rejected');
    assert.ok(Date.now() - t0 >= 4500, 'waited for the expiry');
    c.close(); phone.close();
  });

  test('cancel ends the turn with cancelled and withdraws its pending approval', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    await phone.request({ type: 'subscribe', id: 's', data: { events: ['approval.resolved'] } });
    const c = await ed.client({ sub: 'asker', scope: 'agent' });
    c.send({ type: 'command', id: 'k1', data: { name: 'agent.prompt', args: { text: 'tool' } } });
    const perm = await c.next((m) => m.id === 'k1' && m.type === 'stream_chunk' && m.data.kind === 'permission');
    const k = await c.command('agent.cancel', {});
    assert.equal(k.data.success, true);
    assert.equal(k.data.result.cancelled, true);
    const r = await collect(c, 'k1');
    assert.equal(r.end.stopReason, 'cancelled');
    const res = await phone.next((m) => m.type === 'event' && m.data.event === 'approval.resolved' && m.data.payload.approvalId === perm.data.approvalId);
    assert.equal(res.data.payload.decision, 'withdrawn');
    // A decision after that is refused, by whom it was decided.
    const late = await phone.command('approve', { approvalId: perm.data.approvalId, decision: 'allow_once' });
    assert.equal(late.data.result.took, false, JSON.stringify(late));
    // A slow turn cancelled in the middle.
    c.send({ type: 'command', id: 'k2', data: { name: 'agent.prompt', args: { text: 'slow 20000' } } });
    await c.next((m) => m.id === 'k2' && m.type === 'stream_chunk');
    const k2 = await c.command('agent.cancel', {});
    assert.equal(k2.data.result.cancelled, true);
    const r2 = await collect(c, 'k2');
    assert.equal(r2.end.stopReason, 'cancelled');
    // Nothing left to cancel.
    const k3 = await c.command('agent.cancel', { conversation: k2.data.result.conversation });
    assert.equal(k3.data.result.cancelled, false);
    c.close(); phone.close();
  });

  test('a second device follows the conversation: replay from since, then live', async () => {
    const a = await ed.client({ sub: 'phone', scope: 'agent' });
    const first = await prompt(a, 'echo one two three');
    const conv = first.start.conversation;
    const b = await ed.client({ sub: 'laptop', scope: 'agent' });
    const f = await b.command('agent.follow', { conversation: conv, since: 0 });
    assert.equal(f.data.success, true, JSON.stringify(f));
    assert.ok(f.data.result.seq > 0);
    const replayed = [];
    while (replayed.length < f.data.result.seq) {
      replayed.push((await b.next((m) => m.type === 'agent_update')).data);
    }
    assert.deepEqual(replayed.map((u) => u.seq), Array.from({ length: f.data.result.seq }, (_, i) => i + 1));
    assert.equal(replayed[0].chunk.kind, 'turn_start');
    assert.equal(replayed[0].chunk.text, 'echo one two three');
    assert.equal(replayed.at(-1).chunk.kind, 'turn_end');
    assert.equal(text(replayed.map((u) => u.chunk)), 'one two three');
    // Live: a prompt from the first device is seen by the second.
    const second = await prompt(a, 'echo live words', { conversation: conv });
    const live = [];
    for (;;) {
      const u = (await b.next((m) => m.type === 'agent_update')).data;
      live.push(u);
      if (u.chunk.kind === 'turn_end') break;
    }
    assert.equal(live[0].seq, f.data.result.seq + 1);
    assert.equal(live[0].turn, second.start.turn);
    assert.equal(text(live.map((u) => u.chunk)), 'live words');
    // since = the newest: nothing is replayed.
    const g = await b.command('agent.follow', { conversation: conv, since: live.at(-1).seq });
    assert.equal(g.data.result.seq, live.at(-1).seq);
    await sleep(100);
    assert.equal(b.queue.filter((m) => m.type === 'agent_update').length, 0);
    const u = await b.command('agent.unfollow', { conversation: conv });
    assert.equal(u.data.success, true);
    a.close(); b.close();
  });

  test('a client that disconnects mid-turn does not cancel it; a follower sees it end', async () => {
    const a = await ed.client({ sub: 'phone', scope: 'agent' });
    const n = await a.command('agent.new', {});
    const conv = n.data.result.conversation;
    const b = await ed.client({ sub: 'laptop', scope: 'agent' });
    await b.command('agent.follow', { conversation: conv });
    a.send({ type: 'command', id: 'x', data: { name: 'agent.prompt', args: { text: 'slow 1500', conversation: conv } } });
    await a.next((m) => m.id === 'x' && m.type === 'stream_chunk');
    a.terminate();
    const end = await b.next((m) => m.type === 'agent_update' && m.data.chunk.kind === 'turn_end', 10000 * SLOW);
    assert.equal(end.data.chunk.stopReason, 'end_turn');
    b.close();
  });

  test('an approval belongs to the turn: the prompter leaving does not withdraw it', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve agent' });
    const a = await ed.client({ sub: 'asker', scope: 'agent' });
    a.send({ type: 'command', id: 'w', data: { name: 'agent.prompt', args: { text: 'tool' } } });
    const start = await a.next((m) => m.id === 'w' && m.type === 'stream_start');
    const perm = await a.next((m) => m.id === 'w' && m.type === 'stream_chunk' && m.data.kind === 'permission');
    await phone.command('agent.follow', { conversation: start.data.conversation });
    a.terminate();
    await sleep(300);
    const list = await phone.command('approvals.list', {});
    assert.ok(list.data.result.approvals.some((x) => x.approvalId === perm.data.approvalId), 'still pending');
    const d = await phone.command('approve', { approvalId: perm.data.approvalId, decision: 'allow_once' });
    assert.equal(d.data.result.took, true);
    const seen = [];
    for (;;) {
      const u = (await phone.next((m) => m.type === 'agent_update')).data.chunk;
      seen.push(u);
      if (u.kind === 'turn_end') break;
    }
    assert.equal(text(seen), 'tool ran');
    assert.equal(seen.at(-1).stopReason, 'end_turn');
    phone.close();
  });

  test('a turn nobody follows and nobody can resume is cancelled after agentUnwatchedSeconds', async () => {
    const w = await ed.client({ sub: 'watcher', scope: 'agent' });
    await w.request({ type: 'subscribe', id: 's', data: { events: ['agent.turn_finished'] } });
    const a = await ed.client({ sub: 'phone', scope: 'agent' });
    a.send({ type: 'command', id: 'u', data: { name: 'agent.prompt', args: { text: 'slow 60000' } } });
    const start = await a.next((m) => m.id === 'u' && m.type === 'stream_start');
    a.terminate();
    const t0 = Date.now();
    const ev = await w.next((m) => m.type === 'event' && m.data.event === 'agent.turn_finished' && m.data.payload.conversation === start.data.conversation, 20000 * SLOW);
    assert.equal(ev.data.payload.stopReason, 'cancelled');
    assert.ok(Date.now() - t0 >= 4000, `cancelled after the grace (${Date.now() - t0} ms)`);
    w.close();
  });

  test('prompts queue behind a running turn (3 at most, then BUSY)', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    c.send({ type: 'command', id: 'q0', data: { name: 'agent.prompt', args: { text: 'slow 800' } } });
    const s0 = await c.next((m) => m.id === 'q0' && m.type === 'stream_start');
    const conv = s0.data.conversation;
    for (const i of [1, 2, 3]) c.send({ type: 'command', id: `q${i}`, data: { name: 'agent.prompt', args: { text: `echo queued ${i}`, conversation: conv } } });
    const busy = await c.command('agent.prompt', { text: 'echo too many', conversation: conv });
    assert.equal(busy.data.success, false);
    assert.equal(busy.data.error.code, 'BUSY');
    const convs = await c.command('agent.conversations', {});
    const mine = convs.data.result.conversations.find((x) => x.id === conv);
    assert.deepEqual([mine.state, mine.queued], ['running', 3]);
    const results = [];
    for (const i of [0, 1, 2, 3]) results.push(await collect(c, `q${i}`));
    results[0].start = s0.data;
    assert.deepEqual(results.map((r) => r.end.stopReason), ['end_turn', 'end_turn', 'end_turn', 'end_turn']);
    assert.deepEqual(results.slice(1).map((r) => text(r.chunks)), ['queued 1', 'queued 2', 'queued 3']);
    assert.deepEqual(results.map((r) => r.start.turn), [1, 2, 3, 4]);
    c.close();
  });

  test('a crash ends the turn with the reason; the next prompt restarts the agent and loads the session', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const r = await prompt(c, 'crash');
    assert.equal(r.end.stopReason, 'error');
    assert.match(r.end.message, /exited with code 3/);
    assert.equal(text(r.chunks), 'about to crash');
    const list = await c.command('agent.list', {});
    const s = list.data.result.agents.find((x) => x.name === 'scripted');
    assert.equal(s.state, 'stopped');
    assert.match(s.lastError, /exited with code 3/);
    const r2 = await prompt(c, 'echo back again', { conversation: r.start.conversation });
    assert.equal(r2.end.stopReason, 'end_turn', JSON.stringify(r2));
    assert.equal(text(r2.chunks), 'back again');
    const list2 = await c.command('agent.list', {});
    const s2 = list2.data.result.agents.find((x) => x.name === 'scripted');
    assert.equal(s2.state, 'ready');
    assert.ok(s2.starts >= 2);
    c.close();
  });

  test('garbage lines are ignored; a hang hits the turn timeout; bad starts say why', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const g = await prompt(c, 'garbage');
    assert.equal(g.end.stopReason, 'end_turn');
    assert.equal(text(g.chunks), 'after garbage');
    const n = await prompt(c, 'echo hi', { agent: 'noinit' });
    assert.equal(n.end.stopReason, 'error');
    assert.match(n.end.message, /initialize/);
    const e = await prompt(c, 'echo hi', { agent: 'exits' });
    assert.equal(e.end.stopReason, 'error');
    assert.match(e.end.message, /exited with code 7/);
    const m = await prompt(c, 'echo hi', { agent: 'missing' });
    assert.equal(m.end.stopReason, 'error');
    assert.match(m.end.message, /not found|No such file/i);
    const t0 = Date.now();
    const h = await prompt(c, 'hang', {}, 'hang1');
    assert.equal(h.end.stopReason, 'error');
    assert.match(h.end.message, /did not finish within 10 s/);
    assert.ok(Date.now() - t0 >= 9000);
    // And it works again after that.
    const ok = await prompt(c, 'echo fine');
    assert.equal(ok.end.stopReason, 'end_turn');
    c.close();
  });

  test('a 2 MB answer streams whole', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const r = await prompt(c, 'flood 2097152');
    assert.equal(r.end.stopReason, 'end_turn');
    assert.equal(text(r.chunks).length, 2097152);
    c.close();
  });

  test('the client offers no fs or terminal capability', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const r = await prompt(c, `write ${path.join(dir, 'x.txt')} hi`);
    assert.equal(text(r.chunks), 'error: client did not advertise fs.writeTextFile and fs.readTextFile');
    c.close();
  });

  test('bad input gets a clear error', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const cases = [
      [{}, 'INVALID_ARGS'],
      [{ text: '' }, 'INVALID_ARGS'],
      [{ text: 5 }, 'INVALID_ARGS'],
      [{ text: 'x'.repeat(65537) }, 'INVALID_ARGS'],
      [{ text: 'hi', agent: 'nosuch' }, 'UNKNOWN_AGENT'],
      [{ text: 'hi', agent: 3 }, 'INVALID_ARGS'],
      [{ text: 'hi', conversation: 'c999999' }, 'UNKNOWN_CONVERSATION'],
    ];
    for (const [args, code] of cases) {
      const r = await c.command('agent.prompt', args);
      assert.equal(r.data.success, false, JSON.stringify(args));
      assert.equal(r.data.error.code, code, `${JSON.stringify(args).slice(0, 80)}: ${JSON.stringify(r.data.error)}`);
    }
    // A NUL inside the text is refused by the envelope already.
    c.send({ type: 'command', id: 'nul', data: { name: 'agent.prompt', args: { text: 'a\u0000b' } } });
    const nul = await c.next((m) => m.type === 'error');
    assert.equal(nul.type, 'error');
    assert.equal(nul.data.code, 'INVALID_MESSAGE');
    for (const [name, args, code] of [
      ['agent.follow', {}, 'INVALID_ARGS'],
      ['agent.follow', { conversation: 'c1', since: -1 }, 'INVALID_ARGS'],
      ['agent.follow', { conversation: 'c1', since: 'x' }, 'INVALID_ARGS'],
      ['agent.follow', { conversation: 'nope' }, 'UNKNOWN_CONVERSATION'],
      ['agent.cancel', { conversation: 7 }, 'INVALID_ARGS'],
      ['agent.new', { agent: 'nosuch' }, 'UNKNOWN_AGENT'],
    ]) {
      const r = await c.command(name, args);
      assert.equal(r.data.error?.code, code, `${name} ${JSON.stringify(args)}: ${JSON.stringify(r.data)}`);
    }
    c.close();
  });

  test('only the agent scope may use agents or hear of their turns', async () => {
    for (const scope of ['read', 'read run editor approve']) {
      const c = await ed.client({ sub: 'x', scope });
      for (const name of ['agent.prompt', 'agent.list', 'agent.conversations', 'agent.new', 'agent.follow', 'agent.cancel']) {
        const r = await c.command(name, { text: 'echo hi', conversation: 'c1' });
        assert.equal(r.data.error?.code, 'FORBIDDEN', `${scope} ${name}`);
      }
      const s = await c.request({ type: 'subscribe', id: 's', data: { events: ['agent.turn_finished'] } });
      assert.equal(s.type, 'error');
      assert.match(s.data.message, /agent scope/);
      c.close();
    }
  });

  test('the editor\'s language model as an agent: editor/lm streamed back as companion/lmChunk', async () => {
    const seen = [];
    ed.conn.onRequest('editor/lm', async (p) => {
      seen.push(p);
      for (const piece of ['Hello ', 'from ', 'the editor.']) {
        ed.notify('companion/lmChunk', { turnId: p.turnId, text: piece });
        await sleep(5);
      }
      return { stopReason: 'end_turn', model: 'test-vendor/test' };
    });
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const r = await prompt(c, 'say hello', { agent: 'copilot' });
    assert.equal(r.end.stopReason, 'end_turn', JSON.stringify(r));
    assert.equal(text(r.chunks), 'Hello from the editor.');
    assert.equal(seen[0].vendor, 'test-vendor');
    assert.deepEqual(seen[0].messages, [{ role: 'user', text: 'say hello' }]);
    // The next turn carries the conversation so far.
    const r2 = await prompt(c, 'and again', { conversation: r.start.conversation });
    assert.equal(r2.end.stopReason, 'end_turn');
    assert.deepEqual(seen[1].messages, [
      { role: 'user', text: 'say hello' },
      { role: 'assistant', text: 'Hello from the editor.' },
      { role: 'user', text: 'and again' },
    ]);
    // A failing model is a clear error.
    ed.conn.onRequest('editor/lm', () => { throw new Error('no language model matches vendor=test-vendor'); });
    const r3 = await prompt(c, 'fail please', { agent: 'copilot' });
    assert.equal(r3.end.stopReason, 'error');
    assert.match(r3.end.message, /no language model matches/);
    c.close();
  });

  test('chat: prose goes to the agent in a few whole messages; commands stay commands', async () => {
    const c = await ed.client({ sub: 'chatter', scope: 'read agent approve' });
    const chat = (id, t) => c.send({ type: 'chat', id, data: { text: t } });
    const replies = async (id, until) => {
      const out = [];
      for (;;) {
        const m = await c.next((x) => x.type === 'chat_reply' && x.id === id, 20000 * SLOW);
        out.push({ text: m.data.text, at: Date.now() });
        if (until(m.data.text)) return out;
      }
    };
    chat('q1', 'can you explain what src/main.c does?');
    const r1 = await replies('q1', (t) => t.endsWith('Done.'));
    assert.equal(r1.length, 1, JSON.stringify(r1));
    assert.equal(r1[0].text, 'can you explain what src/main.c does?\n\nDone.');
    // A command word with its arguments is a command; with prose it is not.
    chat('q2', 'tasks');
    const r2 = await replies('q2', () => true);
    assert.doesNotMatch(r2[0].text, /Done\./);
    chat('q3', 'log in page is broken');
    const r3 = await replies('q3', (t) => t.endsWith('Done.'));
    assert.equal(r3.at(-1).text, 'log in page is broken\n\nDone.');
    // Fences stay whole.
    const answer = 'First paragraph.\n\n```js\nconst x = 1;\n\nconst y = 2;\n```\n\nLast paragraph.';
    chat('q4', `echo ${answer}`);
    const r4 = await replies('q4', (t) => t.endsWith('Done.'));
    const joined = r4.map((x) => x.text).join('\n\n');
    assert.equal(joined, `${answer}\n\nDone.`);
    for (const m of r4) assert.equal((m.text.match(/```/g) || []).length % 2, 0, `fence split: ${m.text}`);
    // A tool call and its approval come in one message; "yes N" answers it.
    chat('q5', 'tool');
    const [ask] = await replies('q5', (t) => /Approval \d+/.test(t));
    assert.match(ask.text, /^Running: npm test\n\nApproval (\d+): Agent "scripted": Running: npm test\nReply yes \1, always \1 or no \1\.$/);
    const n = ask.text.match(/Approval (\d+)/)[1];
    chat('y5', `yes ${n}`);
    const r5 = await replies('q5', (t) => t.endsWith('Done.'));
    assert.match(r5.at(-1).text, /tool ran\n\nDone\.$/);
    // stop cancels; new starts over.
    chat('q6', 'slow 20000');
    await sleep(700);
    chat('s6', 'stop');
    const stopAck = await replies('s6', () => true);
    assert.match(stopAck[0].text, /Stopping/);
    const r6 = await replies('q6', (t) => /Cancelled\.$/.test(t));
    assert.match(r6.at(-1).text, /Cancelled\.$/);
    const before = (await c.command('agent.conversations', {})).data.result.conversations.length;
    chat('n7', 'new');
    const r7 = await replies('n7', () => true);
    assert.match(r7[0].text, /New conversation with scripted/);
    const after = (await c.command('agent.conversations', {})).data.result.conversations.length;
    assert.equal(after, before + 1);
    // Pacing: a paragraph every 500 ms for 8 s gives a few messages, at
    // least 3 s apart, every paragraph once and in order.
    chat('q8', 'paras 16 500');
    const r8 = await replies('q8', (t) => t.endsWith('Done.'));
    assert.ok(r8.length >= 2 && r8.length <= 5, `${r8.length} messages`);
    for (let i = 1; i < r8.length - 1; i++) assert.ok(r8[i].at - r8[i - 1].at >= 2900, `gap ${r8[i].at - r8[i - 1].at} ms`);
    assert.equal(r8.map((x) => x.text).join('\n\n'), `${Array.from({ length: 16 }, (_, i) => `Paragraph ${i + 1} of 16.`).join('\n\n')}\n\nDone.`);
    c.close();
  });

  test('chat: data.chat keeps one conversation per chat of a bridge', async () => {
    const c = await ed.client({ sub: 'bridge', scope: 'agent' });
    const before = (await c.command('agent.conversations', {})).data.result.conversations.length;
    const say = async (id, chat, t) => {
      c.send({ type: 'chat', id, data: { text: t, chat } });
      for (;;) {
        const m = await c.next((x) => x.type === 'chat_reply' && x.id === id, 20000 * SLOW);
        if (/Done\.$|Cancelled\.$|Stopping|not answering/.test(m.data.text)) return m.data.text;
      }
    };
    await say('a1', 'chat-a', 'echo one');
    await say('b1', 'chat-b', 'echo two');
    await say('a2', 'chat-a', 'echo three');
    const convs = (await c.command('agent.conversations', {})).data.result.conversations;
    assert.equal(convs.length, before + 2);
    assert.deepEqual(convs.slice(-2).map((x) => x.turns), [2, 1]);
    // stop in one chat leaves the other alone.
    c.send({ type: 'chat', id: 'b2', data: { text: 'slow 20000', chat: 'chat-b' } });
    await sleep(500);
    assert.match(await say('a3', 'chat-a', 'stop'), /not answering/);
    assert.match(await say('b3', 'chat-b', 'stop'), /Stopping/);
    const bad = await c.request({ type: 'chat', id: 'x', data: { text: 'hi', chat: 5 } });
    assert.equal(bad.data.code, 'INVALID_MESSAGE');
    c.close();
  });

  test('chat without the agent scope: prose is not sent, and it says why', async () => {
    const c = await ed.client({ sub: 'reader', scope: 'read' });
    const r = await c.request({ type: 'chat', id: 'x', data: { text: 'can you explain what src/main.c does?' } });
    assert.equal(r.type, 'chat_reply');
    assert.match(r.data.text, /needs a token with the "agent" scope/);
    c.close();
  });

  test('agent.list names every agent with its type and state', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    const r = await c.command('agent.list', {});
    const byName = Object.fromEntries(r.data.result.agents.map((x) => [x.name, x]));
    assert.deepEqual(Object.keys(byName).sort(), ['copilot', 'exits', 'missing', 'noinit', 'scripted']);
    assert.equal(byName.scripted.default, true);
    assert.equal(byName.copilot.type, 'vscode-lm');
    assert.equal(byName.copilot.state, 'ready');
    assert.equal(byName.scripted.type, 'acp');
    c.close();
  });

  test('settings that change an agent stop it; no agent outlives the helper', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'agent' });
    c.send({ type: 'command', id: 'st', data: { name: 'agent.prompt', args: { text: 'slow 30000' } } });
    await c.next((m) => m.id === 'st' && m.type === 'stream_chunk');
    assert.ok(agentPids(path.join(dir, '.agent-state')).length >= 1);
    const next = settings();
    next.agents.scripted.env.CHANGED = '1';
    ed.notify('workspace/didChangeConfiguration', { settings: { ...next, server: { host: '127.0.0.1', port: 0 }, auth: { secret: ed.secret } } });
    const r = await collect(c, 'st');
    assert.equal(r.end.stopReason, 'error');
    assert.match(r.end.message, /settings changed/);
    await waitFor(() => agentPids(path.join(dir, '.agent-state')).length === 0, 'the old agent killed');
    // Started again with the new settings, then the helper goes: so does the agent.
    const r2 = await prompt(c, 'echo new settings');
    assert.equal(r2.end.stopReason, 'end_turn');
    assert.ok(agentPids(path.join(dir, '.agent-state')).length >= 1);
    c.close();
    await ed.shutdown();
    await waitFor(() => agentPids(path.join(dir, '.agent-state')).length === 0, 'no agent left after the helper');
  });
});

describe('agents in serve mode (no editor)', () => {
  test('an ACP agent answers; the editor\'s model is unavailable; the agent dies with serve', async () => {
    const home = configHome();
    const dir = tempDir('companion-agents-serve-');
    const cfg = path.join(dir, 'companion.json');
    const marker = path.join(dir, 'marker');
    writeFileSync(cfg, JSON.stringify({
      agents: { scripted: scripted({ MARKER: marker }), copilot: { type: 'vscode-lm' } },
      defaultAgent: 'scripted',
    }));
    const s = new Served(['--workspace', dir, '--port', '0', '--config', cfg, '--scope', 'read,agent'], { env: home.env });
    try {
      const b = await s.banner();
      const c = await connect(b.url);
      assert.equal((await c.auth(b.token, b.workspaceId)).data.success, true);
      const r = await prompt(c, 'echo from serve');
      assert.equal(r.end.stopReason, 'end_turn');
      assert.equal(text(r.chunks), 'from serve');
      const lm = await c.command('agent.prompt', { text: 'hi', agent: 'copilot' });
      assert.equal(lm.data.error.code, 'UNAVAILABLE');
      assert.match(lm.data.error.message, /no editor/);
      const list = await c.command('agent.list', {});
      assert.equal(list.data.result.agents.find((x) => x.name === 'copilot').state, 'unavailable');
      assert.ok(agentPids(marker).length >= 1);
      c.close();
    } finally {
      await s.stop();
      home.cleanup();
    }
    await waitFor(() => agentPids(marker).length === 0, 'no agent left after serve');
  });
});

describe('agents: limits', () => {
  test('at most limits.maxAgentTurns turns run at once; the others wait their turn', async () => {
    const dir = tempDir('companion-agents-cap-');
    const ed = new Editor();
    try {
      await ed.startServer({ folders: [dir], settings: { limits: { commandsPerSecond: 1000, maxAgentTurns: 1, maxConversations: 2 }, agents: { scripted: scripted() } } });
      const c = await ed.client({ sub: 'phone', scope: 'agent' });
      c.send({ type: 'command', id: 'a', data: { name: 'agent.prompt', args: { text: 'slow 1500' } } });
      c.send({ type: 'command', id: 'b', data: { name: 'agent.prompt', args: { text: 'echo second' } } });
      const sa = await c.next((m) => m.id === 'a' && m.type === 'stream_start');
      const sb = await c.next((m) => m.id === 'b' && m.type === 'stream_start');
      await c.next((m) => m.id === 'a' && m.type === 'stream_chunk');
      const convs = (await c.command('agent.conversations', {})).data.result.conversations;
      const byId = Object.fromEntries(convs.map((x) => [x.id, x]));
      assert.equal(byId[sa.data.conversation].state, 'running');
      assert.deepEqual([byId[sb.data.conversation].state, byId[sb.data.conversation].queued], ['idle', 1]);
      const ra = await collect(c, 'a');
      const rb = await collect(c, 'b');
      assert.equal(ra.end.stopReason, 'end_turn');
      assert.equal(text(rb.chunks), 'second');
      // Two conversations kept: a third forgets the one idle longest.
      const n = await c.command('agent.new', {});
      assert.equal(n.data.success, true);
      const after = (await c.command('agent.conversations', {})).data.result.conversations.map((x) => x.id);
      assert.equal(after.length, 2);
      assert.ok(!after.includes(sa.data.conversation), `${sa.data.conversation} forgotten: ${after}`);
      c.close();
    } finally {
      await ed.stop();
    }
  });
});
