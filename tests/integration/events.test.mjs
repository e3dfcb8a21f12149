// Events: one sequence per workspace, fan-out to subscribers, replay with
// `since`, resync when the ring has moved on, and slow subscribers closed
// without slowing the others. Real helper, ws clients, vscode-jsonrpc editor.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Editor, sleep, tempDir, SLOW } from './lib/harness.mjs';
import { git, write, baseRepo } from './lib/gitfix.mjs';

async function subscribe(c, events, since, id = `s${Math.random().toString(36).slice(2)}`) {
  c.send({ type: 'subscribe', id, data: since === undefined ? { events } : { events, since } });
  return c.next((m) => m.id === id && m.type === 'subscribed');
}

const notify = (ed, i) => ed.request('server/broadcast', { type: 'notify', data: { title: 'n', message: `m${i}` } });

describe('events', () => {
  let ed; let dir;
  before(async () => {
    dir = tempDir();
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        events: { historySize: 64 },
        limits: { maxConnections: 200, maxUnauthenticated: 200, commandsPerSecond: 1000 },
        tasks: { hello: { command: 'sh', args: ['-c', 'echo one; echo two; exit 4'] } },
      },
    });
  });
  after(async () => { await ed.stop(); });

  test('1,000 events reach 50 subscribers in order, seq rising by one', async () => {
    const subs = [];
    for (let i = 0; i < 50; i++) {
      const c = await ed.client({ sub: `sub${i}` });
      const r = await subscribe(c, ['notify']);
      subs.push({ c, start: r.data.seq });
    }
    const t0 = Date.now();
    const sent = [];
    for (let i = 0; i < 1000; i++) sent.push(notify(ed, i));
    await Promise.all(subs.map(async ({ c, start }) => {
      for (let i = 0; i < 1000; i++) {
        const e = await c.next((m) => m.type === 'event', 20000 * SLOW);
        assert.equal(e.data.event, 'notify');
        assert.equal(e.data.seq, start + i + 1);
        assert.equal(e.data.payload.message, `m${i}`);
      }
    }));
    await Promise.all(sent);
    const ms = Date.now() - t0;
    console.log(`# 1,000 events x 50 subscribers delivered in order in ${ms} ms`);
    subs.forEach(({ c }) => c.close());
  });

  test('subscribed.seq is the newest; since replays what was missed, nothing twice', async () => {
    const a = await ed.client();
    const s1 = await subscribe(a, ['notify']);
    for (let i = 0; i < 5; i++) await notify(ed, `r${i}`);
    let last = s1.data.seq;
    for (let i = 0; i < 2; i++) last = (await a.next((m) => m.type === 'event')).data.seq;
    a.terminate();
    for (let i = 5; i < 8; i++) await notify(ed, `r${i}`);
    const b = await ed.client();
    const s2 = await subscribe(b, ['notify'], last);
    assert.equal(s2.data.seq, s1.data.seq + 8);
    const seqs = [];
    for (let i = 0; i < 6; i++) seqs.push((await b.next((m) => m.type === 'event')).data.seq);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6].map((k) => last + k));
    await sleep(200);
    assert.equal(b.queue.filter((m) => m.type === 'event').length, 0, 'nothing duplicated');
    b.close();
  });

  test('resync when the ring has moved on', async () => {
    const c = await ed.client();
    const s = await subscribe(c, ['file.saved']);
    const from = s.data.seq;
    for (let i = 0; i < 100; i++) await notify(ed, `x${i}`); // ring holds 64
    const d = await ed.client();
    await subscribe(d, ['notify'], from);
    const first = await d.next((m) => m.type === 'event');
    assert.equal(first.data.event, 'resync');
    const newest = from + 100;
    assert.equal(first.data.seq, newest - 64);
    const next = await d.next((m) => m.type === 'event');
    assert.equal(next.data.seq, newest - 63);
    c.close(); d.close();
  });

  test('a since from an earlier run of the helper (larger than seq) resyncs', async () => {
    const c = await ed.client();
    await subscribe(c, ['notify'], 10_000_000);
    assert.equal((await c.next((m) => m.type === 'event')).data.event, 'resync');
    c.close();
  });

  test('task.started and task.finished carry the run id, user and result', async () => {
    const watcher = await ed.client({ sub: 'watcher' });
    await subscribe(watcher, ['task.started', 'task.finished']);
    const runner = await ed.client({ sub: 'runner', scope: 'read run' });
    runner.send({ type: 'command', id: 'run-7', data: { name: 'task.run', args: { name: 'hello' } } });
    const started = await watcher.next((m) => m.type === 'event' && m.data.event === 'task.started');
    assert.deepEqual([started.data.payload.name, started.data.payload.id, started.data.payload.userId], ['hello', 'run-7', 'runner']);
    const done = await watcher.next((m) => m.type === 'event' && m.data.event === 'task.finished');
    assert.equal(done.data.payload.exitCode, 4);
    assert.equal(done.data.seq, started.data.seq + 1);
    assert.match(done.data.payload.tail, /two/);
    runner.close(); watcher.close();
  });

  test('file.saved from the editor, with a folder-relative path', async () => {
    const c = await ed.client();
    await subscribe(c, ['file.saved']);
    ed.notify('workspace/didSaveTextDocument', { uri: `file://${path.join(dir, 'src', 'x.c')}` });
    ed.notify('workspace/didSaveTextDocument', { uri: 'file:///etc/passwd' });
    const e = await c.next((m) => m.type === 'event');
    assert.deepEqual(e.data.payload, { folder: path.basename(dir), path: 'src/x.c' });
    await sleep(200);
    assert.equal(c.queue.length, 0, 'a save outside the workspace is not an event');
    c.close();
  });

  test('unsubscribe stops delivery; bad subscriptions are refused', async () => {
    const c = await ed.client();
    await subscribe(c, ['notify']);
    c.send({ type: 'unsubscribe', id: 'u1', data: { events: ['notify'] } });
    assert.equal((await c.next((m) => m.id === 'u1')).type, 'unsubscribed');
    await notify(ed, 'after');
    await sleep(200);
    assert.equal(c.queue.filter((m) => m.type === 'event').length, 0);
    c.send({ type: 'subscribe', id: 'b1', data: { events: ['nope'] } });
    assert.equal((await c.next((m) => m.id === 'b1')).data.code, 'INVALID_MESSAGE');
    c.send({ type: 'subscribe', id: 'b2', data: { events: ['notify'], since: -1 } });
    assert.equal((await c.next((m) => m.id === 'b2')).data.code, 'INVALID_MESSAGE');
    c.close();
  });

  test('a token without read cannot subscribe', async () => {
    const c = await ed.client({ scope: 'editor' });
    c.send({ type: 'subscribe', id: 'f1', data: { events: ['notify'] } });
    assert.equal((await c.next((m) => m.id === 'f1')).data.code, 'FORBIDDEN');
    c.close();
  });

  test('chat notify on: task ends and notifications arrive as chat_reply with the event seq', async () => {
    const c = await ed.client({ scope: 'read run' });
    c.send({ type: 'chat', id: 'n1', data: { text: 'notify on' } });
    assert.match((await c.next((m) => m.id === 'n1')).data.text, /on/i);
    await notify(ed, 'build done');
    const r = await c.next((m) => m.type === 'chat_reply' && m.data.event);
    assert.equal(r.id, undefined);
    assert.match(r.data.text, /build done/);
    c.send({ type: 'chat', id: 'n2', data: { text: 'notify off' } });
    await c.next((m) => m.id === 'n2');
    await notify(ed, 'silent');
    await sleep(200);
    assert.equal(c.queue.filter((m) => m.data && m.data.event).length, 0);
    c.close();
  });
});

describe('events: slow subscriber', () => {
  test('a subscriber that never reads is closed 1008; the others keep up', async () => {
    const ed = new Editor();
    try {
      await ed.startServer({ settings: { limits: { maxQueuedBytes: 1048576 }, events: { historySize: 16 } } });
      const slow = await ed.client({ sub: 'slow' });
      await subscribe(slow, ['notify']);
      const fast = await ed.client({ sub: 'fast' });
      await subscribe(fast, ['notify']);
      slow.ws._socket.pause();
      const big = 'x'.repeat(30000);
      // Batches the fast reader can absorb (900 KB, under its 1 MiB queue),
      // while the paused one accumulates: beyond what loopback's socket
      // buffers hold (~10 MB), its queue in the helper overflows.
      for (let b = 0; b < 60 && !slow.closeInfo; b++) {
        const sent = [];
        for (let i = 0; i < 30; i++) sent.push(ed.request('server/broadcast', { type: 'notify', data: { title: 't', message: big } }));
        await Promise.all(sent);
        for (let i = 0; i < 30; i++) await fast.next((m) => m.type === 'event', 20000);
        if ((await ed.request('server/status', {})).counters.slowConsumers > 0) break;
      }
      // The close frame cannot reach a client that does not read: the
      // session goes after its close grace period (5 s).
      let st;
      for (let t = 0; t < 100; t++) {
        st = await ed.request('server/status', {});
        if (!st.clients.some((x) => x.userId === 'slow')) break;
        await sleep(100);
      }
      assert.ok(!st.clients.some((x) => x.userId === 'slow'), 'the slow subscriber was dropped');
      assert.ok(st.counters.slowConsumers >= 1);
      assert.ok(st.clients.some((x) => x.userId === 'fast'), 'the fast one is still there');
      slow.ws._socket.resume();
      const info = await slow.waitClose(10000);
      assert.ok([1008, 1006].includes(info.code), `close ${info.code}`);
      fast.close();
    } finally { await ed.stop(); }
  });
});

describe('events: git.changed', () => {
  let ed; let dir; let c;
  before(async () => {
    dir = baseRepo();
    ed = new Editor();
    await ed.startServer({ folders: [dir] });
    c = await ed.client();
    await subscribe(c, ['git.changed']);
    await sleep(1500); // the watcher's first status is its baseline
  });
  after(async () => { c.close(); await ed.stop(); });

  const nextChange = () => c.next((m) => m.type === 'event' && m.data.event === 'git.changed', 8000 * SLOW);
  async function assertQuiet(ms) {
    await sleep(ms);
    const extra = c.queue.filter((m) => m.type === 'event');
    assert.equal(extra.length, 0, `unexpected events: ${JSON.stringify(extra)}`);
  }

  test('a burst of edits is one event with the count of changed paths', async () => {
    for (let i = 0; i < 20; i++) write(dir, `burst/f${i}.txt`, `${i}\n`);
    write(dir, 'a.txt', 'edited\n');
    const e = await nextChange();
    assert.equal(e.data.payload.folder, path.basename(dir));
    assert.equal(e.data.payload.branch, 'main');
    assert.equal(e.data.payload.changed, 21);
    await assertQuiet(2500);
  });

  test('a commit moves head', async () => {
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'burst');
    const head = git(dir, 'rev-parse', 'HEAD').trim();
    let e = await nextChange();
    // git add and git commit may land in two debounce windows: the last
    // event must describe the committed state.
    while (e.data.payload.head !== head) e = await nextChange();
    assert.equal(e.data.payload.changed, 0);
    await assertQuiet(2000);
  });

  test('a checkout changes the branch', async () => {
    git(dir, 'checkout', '-qb', 'feature');
    const e = await nextChange();
    assert.equal(e.data.payload.branch, 'feature');
    await assertQuiet(2000);
  });

  test('a write that does not change status is no event', async () => {
    write(dir, 'scratch.txt', 'one\n');
    await nextChange();
    write(dir, 'scratch.txt', 'two\n'); // still the same one untracked file
    await assertQuiet(2500);
  });
});
