// Tasks: configured argv run in their own process group, streamed to the
// client that asked, ended by timeout, cancel or disconnect, with no process
// of the group left behind. Real processes, real signals.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { Editor, connect, tempDir, sleep, SLOW } from './lib/harness.mjs';

/* Every process whose command line carries the marker (the task's argv). */
function processesWith(marker) {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch { return []; }
}

async function waitNoProcess(marker, timeoutMs = 5000 * SLOW) {
  const deadline = Date.now() + timeoutMs;
  while (processesWith(marker).length) {
    if (Date.now() > deadline) throw new Error(`processes with ${marker} still alive: ${processesWith(marker)}`);
    await sleep(50);
  }
}

/* Collects a streamed run: stream_start, chunks, stream_end (or an error reply). */
async function runTask(c, name, id = `t-${name}-${Math.random().toString(36).slice(2)}`, { timeoutMs = 20000 * SLOW } = {}) {
  c.send({ type: 'command', id, data: { name: 'task.run', args: { name } } });
  const first = await c.next((m) => m.id === id, timeoutMs);
  if (first.type !== 'stream_start') return { first };
  const out = { stdout: '', stderr: '', chunks: 0 };
  for (;;) {
    const m = await c.next((x) => x.id === id, timeoutMs);
    if (m.type === 'stream_chunk') { out[m.data.stream] += m.data.text; out.chunks++; continue; }
    assert.equal(m.type, 'stream_end');
    return { first, ...out, end: m.data };
  }
}

describe('tasks', () => {
  let ed; let dir; const marker = `companion-task-${process.pid}`;
  before(async () => {
    dir = tempDir();
    mkdirSync(path.join(dir, 'sub'));
    symlinkSync('/tmp', path.join(dir, 'outside'));
    const script = path.join(dir, 'tree.sh');
    // A parent that starts a grandchild ignoring SIGTERM, then waits.
    writeFileSync(script, `#!/bin/sh\nsh -c 'trap "" TERM; while :; do sleep 0.2; done' ${marker}-grandchild &\necho started\nwait\n`);
    chmodSync(script, 0o755);
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        limits: { maxOutputBytes: 65536, maxConcurrentTasks: 2, commandsPerSecond: 1000 },
        tasks: {
          hello: { command: 'sh', args: ['-c', 'echo hello; echo oops >&2; exit 3'] },
          pwd: { command: 'pwd', cwd: 'sub' },
          env: { command: 'sh', args: ['-c', 'echo "$COMPANION_T"'], env: { COMPANION_T: 'from-settings' } },
          flood: { command: 'sh', args: ['-c', `yes ${marker}-flood | head -c 104857600`] },
          utf8: { command: 'sh', args: ['-c', 'i=0; while [ $i -lt 3000 ]; do printf "é€😀"; i=$((i+1)); done'] },
          badbytes: { command: 'printf', args: ['a\\377b'] },
          selfkill: { command: 'sh', args: ['-c', 'kill -KILL $$'] },
          tree: { command: script, args: [marker], timeoutSeconds: 1 },
          sleeper: { command: 'sh', args: ['-c', 'sleep 30; true', `${marker}-sleeper`] },
          longtree: { command: script, args: [marker + '-long'] },
          nosuch: { command: 'companion-no-such-command-xyz' },
          escape: { command: 'pwd', cwd: 'outside' },
          ask: { command: 'echo', args: ['approved run'], confirm: true },
        },
      },
    });
  });
  after(async () => {
    await ed.stop();
    await waitNoProcess(marker);
  });

  test('task.list shows the configured tasks', async () => {
    const c = await ed.client({ scope: 'read' });
    const r = await c.command('task.list');
    assert.equal(r.data.success, true);
    const hello = r.data.result.tasks.find((t) => t.name === 'hello');
    assert.deepEqual(hello, { name: 'hello', command: 'sh', args: ['-c', 'echo hello; echo oops >&2; exit 3'], confirm: false });
    c.close();
  });

  test('stdout, stderr and the exit code are streamed', async () => {
    const c = await ed.client({ scope: 'read run' });
    const r = await runTask(c, 'hello');
    assert.equal(r.first.data.name, 'hello');
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, 'oops\n');
    assert.equal(r.end.exitCode, 3);
    assert.equal(r.end.signal, null);
    assert.equal(r.end.truncated, false);
    assert.equal(typeof r.end.durationMs, 'number');
    c.close();
  });

  test('cwd is relative to the workspace folder; env is added', async () => {
    const c = await ed.client({ scope: 'run' });
    assert.equal((await runTask(c, 'pwd')).stdout.trim(), path.join(dir, 'sub'));
    assert.equal((await runTask(c, 'env')).stdout.trim(), 'from-settings');
    c.close();
  });

  test('a signal that ends the task is reported', async () => {
    const c = await ed.client({ scope: 'run' });
    const r = await runTask(c, 'selfkill');
    assert.equal(r.end.exitCode, null);
    assert.equal(r.end.signal, 'KILL');
    c.close();
  });

  test('100 MB of output: capped, truncated, memory flat, process gone', async () => {
    const c = await ed.client({ scope: 'run' });
    const pid = ed.child.pid;
    const rss = () => Number((execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).match(/VmRSS:\s+(\d+)/) || [])[1]);
    const before = rss();
    const r = await runTask(c, 'flood', undefined, { timeoutMs: 60000 * SLOW });
    assert.equal(r.end.truncated, true);
    assert.ok(r.stdout.length <= 65536 && r.stdout.length > 60000, `got ${r.stdout.length} bytes`);
    assert.ok(rss() - before < 30 * 1024, `RSS grew by ${rss() - before} kB`);
    await waitNoProcess(`${marker}-flood`);
    c.close();
  });

  test('chunks never split a UTF-8 sequence; invalid bytes become U+FFFD', async () => {
    const c = await ed.client({ scope: 'run' });
    const r = await runTask(c, 'utf8');
    assert.equal(r.stdout, 'é€😀'.repeat(3000));
    assert.ok(!r.stdout.includes('\uFFFD'));
    const b = await runTask(c, 'badbytes');
    assert.equal(b.stdout, 'a\uFFFDb');
    c.close();
  });

  test('timeout: SIGTERM, then SIGKILL to the whole group, grandchild included', async () => {
    const c = await ed.client({ scope: 'run' });
    const t0 = Date.now();
    const r = await runTask(c, 'tree');
    assert.equal(r.end.timedOut, true);
    assert.ok(r.end.signal === 'TERM' || r.end.signal === 'KILL', `signal ${r.end.signal}`);
    assert.ok(Date.now() - t0 < 8000 * SLOW);
    await waitNoProcess(`${marker}-grandchild`);
    c.close();
  });

  test('task.cancel ends the whole group', async () => {
    const c = await ed.client({ scope: 'run' });
    const id = 'cancel-me';
    c.send({ type: 'command', id, data: { name: 'task.run', args: { name: 'longtree' } } });
    await c.next((m) => m.id === id && m.type === 'stream_start');
    await c.next((m) => m.id === id && m.type === 'stream_chunk');
    assert.ok(processesWith(`${marker}-long`).length > 0, 'the task tree is running');
    const r = await c.command('task.cancel', { id });
    assert.deepEqual(r.data.result, { cancelled: true });
    const end = await c.next((m) => m.id === id && m.type === 'stream_end', 10000 * SLOW);
    assert.equal(end.data.cancelled, true);
    await waitNoProcess(`${marker}-long`);
    const again = await c.command('task.cancel', { id });
    assert.equal(again.data.error.code, 'NOT_FOUND');
    c.close();
  });

  test('a client that disconnects mid-stream ends its task group', async () => {
    const c = await ed.client({ scope: 'run' });
    c.send({ type: 'command', id: 'gone', data: { name: 'task.run', args: { name: 'sleeper' } } });
    await c.next((m) => m.id === 'gone' && m.type === 'stream_start');
    await sleep(100);
    assert.ok(processesWith(`${marker}-sleeper`).length > 0);
    c.terminate();
    await waitNoProcess(`${marker}-sleeper`);
    const c2 = await ed.client({ scope: 'run' });
    assert.equal((await runTask(c2, 'hello')).end.exitCode, 3, 'the helper keeps serving');
    c2.close();
  });

  test('maxConcurrentTasks: one more is BUSY', async () => {
    const c = await ed.client({ scope: 'run' });
    for (const id of ['s1', 's2']) {
      c.send({ type: 'command', id, data: { name: 'task.run', args: { name: 'sleeper' } } });
      await c.next((m) => m.id === id && m.type === 'stream_start');
    }
    const r = await c.command('task.run', { name: 'hello' });
    assert.equal(r.data.error.code, 'BUSY');
    c.close();
    await waitNoProcess(`${marker}-sleeper`);
  });

  test('refusals: unknown task, missing name, read-only token, cwd escape, missing command', async () => {
    const ro = await ed.client({ scope: 'read' });
    assert.equal((await ro.command('task.run', { name: 'hello' })).data.error.code, 'FORBIDDEN');
    ro.close();
    const c = await ed.client({ scope: 'run' });
    assert.equal((await c.command('task.run', { name: 'nope' })).data.error.code, 'NOT_FOUND');
    assert.equal((await c.command('task.run', {})).data.error.code, 'INVALID_ARGS');
    assert.equal((await c.command('task.run', { name: 5 })).data.error.code, 'INVALID_ARGS');
    const esc = await c.command('task.run', { name: 'escape' });
    assert.equal(esc.data.error.code, 'FORBIDDEN', JSON.stringify(esc));
    assert.ok(!esc.data.error.message.includes('/tmp'), 'no outside path in the message');
    const ns = await c.command('task.run', { name: 'nosuch' });
    assert.equal(ns.data.error.code, 'PROCESSING_ERROR');
    assert.match(ns.data.error.message, /not found/);
    c.close();
  });

  test('confirm: the person at the editor approves or denies (companion/approvalRequested, approval/decide)', async () => {
    const c = await ed.client({ sub: 'phone', scope: 'run' });
    c.send({ type: 'command', id: 'a1', data: { name: 'task.run', args: { name: 'ask' } } });
    const pending = await c.next((m) => m.id === 'a1');
    assert.equal(pending.type, 'approval_pending');
    const asked = await ed.waitNotification('companion/approvalRequested', (p) => p.approvalId === pending.data.approvalId);
    assert.match(asked.title, /ask/);
    assert.equal(asked.requestedBy.userId, 'phone');
    assert.deepEqual(asked.action.args, ['approved run']);
    const r = await ed.request('approval/decide', { approvalId: asked.approvalId, decision: 'allow_once' });
    assert.equal(r.took, true);
    let out = '';
    for (;;) {
      const m = await c.next((x) => x.id === 'a1');
      if (m.type === 'stream_chunk') out += m.data.text;
      if (m.type === 'stream_end') break;
    }
    assert.equal(out, 'approved run\n');
    c.send({ type: 'command', id: 'a2', data: { name: 'task.run', args: { name: 'ask' } } });
    const p2 = await c.next((m) => m.id === 'a2');
    await ed.request('approval/decide', { approvalId: p2.data.approvalId, decision: 'deny' });
    const no = await c.next((m) => m.id === 'a2');
    assert.equal(no.data.error.code, 'FORBIDDEN');
    assert.match(no.data.error.message, /denied by editor/);
    c.close();
  });
});

describe('tasks without an editor', () => {
  test('a confirm task in serve mode is approved from a phone (approve scope)', async () => {
    const { Served, configHome } = await import('./lib/harness.mjs');
    const home = configHome();
    const dir = tempDir();
    writeFileSync(path.join(dir, 'companion.json'), JSON.stringify({ tasks: { ask: { command: 'echo', args: ['ran'], confirm: true } } }));
    const s = new Served(['--workspace', dir, '--port', '0', '--config', path.join(dir, 'companion.json'), '--scope', 'read,run,approve'], { env: home.env });
    try {
      const b = await s.banner();
      const c = await connect(b.url);
      await c.auth(b.token, b.workspaceId);
      c.send({ type: 'command', id: 't', data: { name: 'task.run', args: { name: 'ask' } } });
      const pending = await c.next((m) => m.id === 't');
      assert.equal(pending.type, 'approval_pending');
      const ok = await c.command('approve', { approvalId: pending.data.approvalId, decision: 'allow_once' });
      assert.equal(ok.data.result.took, true);
      const start = await c.next((m) => m.id === 't');
      assert.equal(start.type, 'stream_start');
      c.close();
    } finally {
      await s.stop();
      home.cleanup();
    }
  });
});
