// Test harness: spawns the real companion-helper binary and drives it with
// third-party clients: vscode-jsonrpc as the editor, ws as remote clients,
// jsonwebtoken for tokens. Every helper started here is stopped at the end of
// the test, and its exit is checked: under the sanitizer build a leak or
// UB report fails the test that started it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import jwt from 'jsonwebtoken';
import * as rpc from 'vscode-jsonrpc/node.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
export const HELPER_BIN = process.env.HELPER_BIN || path.join(ROOT, 'build/companion-helper');
export const SANITIZED = process.env.HELPER_SANITIZED === '1';
/* Sanitized binaries are several times slower; waits scale with this. */
export const SLOW = SANITIZED ? 3 : 1;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Every folder made here is removed when the test process exits. */
const madeDirs = [];

/* The state folder (device registries, approval ids, tokens) of every
 * process a test starts without naming one: never the user's own
 * ~/.local/state/companion. One per test process (children inherit it:
 * helpers, the CLI, clients), removed with the rest. */
process.env.XDG_STATE_HOME = mkdtempSync(path.join(tmpdir(), 'companion-state-'));
madeDirs.push(process.env.XDG_STATE_HOME);
process.on('exit', () => {
  for (const d of madeDirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* a helper may still hold it */ }
  }
});

export function tempDir(prefix = 'companion-test-') {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  madeDirs.push(d);
  return d;
}

export function newSecret() {
  return randomBytes(32).toString('hex');
}

/* A child process whose stderr is collected and whose exit is awaited. */
class Proc {
  constructor(child) {
    this.child = child;
    this.stderr = '';
    this.stdout = '';
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    child.stderr.on('data', (d) => { this.stderr += d.toString(); });
  }

  /* Fails on sanitizer reports; returns the exit status. */
  async checkExit(status) {
    const s = await status;
    assert.doesNotMatch(this.stderr, /(LeakSanitizer|AddressSanitizer|runtime error:)/,
      `sanitizer report in helper stderr:\n${this.stderr}`);
    return s;
  }

  /* SIGTERM, then wait (SIGKILL after a deadline, which fails the test). */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.checkExit(this.exited);
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000 * SLOW);
    const s = await this.checkExit(this.exited);
    clearTimeout(timer);
    assert.notEqual(s.signal, 'SIGKILL', 'helper did not stop on SIGTERM within 5 s');
    return s;
  }
}

/* Editor mode: `companion-helper --stdio` with a vscode-jsonrpc connection. */
export class Editor extends Proc {
  /* fdLimit: run under `ulimit -n fdLimit` (fault tests); bin: another
   * copy of the helper. */
  constructor({ env = {}, args = [], fdLimit, bin = HELPER_BIN, inheritFd = false } = {}) {
    const argv = ['--stdio', ...args];
    // inheritFd: the helper starts with an open fd 3 that is not
    // close-on-exec, as a careless parent might leave it.
    const stdio = inheritFd ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'];
    const child = fdLimit
      ? spawn('sh', ['-c', `ulimit -n ${Number(fdLimit)} && exec "$0" "$@"`, bin, ...argv], {
        stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env },
      })
      : spawn(bin, argv, { stdio, env: { ...process.env, ...env } });
    super(child);
    this.conn = rpc.createMessageConnection(
      new rpc.StreamMessageReader(child.stdout),
      new rpc.StreamMessageWriter(child.stdin),
    );
    this.logs = [];
    this.notifications = [];
    this.conn.onNotification('window/logMessage', (p) => this.logs.push(p));
    this.conn.onNotification((method, params) => {
      this.notifications.push({ method, params });
    });
    this.conn.onError(() => {});
    this.conn.onClose(() => {});
    this.conn.listen();
  }

  request(method, params) {
    return this.conn.sendRequest(method, params);
  }

  notify(method, params) {
    return this.conn.sendNotification(method, params);
  }

  /* Waits for a notification matching pred (checks those already seen). */
  async waitNotification(method, pred = () => true, timeoutMs = 5000 * SLOW) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.notifications.find((n) => n.method === method && pred(n.params));
      if (hit) return hit.params;
      if (Date.now() > deadline) throw new Error(`no ${method} notification within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async initialize({ settings = {}, secret = newSecret(), workspaceId = 'ws-test-1',
    folders = [], processId = process.pid } = {}) {
    this.secret = secret;
    this.workspaceId = workspaceId;
    const full = { ...settings, auth: { secret, ...(settings.auth || {}) } };
    const result = await this.request('initialize', {
      processId,
      clientInfo: { name: 'integration-test', version: '1' },
      workspaceId,
      workspaceFolders: folders.map((f) => ({ uri: `file://${f}`, name: path.basename(f) })),
      settings: full,
    });
    this.notify('initialized', {});
    return result;
  }

  /* initialize + server/start on an ephemeral port. */
  async startServer(opts = {}) {
    const settings = { ...(opts.settings || {}) };
    settings.server = { host: '127.0.0.1', port: 0, ...(settings.server || {}) };
    await this.initialize({ ...opts, settings });
    const started = await this.request('server/start', {});
    this.port = started.port;
    this.url = started.url;
    return started;
  }

  token(claims = {}, opts = {}) {
    return mintToken(this.secret, { workspaceId: this.workspaceId, ...claims }, opts);
  }

  /* A ws client that has authenticated (first message) with scopes. */
  async client(claims = {}, wsOpts = {}) {
    const c = await connect(this.url, wsOpts);
    const res = await c.auth(this.token(claims), this.workspaceId);
    assert.equal(res.data.success, true, `auth failed: ${JSON.stringify(res)}`);
    return c;
  }

  async shutdown() {
    await this.request('shutdown');
    this.notify('exit');
    const s = await this.checkExit(this.exited);
    this.conn.dispose();
    return s;
  }

  async stop() {
    try { this.conn.dispose(); } catch { /* already closed */ }
    return super.stop();
  }
}

/* Standalone mode: `companion-helper serve ...`, with its own config home. */
export class Served extends Proc {
  constructor(args, { env = {}, cwd } = {}) {
    const child = spawn(HELPER_BIN, ['serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      cwd,
    });
    super(child);
    child.stdout.on('data', (d) => { this.stdout += d.toString(); });
  }

  /* Resolves with the banner's fields once "Press Ctrl+C" is printed. */
  async banner(timeoutMs = 10000 * SLOW) {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes('Press Ctrl+C')) {
      if (this.child.exitCode !== null) throw new Error(`serve exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no banner: ${this.stdout} ${this.stderr}`);
      await sleep(20);
    }
    const field = (name) => (this.stdout.match(new RegExp(`${name}:\\s+(\\S+)`)) || [])[1];
    // stdout is a pipe here, not a terminal: serve writes the token to a
    // 0600 file and prints its path (never the token, which could land in
    // the journal).
    const tokenFile = field('Token file');
    const token = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : field('Token');
    return { url: field('URL'), workspaceId: field('Workspace id'), token, tokenFile };
  }
}

export function mintToken(secret, claims = {}, { algorithm = 'HS256', expiresIn = '1h', noTimestamp } = {}) {
  const payload = { sub: 'tester', ...claims };
  const opts = { algorithm };
  if (expiresIn !== null && payload.exp === undefined) opts.expiresIn = expiresIn;
  if (noTimestamp) opts.noTimestamp = true;
  return jwt.sign(payload, secret, opts);
}

/* A ws client that queues every message and close for the test to await. */
export class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this._wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      let msg;
      try { msg = JSON.parse(data.toString()); } catch { msg = { unparsable: data.toString(), isBinary }; }
      this.queue.push(msg);
      this._wake();
    });
    ws.on('error', () => {});
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /* Next message (optionally the next one matching pred), or throws. */
  async next(pred = () => true, timeoutMs = 15000 * SLOW) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.closeInfo) throw new Error(`closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting; queue: ${JSON.stringify(this.queue)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms; queue: ${JSON.stringify(this.queue)}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(left, 200)); });
    }
  }

  async request(msg) {
    this.send(msg);
    return this.next((m) => m.id === msg.id);
  }

  async auth(token, workspaceId, id = 'a1') {
    return this.request({ type: 'auth', id, data: { token, workspaceId } });
  }

  command(name, args, id = `c${Math.random().toString(36).slice(2)}`) {
    return this.request({ type: 'command', id, data: { name, args } });
  }

  async waitClose(timeoutMs = 5000 * SLOW) {
    let t;
    const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs); });
    try { return await Promise.race([this.closed, timeout]); } finally { clearTimeout(t); }
  }

  close() {
    this.ws.close();
  }

  terminate() {
    this.ws.terminate();
  }
}

export function connect(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const c = new Client(ws);
    ws.once('open', () => resolve(c));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { const e = new Error(`HTTP ${res.statusCode}`); e.status = res.statusCode; e.body = body; reject(e); });
    });
    ws.once('error', reject);
  });
}

/* Plain HTTP GET with chosen headers (fetch cannot set Host). */
export async function httpGet(port, pathName, headers = {}) {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/* Runs fn with a fresh helper in editor mode and a started server; always stops it. */
export async function withServer(opts, fn) {
  const ed = new Editor(opts.editor || {});
  try {
    await ed.startServer(opts);
    return await fn(ed);
  } finally {
    await ed.stop();
  }
}

export function configHome() {
  const dir = tempDir('companion-home-');
  mkdirSync(path.join(dir, 'config'), { recursive: true });
  return {
    dir,
    env: { XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_STATE_HOME: path.join(dir, 'state'), HOME: dir },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/* Plain HTTP request with any method, chosen headers and an optional body. */
export async function httpRequest(port, method, pathName, headers = {}, body) {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/* Writes raw bytes to a TCP connection and collects what comes back until the
 * peer closes or timeoutMs passes. status is the HTTP status of the first
 * response line (null when none); ended tells whether the peer closed. */
export async function rawRequest(port, bytes, timeoutMs = 2000 * SLOW) {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    let ended = false;
    let error = null;
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(chunks).toString('latin1');
      const m = data.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ data, status: m ? Number(m[1]) : null, ended, error });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', () => { sock.write(bytes); });
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => { ended = true; finish(); });
    sock.on('close', () => { ended = true; finish(); });
    sock.on('error', (e) => { error = e; });
  });
}

/* Resident set size of a process in KiB, from /proc/<pid>/status. */
export function rssKb(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = text.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/* Polls fn until it returns a truthy value; throws with what after timeoutMs. */
export async function waitFor(fn, what, timeoutMs = 5000 * SLOW, stepMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}
