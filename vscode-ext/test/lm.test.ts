/*
 * lm.ts, the editor's side of vscode-lm agents. A unit test of our own seam:
 * the language model is a scripted fake behind LmBackend (VS Code's real one
 * is in scripts/e2e-lm.sh); the JSON-RPC is real vscode-jsonrpc over a Unix
 * socket, the test playing the helper (editor/lm, editor/lmCancel, and the
 * companion/lmChunk notifications it receives).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import {
  createMessageConnection, ResponseError, SocketMessageReader, SocketMessageWriter, type CancellationToken,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  attachLm, LM_BUSY, LM_JUSTIFICATION, LM_MODEL_ERROR, LM_NO_MODEL, LmModelError, LmService, type LmBackend, type LmModel,
  type LmServiceOptions,
} from '../src/lm';
import type { LmChunkParams, LmMessage, LmResult } from '../src/protocol';
import { sleep, waitFor } from './util';

interface Call {
  messages: readonly LmMessage[];
  justification: string;
  token: CancellationToken;
}

/** A scripted model: yields fragments with a delay; hang keeps it streaming until cancelled. */
class FakeModel implements LmModel {
  calls: Call[] = [];
  constructor(
    readonly id: string,
    readonly vendor: string,
    readonly family: string,
    private readonly script: { fragments?: string[]; delayMs?: number; hang?: boolean; fail?: Error; failAfter?: number } = {},
  ) {}
  send(messages: readonly LmMessage[], justification: string, token: CancellationToken): Promise<AsyncIterable<string>> {
    this.calls.push({ messages, justification, token });
    const s = this.script;
    if (s.fail && s.failAfter === undefined) return Promise.reject(s.fail);
    return Promise.resolve(
      (async function* gen(): AsyncGenerator<string> {
        let i = 0;
        for (const f of s.fragments ?? []) {
          if (s.fail && s.failAfter === i) throw s.fail;
          if (token.isCancellationRequested) return;
          if (s.delayMs) await sleep(s.delayMs);
          yield f;
          i++;
        }
        while (s.hang && !token.isCancellationRequested) await sleep(5);
      })(),
    );
  }
}

class FakeBackend implements LmBackend {
  selectors: { vendor?: string; family?: string }[] = [];
  constructor(readonly models: FakeModel[]) {}
  selectModels(selector: { vendor?: string; family?: string }): Promise<readonly LmModel[]> {
    this.selectors.push(selector);
    return Promise.resolve(
      this.models.filter((m) => (selector.vendor === undefined || m.vendor === selector.vendor) &&
        (selector.family === undefined || m.family === selector.family)),
    );
  }
}

interface Pair {
  helper: MessageConnection;
  lm: LmService;
  chunks: LmChunkParams[];
  /** When each chunk arrived (ms). */
  times: number[];
  lines: string[];
  attached: { dispose(): void };
}

const open: { close(): void }[] = [];
afterEach(() => {
  while (open.length) open.pop()?.close();
});

/** The extension's side (attachLm) and the helper's side of one connection over a Unix socket. */
async function pair(backend: LmBackend, opts: Partial<LmServiceOptions> = {}): Promise<Pair> {
  const sock = path.join(mkdtempSync(path.join(tmpdir(), 'companion-lm-')), 's');
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(sock, r));
  const client = net.connect(sock);
  const serverSide = await accepted;
  const lines: string[] = [];
  const lm = new LmService({ backend, log: (l) => lines.push(l), ...opts });
  const ext = createMessageConnection(new SocketMessageReader(serverSide), new SocketMessageWriter(serverSide));
  // When each chunk was sent: both ends share this process's event loop, so
  // arrival times bunch up whenever the machine is busy; the rate under
  // test is the sender's.
  const times: number[] = [];
  const send = ext.sendNotification.bind(ext) as (...a: unknown[]) => Promise<void>;
  (ext as unknown as { sendNotification: (...a: unknown[]) => Promise<void> }).sendNotification = (...a: unknown[]) => {
    if ((typeof a[0] === 'string' ? a[0] : (a[0] as { method?: string }).method) === 'companion/lmChunk') times.push(Date.now());
    return send(...a);
  };
  const attached = attachLm(ext, lm);
  ext.listen();
  const helper = createMessageConnection(new SocketMessageReader(client), new SocketMessageWriter(client));
  const chunks: LmChunkParams[] = [];
  helper.onNotification('companion/lmChunk', (p: LmChunkParams) => {
    chunks.push(p);
  });
  helper.listen();
  open.push({
    close: () => {
      lm.dispose();
      helper.dispose();
      ext.dispose();
      client.destroy();
      serverSide.destroy();
      server.close();
    },
  });
  return { helper, lm, chunks, times, lines, attached };
}

function ask(h: MessageConnection, params: unknown): Promise<LmResult> {
  return h.sendRequest<LmResult>('editor/lm', params);
}

async function rejection(p: Promise<unknown>): Promise<ResponseError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ResponseError, `a ResponseError, not ${String(e)}`);
    return e;
  }
  throw new Error('expected a JSON-RPC error');
}

const convo: LmMessage[] = [
  { role: 'user', text: 'what is 2+2?' },
  { role: 'assistant', text: '4' },
  { role: 'user', text: 'and times 3?' },
];

describe('lm module (unit test of our own seam: a fake model behind LmBackend, real vscode-jsonrpc)', { timeout: 30000 }, () => {
  it('streams the answer as companion/lmChunk, then answers end_turn with the model', async () => {
    const model = new FakeModel('m1', 'acme', 'big', { fragments: ['Twelve', ', ', 'since 4', ' × 3 = 12.'], delayMs: 2 });
    const backend = new FakeBackend([new FakeModel('m0', 'other', 'big'), model]);
    const t = await pair(backend);
    const r = await ask(t.helper, { turnId: 'c1/3', vendor: 'acme', messages: convo });
    assert.deepEqual(r, { stopReason: 'end_turn', model: 'acme/big/m1' });
    // every chunk was written before the answer
    assert.equal(t.chunks.map((c) => c.text).join(''), 'Twelve, since 4 × 3 = 12.');
    assert.ok(t.chunks.every((c) => c.turnId === 'c1/3'));
    // the selector leaves out what the request left out
    assert.deepEqual(backend.selectors, [{ vendor: 'acme' }]);
    assert.equal(model.calls.length, 1);
    assert.deepEqual(model.calls[0]?.messages, convo);
    assert.equal(model.calls[0]?.justification, LM_JUSTIFICATION);
    // one log line, without the prompt's text
    assert.equal(t.lines.length, 1);
    assert.match(t.lines[0] ?? '', /^lm c1\/3: acme\/big\/m1 .*3 message\(s\) 25 chars in, 25 chars out in \d+ chunk\(s\), end_turn, \d+ ms$/);
    assert.ok(!(t.lines[0] ?? '').includes('times 3'), t.lines[0]);
  });

  it('takes the first model matching vendor and family, and any model when both are left out', async () => {
    const a = new FakeModel('a', 'v1', 'f1', { fragments: ['A'] });
    const b = new FakeModel('b', 'v1', 'f2', { fragments: ['B'] });
    const backend = new FakeBackend([a, b]);
    const t = await pair(backend);
    assert.equal((await ask(t.helper, { turnId: 'c1/1', vendor: 'v1', family: 'f2', messages: convo })).model, 'v1/f2/b');
    assert.equal((await ask(t.helper, { turnId: 'c1/2', messages: convo })).model, 'v1/f1/a');
    // empty strings select nothing in particular
    assert.equal((await ask(t.helper, { turnId: 'c1/3', vendor: '', family: '', messages: convo })).model, 'v1/f1/a');
    assert.deepEqual(backend.selectors, [{ vendor: 'v1', family: 'f2' }, {}, {}]);
  });

  it('coalesces fragments: at most one notification per 20 ms, nothing lost', async () => {
    const fragments = Array.from({ length: 150 }, (_, i) => `w${i} `);
    const t = await pair(new FakeBackend([new FakeModel('m', 'v', 'f', { fragments, delayMs: 1 })]));
    const started = Date.now();
    const r = await ask(t.helper, { turnId: 'c2/1', messages: [{ role: 'user', text: 'count' }] });
    const elapsed = Date.now() - started;
    assert.equal(r.stopReason, 'end_turn');
    assert.equal(t.chunks.map((c) => c.text).join(''), fragments.join(''));
    assert.ok(t.chunks.length < fragments.length / 3, `${t.chunks.length} notifications for ${fragments.length} fragments`);
    assert.ok(t.chunks.length <= Math.ceil(elapsed / 20) + 2, `${t.chunks.length} notifications in ${elapsed} ms`);
    // The rate is the coalescer's (flushes at least 20 ms apart); the gaps
    // between two sends are not: a send waits for the one before it, so
    // when the machine is busy one late send shortens the next gap without
    // any extra notification. The count over the turn is what shows the rate.
    assert.equal(t.times.length, t.chunks.length);
  });

  it('answers -32001 naming the selector when no model matches', async () => {
    const t = await pair(new FakeBackend([new FakeModel('m', 'v', 'f')]));
    const e = await rejection(ask(t.helper, { turnId: 'c1/1', vendor: 'copilot', family: 'gpt-4o', messages: convo }));
    assert.equal(e.code, LM_NO_MODEL);
    assert.equal(e.message, 'no language model matches vendor=copilot family=gpt-4o');
    const e2 = await rejection(ask(t.helper, { turnId: 'c1/2', vendor: 'copilot', messages: convo }));
    assert.equal(e2.message, 'no language model matches vendor=copilot family=*');
    assert.match(t.lines[0] ?? '', /no model/);
  });

  it("answers -32002 with a LanguageModelError's message (consent refused, blocked), before or while streaming", async () => {
    const refused = new FakeModel('m', 'v', 'f', { fail: new LmModelError('The user did not consent.', 'NoPermissions') });
    const t = await pair(new FakeBackend([refused]));
    const e = await rejection(ask(t.helper, { turnId: 'c1/1', messages: convo }));
    assert.equal(e.code, LM_MODEL_ERROR);
    assert.equal(e.message, 'The user did not consent.');
    assert.deepEqual(e.data, { code: 'NoPermissions' });

    const midway = new FakeModel('m', 'v', 'f', { fragments: ['a', 'b', 'c'], fail: new LmModelError('Blocked.', 'Blocked'), failAfter: 2 });
    const t2 = await pair(new FakeBackend([midway]));
    const e2 = await rejection(ask(t2.helper, { turnId: 'c1/1', messages: convo }));
    assert.equal(e2.code, LM_MODEL_ERROR);
    assert.equal(e2.message, 'Blocked.');
    assert.equal(t2.lm.running, 0);

    // another error is an internal error, not -32002
    const t3 = await pair(new FakeBackend([new FakeModel('m', 'v', 'f', { fail: new Error('socket hang up') })]));
    const e3 = await rejection(ask(t3.helper, { turnId: 'c1/1', messages: convo }));
    assert.equal(e3.code, -32603);
    assert.match(e3.message, /socket hang up/);
  });

  it('editor/lmCancel cancels the model and answers cancelled, after the chunks already streamed', async () => {
    const model = new FakeModel('m', 'v', 'f', { fragments: ['first ', 'second '], delayMs: 1, hang: true });
    const t = await pair(new FakeBackend([model]));
    const answer = ask(t.helper, { turnId: 'c4/2', messages: convo });
    await waitFor(() => t.chunks.map((c) => c.text).join('') === 'first second ', 'the first chunks');
    // another turn's cancel changes nothing
    await t.helper.sendNotification('editor/lmCancel', { turnId: 'c4/1' });
    await sleep(50);
    assert.equal(t.lm.running, 1);
    await t.helper.sendNotification('editor/lmCancel', { turnId: 'c4/2' });
    const r = await answer;
    assert.deepEqual(r, { stopReason: 'cancelled', model: 'v/f/m' });
    assert.equal(model.calls[0]?.token.isCancellationRequested, true);
    assert.equal(t.lm.running, 0);
    assert.match(t.lines[0] ?? '', /cancelled/);
  });

  it('allows 4 turns at once: a fifth is refused (-32003) until one ends', async () => {
    const t = await pair(new FakeBackend([new FakeModel('m', 'v', 'f', { fragments: ['x'], hang: true })]));
    const answers = [1, 2, 3, 4].map((n) => ask(t.helper, { turnId: `c${n}/1`, messages: convo }));
    await waitFor(() => t.lm.running === 4, 'four turns running');
    const e = await rejection(ask(t.helper, { turnId: 'c5/1', messages: convo }));
    assert.equal(e.code, LM_BUSY);
    // the same turn twice is refused too
    const dup = await rejection(ask(t.helper, { turnId: 'c1/1', messages: convo }));
    assert.equal(dup.code, -32602);
    await t.helper.sendNotification('editor/lmCancel', { turnId: 'c2/1' });
    assert.equal((await answers[1])?.stopReason, 'cancelled');
    const fifth = ask(t.helper, { turnId: 'c5/1', messages: convo });
    await waitFor(() => t.lm.running === 4, 'the fifth turn running');
    for (const id of ['c1/1', 'c3/1', 'c4/1', 'c5/1']) await t.helper.sendNotification('editor/lmCancel', { turnId: id });
    for (const a of [answers[0], answers[2], answers[3], fifth]) assert.equal((await a)?.stopReason, 'cancelled');
  });

  it('bounds the text: too long a conversation is refused, too long an answer ends max_tokens', async () => {
    const model = new FakeModel('m', 'v', 'f', { fragments: ['abcdef', 'ghijkl', 'mnopqr'], hang: true });
    const t = await pair(new FakeBackend([model]), { maxInputChars: 20, maxOutputChars: 10 });
    const e = await rejection(ask(t.helper, { turnId: 'c1/1', messages: [{ role: 'user', text: 'x'.repeat(21) }] }));
    assert.equal(e.code, -32602);
    assert.match(e.message, /21 characters, more than 20/);
    const r = await ask(t.helper, { turnId: 'c1/2', messages: [{ role: 'user', text: 'x'.repeat(20) }] });
    assert.equal(r.stopReason, 'max_tokens');
    assert.equal(t.chunks.map((c) => c.text).join(''), 'abcdefghij');
    assert.equal(model.calls[0]?.token.isCancellationRequested, true, 'the model is stopped');
  });

  it('refuses malformed params with -32602', async () => {
    const t = await pair(new FakeBackend([new FakeModel('m', 'v', 'f', { fragments: ['x'] })]));
    for (const bad of [
      {}, { turnId: '', messages: convo }, { turnId: 'c1/1', messages: [] }, { turnId: 'c1/1', messages: [{ role: 'system', text: 'x' }] },
      { turnId: 'c1/1', messages: [{ role: 'user' }] }, { turnId: 'c1/1', vendor: 3, messages: convo }, { turnId: 'x'.repeat(129), messages: convo },
    ]) {
      const e = await rejection(ask(t.helper, bad));
      assert.equal(e.code, -32602, JSON.stringify(bad));
    }
    assert.equal(t.lm.running, 0);
  });

  it('the connection going away (the helper exited) cancels its turns', async () => {
    const model = new FakeModel('m', 'v', 'f', { fragments: ['x'], hang: true });
    const t = await pair(new FakeBackend([model]));
    void ask(t.helper, { turnId: 'c1/1', messages: convo }).catch(() => undefined);
    await waitFor(() => t.lm.running === 1, 'the turn running');
    t.attached.dispose();
    await waitFor(() => t.lm.running === 0, 'the turn to end');
    assert.equal(model.calls[0]?.token.isCancellationRequested, true);
  });
});
