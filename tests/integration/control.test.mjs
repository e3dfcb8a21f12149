// Control plane (PROTOCOL section 1) against the real helper: the editor is
// vscode-jsonrpc (through the harness's Editor), remote clients are ws, tokens
// come from jsonwebtoken. The framer tests write raw bytes to the helper's
// stdin and parse its stdout themselves.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  Editor, connect, mintToken, httpGet, sleep, tempDir, newSecret, HELPER_BIN, SLOW, waitFor,
} from './lib/harness.mjs';

const VERSION_LINE = execFileSync(HELPER_BIN, ['--version']).toString().trim();
const VERSION = VERSION_LINE.replace(/^companion-helper\s+/, '');

/* ---- small local helpers ---- */

/* Resolves with the rejected error of p (fails when p resolves). */
async function rpcError(p) {
  try {
    const r = await p;
    assert.fail(`expected an error response, got ${JSON.stringify(r)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return e;
  }
}

/* A port that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/* Binds 127.0.0.1:port (0: any); resolves with the server, rejects on error. */
function bindPort(port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

const closeServer = (s) => new Promise((r) => s.close(() => r()));

/* true when a TCP connection to 127.0.0.1:port succeeds, false when refused. */
function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

/* Polls fn until it returns a truthy value, or throws after timeoutMs. */
async function until(fn, what, timeoutMs = 5000 * SLOW, stepMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/* Resolves with {code, signal, ms} when the helper exits, or rejects. */
async function exitWithin(proc, timeoutMs, t0 = Date.now()) {
  let t;
  const timeout = new Promise((_, rej) => {
    t = setTimeout(() => rej(new Error(`helper still running ${timeoutMs} ms later`)), timeoutMs);
  });
  try {
    const s = await Promise.race([proc.exited, timeout]);
    return { ...s, ms: Date.now() - t0 };
  } finally {
    clearTimeout(t);
  }
}

/* An editor with a started server (port 0 unless given) and a workspace folder. */
async function startedEditor(opts = {}) {
  const ed = new Editor();
  try {
    await ed.startServer(opts);
  } catch (e) {
    await ed.stop();
    throw e;
  }
  return ed;
}

/* The helper on raw pipes: the test writes bytes and reads framed replies. */
class RawHelper {
  /* stdin: 'pipe' (what Node gives a child: a socketpair) or 'fifo' (a real
   * pipe, as a shell or another launcher would give). */
  constructor({ stdin = 'pipe' } = {}) {
    let stdio0 = 'pipe';
    if (stdin === 'fifo') {
      this.fifoDir = tempDir('companion-fifo-');
      const fifo = path.join(this.fifoDir, 'stdin');
      execFileSync('mkfifo', [fifo]);
      stdio0 = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      this.wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
    }
    this.child = spawn(HELPER_BIN, ['--stdio'], { stdio: [stdio0, 'pipe', 'pipe'] });
    if (stdin === 'fifo') fs.closeSync(stdio0);
    this.buf = Buffer.alloc(0);
    this.messages = [];
    this.stderr = '';
    this.badOutput = null;
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    this.child.stdin?.on('error', () => {});
    this.child.stderr.on('data', (d) => { this.stderr += d.toString(); });
    this.child.stdout.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
  }

  /* The helper's own output must be well-formed LSP frames. */
  parse() {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const header = this.buf.subarray(0, end).toString();
      const m = header.match(/^Content-Length: (\d+)$/im);
      if (!m) { this.badOutput = header; return; }
      const len = Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      const body = this.buf.subarray(end + 4, end + 4 + len).toString();
      this.buf = this.buf.subarray(end + 4 + len);
      this.messages.push(JSON.parse(body));
    }
  }

  static frame(obj, headerName = 'Content-Length') {
    const body = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
    return Buffer.concat([Buffer.from(`${headerName}: ${body.length}\r\n\r\n`), body]);
  }

  write(bytes) {
    if (this.wfd !== undefined) {
      fs.writeSync(this.wfd, bytes);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.child.stdin.write(bytes, () => resolve()));
  }

  /* EOF on the helper's stdin. */
  endInput() {
    if (this.wfd !== undefined) {
      fs.closeSync(this.wfd);
      this.wfd = undefined;
    } else {
      this.child.stdin.end();
    }
  }

  /* The response with this id (or the first message matching a predicate). */
  async next(idOrPred, timeoutMs = 3000 * SLOW) {
    const pred = typeof idOrPred === 'function' ? idOrPred : (m) => m.id === idOrPred && !m.method;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      assert.equal(this.badOutput, null, `helper wrote a malformed frame header: ${this.badOutput}`);
      const i = this.messages.findIndex(pred);
      if (i >= 0) return this.messages.splice(i, 1)[0];
      if (this.child.exitCode !== null) throw new Error(`helper exited (${this.child.exitCode}): ${this.stderr}`);
      if (Date.now() > deadline) {
        throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      }
      await sleep(10);
    }
  }

  async initialize(id = 1) {
    await this.write(RawHelper.frame({
      jsonrpc: '2.0', id, method: 'initialize',
      params: { processId: process.pid, workspaceId: 'raw-ws', workspaceFolders: [], settings: { auth: { secret: newSecret() } } },
    }));
    const r = await this.next(id);
    assert.equal(r.result?.serverInfo?.name, 'companion-helper', JSON.stringify(r));
  }

  async stop() {
    if (this.wfd !== undefined) fs.closeSync(this.wfd);
    this.wfd = undefined;
    if (this.fifoDir) fs.rmSync(this.fifoDir, { recursive: true, force: true });
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000 * SLOW);
      const s = await this.exited;
      clearTimeout(t);
      assert.notEqual(s.signal, 'SIGKILL', 'helper did not stop on SIGTERM');
    }
    assert.doesNotMatch(this.stderr, /(LeakSanitizer|AddressSanitizer|runtime error:)/, this.stderr);
  }
}

const status = (id) => ({ jsonrpc: '2.0', id, method: 'server/status', params: {} });

/* ---- lifecycle and errors ---- */

describe('initialize', () => {
  test('result: serverInfo from --version, capabilities.commands, workspaceId echoed', async () => {
    const dir = tempDir();
    const ed = new Editor();
    try {
      assert.match(VERSION, /^\d+\.\d+\.\d+/, `--version printed ${VERSION_LINE}`);
      const r = await ed.initialize({ workspaceId: 'ws-init-echo', folders: [dir] });
      assert.deepEqual(r.serverInfo, { name: 'companion-helper', version: VERSION });
      assert.ok(Array.isArray(r.capabilities?.commands), JSON.stringify(r));
      assert.ok(r.capabilities.commands.includes('workspace.info'), JSON.stringify(r.capabilities));
      assert.ok(r.capabilities.commands.every((c) => typeof c === 'string'));
      assert.equal(r.workspaceId, 'ws-init-echo');
      // initialized (a notification) was written before this request.
      assert.equal((await ed.request('server/status', {})).state, 'stopped');
    } finally {
      await ed.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('requests before initialize get -32002; unknown method after it gets -32601', async () => {
    const ed = new Editor();
    try {
      for (const m of ['server/status', 'server/start']) {
        const e = await rpcError(ed.request(m, {}));
        assert.equal(e.code, -32002, `${m}: ${e.code} ${e.message}`);
      }
      await ed.initialize();
      const e = await rpcError(ed.request('no/suchMethod', {}));
      assert.equal(e.code, -32601, `${e.code} ${e.message}`);
      // Still serving after both.
      const st = await ed.request('server/status', {});
      assert.equal(st.state, 'stopped');
    } finally {
      await ed.stop();
    }
  });

  test('bad settings -> -32602 naming the key; a later good initialize succeeds; a third is refused', async () => {
    const ed = new Editor();
    try {
      const bad = [
        [{ limits: { maxConnections: '10' } }, 'limits.maxConnections'],
        [{ server: { port: 70000 } }, 'server.port'],
        [{ auth: { secret: '' } }, 'auth.secret'],
        [{ log: { level: 'loud' } }, 'log.level'],
      ];
      for (const [settings, key] of bad) {
        const e = await rpcError(ed.initialize({ settings }));
        assert.equal(e.code, -32602, `${JSON.stringify(settings)}: ${e.code} ${e.message}`);
        assert.ok(e.message.includes(key), `message "${e.message}" does not name ${key}`);
        // Not initialized after a refusal.
        const e2 = await rpcError(ed.request('server/status', {}));
        assert.equal(e2.code, -32002);
      }
      const ok = await ed.initialize({ workspaceId: 'ws-after-bad' });
      assert.equal(ok.serverInfo.name, 'companion-helper');
      assert.equal(ok.workspaceId, 'ws-after-bad');
      const again = await rpcError(ed.initialize({ workspaceId: 'ws-again' }));
      assert.ok(Number.isInteger(again.code) && again.code < 0, `code ${again.code}`);
      assert.match(again.message, /initialized/i);
      // The successful initialize stands.
      const t = await ed.request('auth/issueToken', { userId: 'u', scopes: ['read'], ttlSeconds: 60 });
      assert.equal(t.workspaceId, 'ws-after-bad');
    } finally {
      await ed.stop();
    }
  });
});

/* ---- server/start, status, stop ---- */

describe('server', () => {
  test('server/start on port 0 -> {url, host, port}; GET /health answers', async () => {
    const ed = new Editor();
    try {
      const r = await ed.startServer();
      assert.equal(r.host, '127.0.0.1');
      assert.ok(Number.isInteger(r.port) && r.port > 0 && r.port < 65536, `port ${r.port}`);
      assert.equal(r.url, `ws://127.0.0.1:${r.port}/ws`);
      const h = await httpGet(r.port, '/health');
      assert.equal(h.status, 200);
      const body = JSON.parse(h.body);
      assert.equal(body.status, 'ok');
      assert.equal(body.version, VERSION);
      assert.equal(typeof body.uptime, 'number');
      assert.equal(body.connections, 0);
    } finally {
      await ed.stop();
    }
  });

  test('server/start on a taken port -> -32001 naming the port; state stays stopped', async () => {
    const blocker = await bindPort(0);
    const { port } = blocker.address();
    const ed = new Editor();
    try {
      await ed.initialize({ settings: { server: { host: '127.0.0.1', port } } });
      const e = await rpcError(ed.request('server/start', {}));
      assert.equal(e.code, -32001, `${e.code} ${e.message}`);
      assert.ok(e.message.includes(String(port)), `message "${e.message}" does not name port ${port}`);
      const st = await ed.request('server/status', {});
      assert.equal(st.state, 'stopped');
      // Once the port is free, the same request works.
      await closeServer(blocker);
      const r = await ed.request('server/start', {});
      assert.equal(r.port, port);
    } finally {
      if (blocker.listening) await closeServer(blocker);
      await ed.stop();
    }
  });

  test('server/status: state, url, startedAt, authenticated clients, counters', async () => {
    const ed = new Editor();
    try {
      await ed.initialize({ settings: { server: { host: '127.0.0.1', port: 0 } } });
      const before = await ed.request('server/status', {});
      assert.equal(before.state, 'stopped');
      assert.equal(before.url ?? null, null);
      assert.deepEqual(before.clients, []);

      const t0 = Date.now();
      const started = await ed.request('server/start', {});
      ed.port = started.port;
      ed.url = started.url;
      const t1 = Date.now();

      const tc = Date.now();
      const a = await connect(ed.url);
      const ra = await a.auth(ed.token({ sub: 'alice' }), ed.workspaceId);
      const b = await connect(ed.url);
      const rb = await b.auth(ed.token({ sub: 'bob', scope: 'read run' }), ed.workspaceId);
      const unauth = await connect(ed.url);
      const tc1 = Date.now();

      const st = await ed.request('server/status', {});
      assert.equal(st.state, 'running');
      assert.equal(st.url, started.url);
      assert.equal(typeof st.startedAt, 'number');
      assert.ok(st.startedAt >= t0 - 1000 && st.startedAt <= t1 + 1000,
        `startedAt ${st.startedAt} not within [${t0}, ${t1}] (ms since epoch)`);
      assert.equal(st.clients.length, 2, `clients: ${JSON.stringify(st.clients)}`);
      const byUser = Object.fromEntries(st.clients.map((c) => [c.userId, c]));
      assert.equal(byUser.alice?.sessionId, ra.sessionId);
      assert.equal(byUser.bob?.sessionId, rb.sessionId);
      for (const c of st.clients) {
        assert.match(c.remoteAddress, /127\.0\.0\.1/, JSON.stringify(c));
        assert.equal(typeof c.connectedAt, 'number');
        assert.ok(c.connectedAt >= tc - 1000 && c.connectedAt <= tc1 + 1000,
          `connectedAt ${c.connectedAt} not within [${tc}, ${tc1}]`);
      }
      assert.equal(typeof st.counters, 'object');
      assert.ok(Object.keys(st.counters).length > 0);
      for (const [k, v] of Object.entries(st.counters)) assert.equal(typeof v, 'number', `counters.${k}`);
      if ('authSucceeded' in st.counters) assert.ok(st.counters.authSucceeded >= 2);
      a.close(); b.close(); unauth.close();
    } finally {
      await ed.stop();
    }
  });

  test('server/broadcast reaches authenticated clients only, with a timestamp', async () => {
    const ed = await startedEditor();
    try {
      const a = await ed.client({ sub: 'a' });
      const b = await ed.client({ sub: 'b' });
      const unauth = await connect(ed.url);
      const r = await ed.request('server/broadcast', { type: 'hello', data: { x: 1 } });
      assert.deepEqual(r, { delivered: 2 });
      for (const c of [a, b]) {
        const m = await c.next((x) => x.type === 'hello');
        assert.deepEqual(m.data, { x: 1 });
        assert.equal(typeof m.timestamp, 'number');
        assert.ok(Math.abs(m.timestamp - Date.now()) < 60000, `timestamp ${m.timestamp}`);
      }
      // The unauthenticated socket got nothing, and is still open.
      await sleep(200 * SLOW);
      assert.deepEqual(unauth.queue, []);
      assert.equal(unauth.closeInfo, undefined);
      a.close(); b.close(); unauth.close();
    } finally {
      await ed.stop();
    }
  });

  test('server/disconnect closes that session only; an unknown sessionId -> -32602', async () => {
    const ed = await startedEditor();
    try {
      const victim = await connect(ed.url);
      const rv = await victim.auth(ed.token({ sub: 'victim' }), ed.workspaceId);
      const other = await ed.client({ sub: 'other' });
      const r = await ed.request('server/disconnect', { sessionId: rv.sessionId, reason: 'bye' });
      assert.deepEqual(r, {});
      const info = await victim.waitClose();
      assert.ok(info.code >= 1000 && info.code !== 1006, `close code ${info.code}`);
      const pong = await other.request({ type: 'ping', id: 'p1' });
      assert.equal(pong.type, 'pong');
      const e = await rpcError(ed.request('server/disconnect', { sessionId: '00000000-0000-0000-0000-000000000000' }));
      assert.equal(e.code, -32602);
      const st = await ed.request('server/status', {});
      assert.deepEqual(st.clients.map((c) => c.userId), ['other']);
      other.close();
    } finally {
      await ed.stop();
    }
  });

  test('server/stop: every client gets 1001, state becomes stopped, a second stop is a no-op', async () => {
    const ed = await startedEditor();
    try {
      const a = await ed.client();
      const b = await ed.client({ sub: 'b' });
      const unauth = await connect(ed.url);
      const r = await ed.request('server/stop', {});
      assert.deepEqual(r, {});
      for (const c of [a, b, unauth]) assert.equal((await c.waitClose()).code, 1001);
      const st = await ed.request('server/status', {});
      assert.equal(st.state, 'stopped');
      assert.deepEqual(st.clients, []);
      assert.deepEqual(await ed.request('server/stop', {}), {});
    } finally {
      await ed.stop();
    }
  });

  test('server/stop frees the port: another process can bind it', async () => {
    const port = await freePort();
    const ed = await startedEditor({ settings: { server: { port } } });
    try {
      assert.equal(ed.port, port);
      const a = await ed.client();
      await ed.request('server/stop', {});
      assert.equal((await a.waitClose()).code, 1001);
      const mine = await until(() => bindPort(port).catch(() => null), `port ${port} to be free`, 3000 * SLOW);
      await closeServer(mine);
    } finally {
      await ed.stop();
    }
  });

  test('server/start after server/stop binds the same port again', async () => {
    const port = await freePort();
    const ed = await startedEditor({ settings: { server: { port } } });
    try {
      const a = await ed.client();
      await ed.request('server/stop', {});
      assert.equal((await a.waitClose()).code, 1001);
      const again = await ed.request('server/start', {});
      assert.equal(again.port, port);
      assert.equal((await httpGet(port, '/health')).status, 200);
      ed.url = again.url;
      const b = await ed.client();
      assert.equal((await b.request({ type: 'ping', id: 'p' })).type, 'pong');
      b.close();
    } finally {
      await ed.stop();
    }
  });
});

/* ---- notifications to the editor ---- */

describe('notifications', () => {
  test('companion/clientConnected and companion/clientDisconnected', async () => {
    const ed = await startedEditor();
    try {
      const c = await connect(ed.url);
      const res = await c.auth(ed.token({ sub: 'notif-user' }), ed.workspaceId);
      const on = await ed.waitNotification('companion/clientConnected', (p) => p.sessionId === res.sessionId);
      assert.equal(on.userId, 'notif-user');
      assert.match(on.remoteAddress, /127\.0\.0\.1/);
      c.close();
      const off = await ed.waitNotification('companion/clientDisconnected', (p) => p.sessionId === res.sessionId);
      assert.equal(off.userId, 'notif-user');
      assert.match(off.remoteAddress, /127\.0\.0\.1/);
      assert.equal(typeof off.reason, 'string');
      // An unauthenticated socket is not a client: no notification for it.
      const u = await connect(ed.url);
      u.close();
      await u.waitClose();
      await sleep(100);
      assert.equal(ed.notifications.filter((n) => n.method === 'companion/clientConnected').length, 1);
    } finally {
      await ed.stop();
    }
  });

  test('companion/commandExecuted after workspace.info', async () => {
    const dir = tempDir();
    const ed = await startedEditor({ folders: [dir] });
    try {
      const c = await connect(ed.url);
      const res = await c.auth(ed.token({ sub: 'auditor' }), ed.workspaceId);
      const reply = await c.command('workspace.info', {});
      assert.equal(reply.data.success, true, JSON.stringify(reply));
      assert.equal(reply.data.result.workspaceId, ed.workspaceId);
      const n = await ed.waitNotification('companion/commandExecuted', (p) => p.name === 'workspace.info');
      assert.equal(n.sessionId, res.sessionId);
      assert.equal(n.userId, 'auditor');
      assert.equal(n.success, true);
      assert.equal(typeof n.durationMs, 'number');
      assert.ok(n.durationMs >= 0 && n.durationMs < 10000, `durationMs ${n.durationMs}`);
      c.close();
    } finally {
      await ed.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('window/logMessage notifications arrive with type 1..4 and a message', async () => {
    const ed = await startedEditor();
    try {
      await until(() => ed.logs.length > 0, 'a window/logMessage');
      for (const l of ed.logs) {
        assert.ok(Number.isInteger(l.type) && l.type >= 1 && l.type <= 4, JSON.stringify(l));
        assert.equal(typeof l.message, 'string');
        assert.ok(l.message.length > 0);
      }
      // The log never goes to stdout unframed (the connection would break):
      // a request after the logs still works.
      assert.equal((await ed.request('server/status', {})).state, 'running');
      assert.ok(!JSON.stringify(ed.logs).includes(ed.secret), 'secret in window/logMessage');
    } finally {
      await ed.stop();
    }
  });
});

/* ---- auth/issueToken ---- */

describe('auth/issueToken', () => {
  test('issues a token that authenticates with the requested scopes and lifetime', async () => {
    const ed = await startedEditor();
    try {
      const t0 = Date.now();
      const r = await ed.request('auth/issueToken', { userId: 'phone', scopes: ['read', 'run'], ttlSeconds: 600 });
      assert.equal(typeof r.token, 'string');
      assert.ok(Math.abs(r.expiresAt - (t0 + 600000)) <= 5000, `expiresAt ${r.expiresAt} vs ${t0 + 600000}`);
      assert.equal(r.workspaceId, ed.workspaceId);
      assert.equal(r.url, ed.url);
      const claims = jwt.verify(r.token, ed.secret, { algorithms: ['HS256'] });
      assert.equal(claims.sub, 'phone');
      assert.equal(claims.workspaceId, ed.workspaceId);
      assert.equal(claims.exp * 1000, r.expiresAt);
      const c = await connect(ed.url);
      const res = await c.auth(r.token, r.workspaceId);
      assert.equal(res.data.success, true, JSON.stringify(res));
      assert.equal(res.data.userId, 'phone');
      assert.deepEqual([...res.data.scopes].sort(), ['read', 'run']);
      assert.ok(!ed.stderr.includes(r.token.split('.')[2]), 'issued token in stderr');
      c.close();
    } finally {
      await ed.stop();
    }
  });

  test('bad scopes or ttl -> -32602', async () => {
    const ed = await startedEditor();
    try {
      const bad = [
        { userId: 'x', scopes: ['admin'], ttlSeconds: 600 },
        { userId: 'x', scopes: 42, ttlSeconds: 600 },
        { userId: 'x', scopes: [], ttlSeconds: 600 },
        { userId: 'x', scopes: ['read'], ttlSeconds: 0 },
        { userId: 'x', scopes: ['read'], ttlSeconds: -5 },
        { userId: 'x', scopes: ['read'], ttlSeconds: '600' },
        { userId: 'x', scopes: ['read'], ttlSeconds: 1.5 },
      ];
      for (const p of bad) {
        const e = await rpcError(ed.request('auth/issueToken', p));
        assert.equal(e.code, -32602, `${JSON.stringify(p)} -> ${e.code} ${e.message}`);
      }
    } finally {
      await ed.stop();
    }
  });
});

/* ---- workspace/didChangeConfiguration ---- */

describe('workspace/didChangeConfiguration', () => {
  test('a server.port change re-binds: clients 1001, old port refuses, new port serves', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    assert.notEqual(p1, p2);
    const ed = await startedEditor({ settings: { server: { port: p1 } } });
    try {
      const a = await ed.client();
      ed.notify('workspace/didChangeConfiguration', {
        settings: { server: { host: '127.0.0.1', port: p2 }, auth: { secret: ed.secret } },
      });
      assert.equal((await a.waitClose()).code, 1001);
      await until(async () => (await ed.request('server/status', {})).url === `ws://127.0.0.1:${p2}/ws`,
        'server/status to show the new port');
      assert.equal((await httpGet(p2, '/health')).status, 200);
      ed.url = `ws://127.0.0.1:${p2}/ws`;
      const b = await ed.client();
      assert.equal((await b.request({ type: 'ping', id: 'p' })).type, 'pong');
      b.close();
      await until(async () => !(await canConnect(p1)), `port ${p1} to refuse connections`, 3000 * SLOW);
    } finally {
      await ed.stop();
    }
  });

  test('an invalid setting is refused with a logMessage error; the server keeps serving', async () => {
    const ed = await startedEditor();
    try {
      const a = await ed.client();
      const before = await ed.request('server/status', {});
      const nLogs = ed.logs.length;
      ed.notify('workspace/didChangeConfiguration', {
        settings: { server: { host: '127.0.0.1', port: 70000 }, auth: { secret: ed.secret } },
      });
      const err = await until(() => ed.logs.slice(nLogs).find((l) => l.type === 1), 'a window/logMessage error');
      assert.match(err.message, /server\.port/);
      const after = await ed.request('server/status', {});
      assert.equal(after.state, 'running');
      assert.equal(after.url, before.url);
      assert.equal(after.startedAt, before.startedAt);
      assert.equal((await a.request({ type: 'ping', id: 'p' })).type, 'pong');
      assert.equal(a.closeInfo, undefined);
      const b = await ed.client(); // the old secret and port still work
      b.close(); a.close();
    } finally {
      await ed.stop();
    }
  });

  test('a new auth.secret closes live sessions with 4001; tokens with the new secret work', async () => {
    const ed = await startedEditor();
    try {
      const a = await ed.client();
      const oldToken = ed.token({ sub: 'old' });
      const secret2 = newSecret();
      ed.notify('workspace/didChangeConfiguration', {
        // Same server settings as at start (port 0): only the secret changes.
        settings: { server: { host: '127.0.0.1', port: 0 }, auth: { secret: secret2 } },
      });
      assert.equal((await a.waitClose()).code, 4001);
      const st = await ed.request('server/status', {});
      assert.equal(st.state, 'running');
      assert.equal(st.url, ed.url); // same port: no re-bind
      const bad = await connect(ed.url);
      const rb = await bad.auth(oldToken, ed.workspaceId);
      assert.equal(rb.data.success, false);
      const good = await connect(ed.url);
      const rg = await good.auth(mintToken(secret2, { workspaceId: ed.workspaceId, sub: 'new' }), ed.workspaceId);
      assert.equal(rg.data.success, true, JSON.stringify(rg));
      // auth/issueToken signs with the new secret too.
      const issued = await ed.request('auth/issueToken', { userId: 'u', scopes: ['read'], ttlSeconds: 60 });
      assert.doesNotThrow(() => jwt.verify(issued.token, secret2));
      good.close();
    } finally {
      await ed.stop();
    }
  });
});

/* ---- exit paths ---- */

describe('exit', () => {
  test('shutdown with the server never started -> result null; exit -> exit code 0', async () => {
    const ed = new Editor();
    try {
      await ed.initialize();
      const r = await ed.request('shutdown');
      assert.equal(r, null, `shutdown answered ${JSON.stringify(r)}`);
      ed.notify('exit');
      assert.equal((await exitWithin(ed, 2000 * SLOW)).code, 0);
    } finally {
      await ed.stop();
    }
  });

  test('shutdown with the server running: clients 1001, later requests -32600, result null, exit -> 0', async () => {
    const ed = await startedEditor();
    try {
      const a = await ed.client();
      const r = await ed.request('shutdown');
      assert.equal((await a.waitClose()).code, 1001);
      const e = await rpcError(ed.request('server/status', {}));
      assert.equal(e.code, -32600, `${e.code} ${e.message}`);
      ed.notify('exit');
      const s = await exitWithin(ed, 2000 * SLOW);
      assert.equal(s.code, 0);
      // LSP: the result of shutdown is null.
      assert.equal(r, null, `shutdown answered ${JSON.stringify(r)}`);
    } finally {
      await ed.stop();
    }
  });

  test('exit without shutdown -> exit code 1', async () => {
    const ed = new Editor();
    try {
      await ed.initialize();
      ed.notify('exit');
      const s = await exitWithin(ed, 2000 * SLOW);
      assert.equal(s.code, 1);
    } finally {
      await ed.stop();
    }
  });

  test('stdin EOF -> the helper exits within 2 s and its ws clients are closed', async () => {
    const ed = await startedEditor();
    try {
      const a = await ed.client();
      const unauth = await connect(ed.url);
      const t0 = Date.now();
      ed.child.stdin.end();
      const s = await exitWithin(ed, 4000 * SLOW, t0);
      assert.ok(s.ms <= 2000 * SLOW, `exited after ${s.ms} ms`);
      assert.equal(s.signal, null);
      assert.equal((await a.waitClose(1000 * SLOW)).code, 1001);
      assert.ok((await unauth.waitClose(1000 * SLOW)).code !== undefined);
    } finally {
      await ed.stop();
    }
  });

  test('stdin EOF on a real pipe (not a socketpair) -> the helper exits within 2 s', async () => {
    const h = new RawHelper({ stdin: 'fifo' });
    try {
      await h.initialize();
      await h.write(RawHelper.frame({ jsonrpc: '2.0', id: 2, method: 'server/status', params: {} }));
      assert.equal((await h.next(2)).result.state, 'stopped');
      const t0 = Date.now();
      h.endInput();
      const s = await exitWithin(h, 4000 * SLOW, t0);
      assert.ok(s.ms <= 2000 * SLOW, `exited after ${s.ms} ms`);
    } finally {
      await h.stop();
    }
  });

  test('initialize processId: the helper exits within 2 s once that process is gone', async () => {
    const parent = spawn('sleep', ['30'], { stdio: 'ignore' });
    await new Promise((r) => parent.once('spawn', r));
    const ed = new Editor();
    try {
      await ed.startServer({ processId: parent.pid });
      const a = await ed.client();
      await sleep(100);
      assert.equal(ed.child.exitCode, null, 'helper exited while its editor was alive');
      const t0 = Date.now();
      parent.kill('SIGKILL');
      const s = await exitWithin(ed, 4000 * SLOW, t0);
      assert.ok(s.ms <= 2000 * SLOW, `exited after ${s.ms} ms`);
      assert.equal(s.signal, null);
      assert.equal((await a.waitClose(1000 * SLOW)).code, 1001);
    } finally {
      if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
      await ed.stop();
    }
  });

  test('the editor killed with SIGKILL (stdin and stdout hang up at once): the helper exits within 2 s', async () => {
    // A real parent: a Node process that spawns the helper over pipes, as
    // the extension host does, and is then killed without a word.
    const dir = tempDir('companion-host-');
    const host = path.join(dir, 'host.mjs');
    const jsonrpc = path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules', 'vscode-jsonrpc', 'node.js');
    fs.writeFileSync(host, `
      import { spawn } from 'node:child_process';
      import * as rpc from ${JSON.stringify(jsonrpc)};
      const child = spawn(process.argv[2], ['--stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
      const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(child.stdout), new rpc.StreamMessageWriter(child.stdin));
      conn.listen();
      await conn.sendRequest('initialize', { processId: process.pid, workspaceId: 'host-ws', workspaceFolders: [],
        settings: { auth: { secret: ${JSON.stringify(newSecret())} }, server: { host: '127.0.0.1', port: 0 } } });
      conn.sendNotification('initialized', {});
      await conn.sendRequest('server/start', {});
      console.log(child.pid);
      setInterval(() => {}, 1000);
    `);
    const parent = spawn(process.execPath, [host, HELPER_BIN], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise((resolve, reject) => {
        parent.stdout.once('data', (d) => resolve(String(d).trim()));
        parent.once('exit', () => reject(new Error('the host exited')));
      }));
      assert.ok(pid > 0);
      // Gone, or a zombie waiting for init now that its parent is dead.
      const ended = () => { try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z'; } catch { return true; } };
      assert.equal(ended(), false);
      const t0 = Date.now();
      parent.kill('SIGKILL');
      await waitFor(() => ended(), 'the helper to exit', 4000 * SLOW, 20);
      const ms = Date.now() - t0;
      assert.ok(ms <= 2000 * SLOW, `exited after ${ms} ms`);
    } finally {
      if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
    }
  });

  test('initialize processId of a process that does not exist -> error and exit', async () => {
    const gone = spawn('true', [], { stdio: 'ignore' });
    await new Promise((r) => gone.once('exit', r));
    const ed = new Editor();
    try {
      const e = await rpcError(ed.initialize({ processId: gone.pid }));
      assert.ok(typeof e.code === 'number', String(e));
      const s = await exitWithin(ed, 2000 * SLOW);
      assert.notEqual(s.code, 0);
    } finally {
      await ed.stop();
    }
  });
});

/* ---- the LSP framer, byte by byte ---- */

describe('framing (raw bytes on stdin)', () => {
  test('lowercase content-length header is accepted', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      await h.write(RawHelper.frame(status(2), 'content-length'));
      const r = await h.next(2);
      assert.equal(r.result?.state, 'stopped', JSON.stringify(r));
    } finally {
      await h.stop();
    }
  });

  test('two messages in one write are both answered, in order', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      await h.write(Buffer.concat([RawHelper.frame(status(2)), RawHelper.frame(status('three'))]));
      const r2 = await h.next(2);
      const r3 = await h.next('three');
      assert.equal(r2.result.state, 'stopped');
      assert.equal(r3.result.state, 'stopped');
    } finally {
      await h.stop();
    }
  });

  test('a frame split byte by byte is reassembled', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      const bytes = RawHelper.frame(status(7));
      for (let i = 0; i < bytes.length; i++) {
        await h.write(bytes.subarray(i, i + 1));
        if (i % 8 === 0) await sleep(2);
      }
      const r = await h.next(7);
      assert.equal(r.result.state, 'stopped');
    } finally {
      await h.stop();
    }
  });

  test('a frame without Content-Length is dropped; the next good frame is answered', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      const body = JSON.stringify(status(8));
      await h.write(Buffer.from(`Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n${body}`));
      await h.write(RawHelper.frame(status(9)));
      const r = await h.next(9);
      assert.equal(r.result.state, 'stopped');
    } finally {
      await h.stop();
    }
  });

  test('a Content-Length of 999999999999 does not wedge the helper: the next request is answered', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      await h.write(Buffer.from('Content-Length: 999999999999\r\n\r\n'));
      await h.write(RawHelper.frame(status(10)));
      await h.write(RawHelper.frame(status(11)));
      const r = await h.next((m) => m.id === 10 || m.id === 11, 3000 * SLOW);
      assert.equal(r.result?.state, 'stopped', JSON.stringify(r));
    } finally {
      await h.stop();
    }
  });

  test('malformed JSON body -> -32700 with id null; the connection goes on', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      await h.write(RawHelper.frame('{"jsonrpc":"2.0","id":12,"method":'));
      const r = await h.next((m) => m.error && !m.method);
      assert.equal(r.error.code, -32700);
      assert.ok('id' in r, 'error response without id');
      assert.equal(r.id, null);
      await h.write(RawHelper.frame(status(13)));
      assert.equal((await h.next(13)).result.state, 'stopped');
    } finally {
      await h.stop();
    }
  });

  test('$/cancelRequest for an unknown id is harmless', async () => {
    const h = new RawHelper();
    try {
      await h.initialize();
      await h.write(RawHelper.frame({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 424242 } }));
      await h.write(RawHelper.frame(status(14)));
      const r = await h.next(14);
      assert.equal(r.result.state, 'stopped');
      // No response was produced for the notification itself.
      await sleep(100);
      assert.deepEqual(h.messages.filter((m) => !m.method), []);
      assert.equal(h.child.exitCode, null);
    } finally {
      await h.stop();
    }
  });
});
