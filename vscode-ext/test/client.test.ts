/*
 * The client and its supervisor against the real companion-helper binary:
 * real pipes, real sockets, real signals. No VS Code.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { HelperClient, isPortTaken, parseStderrLine } from '../src/client';
import type { EditorHandlers } from '../src/protocol';
import {
  RecordingLogger, freePort, isAlive, makeClient, pairedClient, sleep, waitFor, type TestClient,
} from './util';

const live: TestClient[] = [];
function track(t: TestClient): TestClient {
  live.push(t);
  return t;
}
afterEach(async () => {
  while (live.length) await live.pop()?.client.dispose();
});

function health(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/health' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(true));
  });
}

describe('HelperClient with the real helper', { timeout: 60000 }, () => {
  it('starts the helper, initializes it and starts the server', async () => {
    const t = track(makeClient());
    const r = await t.client.start({ server: true });
    assert.ok(r, 'server/start answered');
    assert.ok(r.port > 0);
    assert.equal(r.url, `ws://127.0.0.1:${r.port}/ws`);
    assert.equal(t.client.status.state, 'running');
    assert.equal(t.client.status.port, r.port);
    const h = await health(r.port);
    assert.equal(h.status, 200);
    assert.equal((JSON.parse(h.body) as { status: string }).status, 'ok');
    const st = await t.client.serverStatus();
    assert.equal(st.state, 'running');
    assert.equal(st.workspaceId, 'ws-ext-test');
    // the helper's stderr reaches the logger
    await waitFor(() => t.logger.text().includes('[helper]'), 'helper stderr in the log');
  });

  it('keeps the secret out of argv and the environment', async () => {
    const t = track(makeClient());
    await t.client.start({ server: false });
    const pid = t.client.pid;
    assert.ok(pid);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    assert.deepEqual(cmdline.split('\0').filter(Boolean).slice(1), ['--stdio']);
    for (const [what, v] of [['stored secret', t.secret], ['workspace key', t.key]] as const) {
      assert.ok(!environ.includes(v), `${what} in the environment`);
      assert.ok(!t.logger.text().includes(v), `${what} in the log`);
    }
  });

  it('sends privatePaths in initialize, which the helper accepts', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-private-'));
    const privatePaths = [path.join(dir, 'globalStorage'), path.join(dir, 'workspaceStorage'), path.join(dir, 'logs')];
    const t = track(makeClient({}, {}, { privatePaths }));
    const r = await t.client.start({ server: true });
    assert.ok(r);
    assert.deepEqual(t.initialized?.privatePaths, privatePaths);
    assert.equal((await t.client.serverStatus()).state, 'running');
  });

  it('counts clients from clientConnected/clientDisconnected and can disconnect one', async () => {
    const t = track(makeClient());
    const r = await t.client.start({ server: true });
    assert.ok(r);
    const seen: string[] = [];
    t.client.onClientConnected.on((p) => seen.push(p.sessionId));
    const ws = await pairedClient(t.client, r.url);
    await waitFor(() => t.client.status.clients === 1, 'client count 1');
    const st = await t.client.serverStatus();
    assert.equal(st.clients.length, 1);
    assert.equal(st.clients[0]?.userId, 'phone');
    assert.deepEqual(seen, [st.clients[0]?.sessionId]);
    await t.client.disconnect(st.clients[0]?.sessionId ?? '', 'bye');
    const closed = await ws.closed;
    assert.equal(closed.code, 1000);
    await waitFor(() => t.client.status.clients === 0, 'client count 0');
  });

  it('restarts the helper after kill -9, with doubling backoff, and restarts the server', async () => {
    const t = track(makeClient({}, { backoffInitialMs: 150, backoffMaxMs: 1000 }));
    await t.client.start({ server: true });
    const delays: (number | undefined)[] = [];
    t.client.onCrash.on((c) => delays.push(c.restartInMs));
    for (let i = 0; i < 2; i++) {
      const pid = t.client.pid;
      assert.ok(pid);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await waitFor(() => t.client.status.state === 'starting', 'restarting state');
      await waitFor(
        () => t.client.pid !== undefined && t.client.pid !== pid && t.client.status.state === 'running',
        'a new helper with a running server',
      );
      const took = Date.now() - killedAt;
      assert.ok(took >= 150 * 2 ** i, `restart after ${took} ms is sooner than the backoff`);
      const port = t.client.status.port;
      assert.ok(port);
      assert.equal((await health(port)).status, 200);
    }
    assert.deepEqual(delays, [150, 300]);
    assert.match(t.logger.text(), /exited unexpectedly .*signal SIGKILL/);
  });

  it('gives up after 5 crashes within the window, and Restart recovers', async () => {
    const t = track(makeClient({}, { backoffInitialMs: 50, backoffMaxMs: 100, maxCrashes: 5, crashWindowMs: 60000 }));
    await t.client.start({ server: true });
    let gaveUp = 0;
    t.client.onGaveUp.on(() => gaveUp++);
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const pid = await waitFor(() => (t.client.status.state === 'running' ? t.client.pid : undefined), `helper #${i + 1}`);
      pids.add(pid);
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !isAlive(pid) && t.client.pid !== pid, 'the kill to be seen');
    }
    await waitFor(() => gaveUp === 1, 'gave up');
    assert.equal(pids.size, 5);
    await sleep(500); // longer than any backoff: nothing may start now
    assert.equal(t.client.pid, undefined);
    const s = t.client.status;
    assert.equal(s.state, 'error');
    assert.equal(s.gaveUp, true);
    assert.match(s.error ?? '', /crashed 5 times/);
    const r = await t.client.restart();
    assert.equal(t.client.status.state, 'running');
    assert.equal(t.client.status.gaveUp, false);
    assert.equal((await health(r.port)).status, 200);
  });

  it('stop() sends shutdown + exit: the helper exits with code 0 and the port closes', async () => {
    const t = track(makeClient());
    const r = await t.client.start({ server: true });
    assert.ok(r);
    const pid = t.client.pid;
    assert.ok(pid);
    const ws = await pairedClient(t.client, r.url);
    await t.client.stop();
    assert.equal(isAlive(pid), false);
    assert.match(t.logger.text(), /companion-helper exited \(code 0\)/);
    assert.equal((await ws.closed).code, 1001);
    assert.equal(await portRefuses(r.port), true);
    assert.equal(t.client.status.state, 'stopped');
    assert.doesNotMatch(t.logger.text(), /exited unexpectedly/);
  });

  it('stop() kills a helper that does not answer within the kill timeout', async () => {
    const t = track(makeClient({}, { killTimeoutMs: 800 }));
    await t.client.start({ server: false });
    const pid = t.client.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGSTOP');
    const t0 = Date.now();
    await t.client.stop();
    const took = Date.now() - t0;
    assert.ok(took >= 750 && took < 3000, `stop took ${took} ms`);
    assert.equal(isAlive(pid), false);
    assert.match(t.logger.text(), /did not exit in time: killing it/);
  });

  it('a taken port answers -32001 with data.port; the status names the port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const t = track(makeClient({ server: { host: '127.0.0.1', port } }));
      const err = await t.client.start({ server: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isPortTaken(err), `expected -32001, got ${String(err)}`);
      assert.equal(err.data?.port, port);
      assert.match(err.message, new RegExp(String(port)));
      assert.equal(t.client.status.state, 'error');
      assert.match(t.client.status.error ?? '', new RegExp(`port ${port} is already in use`));
      // the helper itself is still alive and usable
      assert.ok(t.client.pid && isAlive(t.client.pid));
      assert.equal((await t.client.serverStatus()).state, 'stopped');
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('stopServer closes the port, startServer opens it again', async () => {
    const port = await freePort();
    const t = track(makeClient({ server: { host: '127.0.0.1', port } }));
    await t.client.start({ server: true });
    assert.equal((await health(port)).status, 200);
    await t.client.stopServer();
    assert.equal(t.client.status.state, 'stopped');
    assert.equal(await portRefuses(port), true);
    await t.client.startServer();
    assert.equal(t.client.status.state, 'running');
    assert.equal((await health(port)).status, 200);
  });

  it('a settings change is sent live: a new port re-binds the running server', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const t = track(makeClient({ server: { host: '127.0.0.1', port: a } }));
    await t.client.start({ server: true });
    const ws = await pairedClient(t.client, `ws://127.0.0.1:${a}/ws`);
    await t.client.sendConfiguration({ server: { host: '127.0.0.1', port: b }, auth: { secret: t.key } });
    await waitFor(() => t.client.status.port === b, 'status on the new port');
    assert.equal((await ws.closed).code, 1001);
    const ws2 = await pairedClient(t.client, `ws://127.0.0.1:${b}/ws`);
    assert.equal(await portRefuses(a), true);
    // a new secret (Rotate Secret) drops the sessions with 4001
    await t.client.sendConfiguration({ server: { host: '127.0.0.1', port: b }, auth: { secret: 'f'.repeat(64) } });
    assert.equal((await ws2.closed).code, 4001);
  });

  it('moving a running server to a taken port answers -32001 and leaves it stopped', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const a = await freePort();
      const t = track(makeClient({ server: { host: '127.0.0.1', port: a } }));
      await t.client.start({ server: true });
      const ws = await pairedClient(t.client, `ws://127.0.0.1:${a}/ws`);
      const err = await t.client
        .sendConfiguration({ server: { host: '127.0.0.1', port: taken }, auth: { secret: t.key } })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(isPortTaken(err), `expected -32001, got ${String(err)}`);
      assert.equal(err.data?.port, taken);
      assert.equal((await ws.closed).code, 1001);
      assert.equal(t.client.status.state, 'error');
      assert.equal(await portRefuses(a), true);
      assert.equal((await t.client.serverStatus()).state, 'stopped');
      // a free port afterwards: Start Server works again
      const b = await freePort();
      await t.client.sendConfiguration({ server: { host: '127.0.0.1', port: b }, auth: { secret: t.key } });
      const r = await t.client.startServer();
      assert.equal(r.port, b);
      assert.equal((await health(b)).status, 200);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('answers editor/* requests through the editor handlers', async () => {
    const calls: string[] = [];
    const editor: EditorHandlers = {
      open: (p) => { calls.push(`open ${path.basename(p.path)}:${p.line ?? ''} ${p.uri.startsWith('file://')}`); return Promise.resolve({ opened: true }); },
      showMessage: (p) => { calls.push(`message ${p.severity} ${p.text}`); return Promise.resolve({ shown: true }); },
      diagnostics: () => Promise.resolve({ diagnostics: [] }),
      executeCommand: (p) => { calls.push(`command ${p.command}`); return Promise.resolve(42); },
    };
    const t = track(makeClient({
      tasks: { hello: { command: '/bin/echo', args: ['hi'], confirm: true } },
      editorCommands: ['companion.test.allowed'],
    }, { editor }));
    writeFileSync(path.join(t.folder, 'a.txt'), 'one\ntwo\n');
    const r = await t.client.start({ server: true });
    assert.ok(r);
    const ws = await pairedClient(t.client, r.url, ['read', 'run', 'editor']);
    const cmd = async (id: string, name: string, args: unknown) => {
      ws.send({ type: 'command', id, data: { name, args } });
      return (await ws.next((m) => m.id === id)).data as { success: boolean; result?: unknown; error?: { code: string } };
    };
    assert.deepEqual((await cmd('o', 'editor.open', { path: 'a.txt', line: 2 })).result, { opened: true });
    assert.deepEqual((await cmd('m', 'editor.message', { text: 'hello', severity: 'warning' })).result, { shown: true });
    assert.deepEqual((await cmd('c', 'editor.command', { command: 'companion.test.allowed' })).result, { result: 42 });
    assert.equal((await cmd('x', 'editor.command', { command: 'not.allowed' })).error?.code, 'FORBIDDEN');
    // A confirm task is an approval now (approvals.test.ts), never an editor request.
    ws.send({ type: 'command', id: 't', data: { name: 'task.run', args: { name: 'hello' } } });
    assert.equal((await ws.next((m) => m.id === 't')).type, 'approval_pending');
    assert.deepEqual(calls, ['open a.txt:2 true', 'message warning hello', 'command companion.test.allowed']);
  });
});

describe('supervisor policy', () => {
  it('backs off 1 s doubling to a 30 s cap by default', () => {
    const c = new HelperClient({
      helperPath: '/nonexistent',
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      initializeParams: () => Promise.reject(new Error('unused')),
    });
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => c.backoffDelay(n)), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('reads the level of a helper stderr line', () => {
    assert.deepEqual(parseStderrLine('2026-11-21T22:50:00.123Z warn: careful'), { level: 'warn', text: 'careful' });
    assert.deepEqual(parseStderrLine('no timestamp'), { level: 'info', text: 'no timestamp' });
  });

  it('reports a helper that cannot be spawned as an error, not a crash loop', async () => {
    const logger = new RecordingLogger();
    const c = new HelperClient({
      helperPath: '/nonexistent/companion-helper',
      logger,
      initializeParams: () => Promise.resolve({ processId: process.pid, clientInfo: { name: 't', version: '0' }, workspaceId: 'w', workspaceFolders: [], settings: {} }),
      backoffInitialMs: 50,
    });
    const crashes: unknown[] = [];
    c.onCrash.on((x) => crashes.push(x));
    await assert.rejects(c.start({ server: true }), /ENOENT/);
    await sleep(300); // longer than the backoff: no restart may be attempted
    assert.deepEqual(crashes, []);
    assert.equal(c.status.state, 'error');
    assert.match(c.status.error ?? '', /ENOENT/);
    assert.equal(logger.lines.filter((l) => l.includes('ENOENT')).length, 1);
    await c.dispose();
  });
});

