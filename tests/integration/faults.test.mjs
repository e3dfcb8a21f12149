// Fault injection: what must hold when resources run out or things vanish
// under the helper. Each test checks that the helper keeps serving others,
// loses nothing it owns, and leaves no process behind.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, existsSync, readdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { Editor, connect, sleep, tempDir, HELPER_BIN, SLOW } from './lib/harness.mjs';
import { write, baseRepo } from './lib/gitfix.mjs';

const rss = (pid) => Number((execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).match(/VmRSS:\s+(\d+)/) || [])[1]);

describe('faults', () => {
  test('file descriptors exhausted: excess connections are shed, the helper keeps serving', async () => {
    const ed = new Editor({ fdLimit: 48 });
    try {
      await ed.startServer({ settings: { limits: { maxConnections: 1000, maxUnauthenticated: 1000 } } });
      const sockets = [];
      const results = await Promise.allSettled(Array.from({ length: 80 }, () => connect(ed.url).then((c) => { sockets.push(c); return c; })));
      const opened = results.filter((r) => r.status === 'fulfilled').length;
      assert.ok(opened < 80, `all 80 opened under ulimit -n 48 (${opened})`);
      sockets.forEach((c) => c.terminate());
      await sleep(500);
      const c = await ed.client();
      assert.equal((await c.request({ type: 'ping', id: 'p' })).type, 'pong');
      c.close();
      const st = await ed.request('server/status', {});
      assert.equal(st.state, 'running');
      assert.ok(st.counters.connectionsRefused > 0 || opened < 80);
    } finally {
      await ed.stop();
    }
  });

  test('a repository deleted while git.status runs: a clean error, then it serves on', async () => {
    const dir = baseRepo();
    for (let i = 0; i < 3000; i++) write(dir, `d${i % 50}/f${i}.txt`, `${i}\n`);
    const ed = new Editor();
    try {
      await ed.startServer({ folders: [dir] });
      const c = await ed.client();
      c.send({ type: 'command', id: 'g', data: { name: 'git.status' } });
      rmSync(dir, { recursive: true, force: true });
      const r = await c.next((m) => m.id === 'g', 20000 * SLOW);
      assert.equal(r.type, 'command_response');
      if (!r.data.success) assert.ok(['NOT_A_REPOSITORY', 'PROCESSING_ERROR', 'NOT_FOUND'].includes(r.data.error.code), JSON.stringify(r.data));
      const again = await c.command('git.status');
      assert.equal(again.data.success, false);
      assert.ok(!JSON.stringify(again).includes(dir), 'no absolute path in the error');
      assert.equal((await c.request({ type: 'ping', id: 'p' })).type, 'pong');
      c.close();
    } finally {
      await ed.stop();
    }
  });

  test('disk full while writing the secret: a clear error and no partial secret file', async () => {
    const mnt = tempDir('companion-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mnt]);
    try {
      const cfg = path.join(mnt, 'config');
      mkdirSync(cfg, { mode: 0o700 });
      // Fill the file system so the secret cannot be written.
      try { writeFileSync(path.join(mnt, 'fill'), Buffer.alloc(64 * 1024)); } catch { /* ENOSPC: full */ }
      const r = spawnSync(HELPER_BIN, ['token', '--workspace', tempDir()], {
        env: { ...process.env, XDG_CONFIG_HOME: cfg, HOME: mnt }, encoding: 'utf8',
      });
      assert.equal(r.status, 1, `exit ${r.status}: ${r.stderr}`);
      assert.match(r.stderr, /secret/i);
      assert.equal(r.stdout, '');
      const dirEntries = existsSync(path.join(cfg, 'companion')) ? readdirSync(path.join(cfg, 'companion')) : [];
      assert.deepEqual(dirEntries, [], `left behind: ${dirEntries}`);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });

  test('a client that stops reading while its task floods output: closed, task group killed, memory flat', async () => {
    const marker = `companion-flood-${process.pid}`;
    // Under ASan, freed memory sits in a 256 MB quarantine and would count
    // as growth: keep it small so the bound means the same in both builds.
    const ed = new Editor({ env: { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=8` } });
    try {
      await ed.startServer({
        folders: [tempDir()],
        settings: {
          limits: { maxQueuedBytes: 262144, maxOutputBytes: 1073741824 },
          tasks: { flood: { command: 'sh', args: ['-c', 'yes "$0 flooding the client with output"', marker] } },
        },
      });
      const before = rss(ed.child.pid);
      const c = await ed.client({ scope: 'read run' });
      c.send({ type: 'command', id: 'f', data: { name: 'task.run', args: { name: 'flood' } } });
      await c.next((m) => m.id === 'f' && m.type === 'stream_start');
      c.ws._socket.pause();
      let st;
      for (let i = 0; i < 100; i++) {
        st = await ed.request('server/status', {});
        if (st.counters.slowConsumers > 0) break;
        await sleep(100);
      }
      assert.ok(st.counters.slowConsumers > 0, 'the client was closed as a slow consumer');
      const deadline = Date.now() + 10000;
      const alive = () => { try { return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim(); } catch { return ''; } };
      while (alive() && Date.now() < deadline) await sleep(100);
      assert.equal(alive(), '', 'the task group was killed');
      assert.ok(rss(ed.child.pid) - before < 40 * 1024, `RSS grew ${rss(ed.child.pid) - before} kB`);
      c.ws._socket.resume();
      const other = await ed.client();
      assert.equal((await other.request({ type: 'ping', id: 'p' })).type, 'pong');
      other.close();
    } finally {
      await ed.stop();
    }
  });
});

describe('faults: the helper killed with SIGKILL', () => {
  test('no task survives it: its reaper kills every task group', async () => {
    const marker = `companion-orphan-${process.pid}`;
    const ed = new Editor();
    try {
      await ed.startServer({
        folders: [tempDir()],
        settings: { tasks: { long: { command: 'sh', args: ['-c', 'sleep 60 & sleep 60; wait', marker] } } },
      });
      const c = await ed.client({ scope: 'read run' });
      c.send({ type: 'command', id: 'l', data: { name: 'task.run', args: { name: 'long' } } });
      await c.next((m) => m.id === 'l' && m.type === 'stream_start');
      const alive = () => { try { return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim(); } catch { return ''; } };
      const group = () => { try { return execFileSync('pgrep', ['-g', alive().split('\n')[0] || '0'], { encoding: 'utf8' }).trim(); } catch { return ''; } };
      await sleep(200);
      assert.notEqual(alive(), '', 'the task runs');
      const pgid = alive().split('\n')[0];
      assert.ok(group().split('\n').length >= 2, 'with children in its group');
      ed.child.kill('SIGKILL');
      await ed.exited;
      const deadline = Date.now() + 5000;
      const left = () => { try { return execFileSync('pgrep', ['-g', pgid], { encoding: 'utf8' }).trim(); } catch { return ''; } };
      while (left() && Date.now() < deadline) await sleep(100);
      assert.equal(left(), '', `processes of the task's group survived the helper: ${left()}`);
    } finally {
      await ed.stop();
    }
  });
});

describe('faults: the wall clock jumps (libfaketime)', () => {
  const lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
  test('a jump past a token\'s expiry closes its session 4001; a jump back does not revive expired tokens', async () => {
    const dir = tempDir('companion-clock-');
    const clock = path.join(dir, 'offset');
    // Replaced atomically, so the helper never reads a half-written offset.
    const setClock = (offset) => { writeFileSync(`${clock}.new`, `${offset}\n`); renameSync(`${clock}.new`, clock); };
    setClock('+0');
    // Only the wall clock is faked: lws's timers run on the monotonic one.
    // ASan wants its runtime first among loaded libraries; libfaketime in
    // LD_PRELOAD is placed before it, which is harmless here.
    const asan = `${process.env.ASAN_OPTIONS || ''}:verify_asan_link_order=0`;
    const ed = new Editor({
      env: {
        LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: clock, FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1', ASAN_OPTIONS: asan,
      },
    });
    try {
      await ed.startServer({ settings: { auth: { leewaySeconds: 5 } } });
      const c = await ed.client({ sub: 'clock' }, {});
      const other = await ed.client({ sub: 'long' });
      // A token good for 10 minutes, then the clock moves 20 minutes ahead.
      const short = await connect(ed.url);
      const tok = ed.token({ sub: 'short' }, { expiresIn: '10m' });
      assert.equal((await short.auth(tok, ed.workspaceId)).data.success, true);
      setClock('+20m');
      const info = await short.waitClose(5000 * SLOW);
      assert.equal(info.code, 4001, 'closed when the wall clock passed exp + leeway');
      const again = await connect(ed.url);
      assert.equal((await again.auth(tok, ed.workspaceId)).data.error.code, 'AUTH_EXPIRED');
      // Back in time: the token looks valid again by the clock, and it is:
      // only the token's own claims decide, so no state is lost either way.
      setClock('+0');
      const back = await connect(ed.url);
      assert.equal((await back.auth(tok, ed.workspaceId)).data.success, true);
      back.close();
      // The helper kept serving throughout.
      assert.equal((await other.request({ type: 'ping', id: 'p' })).type, 'pong');
      c.close(); other.close();
    } finally {
      await ed.stop();
    }
  });
});
