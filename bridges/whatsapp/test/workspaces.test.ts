/**
 * Workspaces added through the bridge's API (`addWorkspace`): how a second
 * VS Code window makes its workspace reachable as `@name` through the one
 * bridge on the machine. Two REAL companion-helper binaries over real
 * WebSockets, a real API client over a real socket; only WhatsApp is stood
 * in, by InMemoryWhatsAppTransport.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startBridge } from '../src/bridge.js';
import type { Bridge, BridgeTuning } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, gitRepo, ServedHelper, sleep } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';
const API_TOKEN = 'api-token-0123456789abcdef';

after(() => { cleanupAll(); });

interface Rig { bridge: Bridge; wa: InMemoryWhatsAppTransport; reporter: MemoryReporter; url: string }

/** A bridge configured with helper `a` as @app, its API on a free port. */
async function rig(a: ServedHelper, tuning: BridgeTuning = {}): Promise<Rig> {
  const cfg: Config = {
    workspaces: [{ name: 'app', url: a.url, tokenFile: a.tokenFile(), workspaceId: a.workspaceId }],
    allow: [ALICE],
    groups: [],
    authDir: '/nonexistent',
    json: false,
    relink: false,
    perSenderPerMinute: 100,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
    apiPort: 0,
  };
  const wa = new InMemoryWhatsAppTransport(OWNER);
  const reporter = new MemoryReporter();
  const bridge = await startBridge(cfg, wa, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100, ...tuning },
    { env: { BRIDGE_TOKEN: API_TOKEN } });
  const deadline = Date.now() + 10000;
  while (!bridge.helpers[0]!.isReady()) {
    if (Date.now() > deadline) throw new Error('@app not ready');
    await sleep(20);
  }
  return { bridge, wa, reporter, url: `ws://127.0.0.1:${bridge.api!.port}/` };
}

type Frame = Record<string, unknown> & { type: string };

/** An authenticated API client that keeps every frame. */
class ApiClient {
  readonly frames: Frame[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => { this.frames.push(JSON.parse(d.toString('utf8')) as Frame); });
  }

  static async open(url: string): Promise<ApiClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve(); }); ws.once('error', reject); });
    const c = new ApiClient(ws);
    ws.send(JSON.stringify({ type: 'auth', token: API_TOKEN }));
    await c.next((f) => f.type === 'auth');
    return c;
  }

  async next(pred: (f: Frame) => boolean, from = 0, timeoutMs = 15000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.slice(from).find(pred);
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`no such frame; got ${JSON.stringify(this.frames.slice(from))}`);
      await sleep(20);
    }
  }

  /** Sends a request and waits for its answer (workspaceAdded, workspaceRemoved or error). */
  async ask(obj: unknown): Promise<Frame> {
    const from = this.frames.length;
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    return this.next((f) => f.type === 'workspaceAdded' || f.type === 'workspaceRemoved' || f.type === 'error', from);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((r) => { this.ws.once('close', () => { r(); }); });
    this.ws.close();
    await closed;
  }
}

/** Injects text from ALICE and returns the bridge's next answer to her. */
async function ask(r: Rig, text: string): Promise<string> {
  const from = r.wa.sent.length;
  r.wa.inject({ from: ALICE, text });
  const sent = await r.wa.waitSent((s) => s.slice(from).some((x) => x.chatId === e164ToJid(ALICE)), 15000, `an answer to "${text}"`);
  return sent.slice(from).find((x) => x.chatId === e164ToJid(ALICE))!.text;
}

async function until(what: string, pred: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('addWorkspace through the bridge API (WhatsApp stood in by InMemoryWhatsAppTransport, two real helpers)', () => {
  test('an API client adds helper B as @b: "@b status" is answered from B; its socket closing removes @b', async () => {
    const a = new ServedHelper(gitRepo('main'));
    const b = new ServedHelper(gitRepo('feature'));
    await a.start();
    await b.start();
    const r = await rig(a);
    try {
      assert.match(await ask(r, '@b status'), /^Unknown workspace "b"\. Workspaces: @app\.$/, 'no @b before it is added');
      const client = await ApiClient.open(r.url);
      const tokenB = b.token('read,run', 'whatsapp');
      const added = await client.ask({ type: 'addWorkspace', name: 'b', url: b.url, workspaceId: b.workspaceId, token: tokenB });
      assert.deepEqual(added, { type: 'workspaceAdded', name: 'b', online: true, replaced: false });
      assert.match(await ask(r, '@b status'), /^\[b\] feature/, 'answered from helper B (its branch)');
      assert.match(await ask(r, 'status'), /^main/, 'plain commands still go to the configured workspace');
      assert.match(await ask(r, '@nope status'), /Workspaces: @app, @b\./);
      // Sending it again from the same client renews it (a fresh token after a reconnect or a refresh).
      const again = await client.ask({ type: 'addWorkspace', name: 'b', url: b.url, workspaceId: b.workspaceId, token: b.token('read,run', 'whatsapp') });
      assert.deepEqual(again, { type: 'workspaceAdded', name: 'b', online: true, replaced: true });
      assert.match(await ask(r, '@b status'), /^\[b\] feature/);
      // The window goes away: @b goes with it.
      await client.close();
      await until('@b removed', () => !r.bridge.workspaces.names.includes('b'));
      assert.equal(await ask(r, '@b status'), 'Unknown workspace "b". Workspaces: @app.');
      assert.equal(r.bridge.helpers.length, 1, 'the client of helper B is stopped');
      const logs = JSON.stringify(r.reporter.logs);
      assert.ok(!logs.includes(tokenB), 'the helper token is never logged');
      assert.ok(!logs.includes(API_TOKEN), 'the API token is never logged');
      assert.ok(r.reporter.logs.some((l) => l.message.startsWith('api: workspace @b added')), logs);
      assert.ok(r.reporter.logs.some((l) => l.message === 'api: workspace @b removed'), logs);
    } finally {
      await r.bridge.stop();
      await a.stop();
      await b.stop();
    }
  });

  test('removeWorkspace: only what this client added; then "@b" is unknown', async () => {
    const a = new ServedHelper(gitRepo('main'));
    const b = new ServedHelper(gitRepo('feature'));
    await a.start();
    await b.start();
    const r = await rig(a);
    try {
      const c1 = await ApiClient.open(r.url);
      const c2 = await ApiClient.open(r.url);
      assert.equal((await c1.ask({ type: 'addWorkspace', name: 'b', url: b.url, workspaceId: b.workspaceId, token: b.token() })).type, 'workspaceAdded');
      for (const [client, name] of [[c2, 'b'], [c1, 'app'], [c1, 'zzz']] as const) {
        const e = await client.ask({ type: 'removeWorkspace', name });
        assert.equal(e.type, 'error', `${name}: ${JSON.stringify(e)}`);
        assert.equal(e.code, 'UNKNOWN_WORKSPACE');
        assert.equal(e.name, name);
      }
      assert.equal((await c1.ask({ type: 'removeWorkspace' })).code, 'BAD_REQUEST');
      // Two renewals at once: one is BUSY, and @b is served once.
      const from = c1.frames.length;
      const renew = { type: 'addWorkspace', name: 'b', url: b.url, workspaceId: b.workspaceId, token: b.token() };
      c1.ws.send(JSON.stringify(renew));
      c1.ws.send(JSON.stringify(renew));
      await c1.next((f) => f.type === 'workspaceAdded', from);
      const busy = await c1.next((f) => f.type === 'error', from);
      assert.equal(busy.code, 'BUSY');
      assert.match(await ask(r, '@nope status'), /Workspaces: @app, @b\.$/);
      // Two new names at once from one client while a name is pending: the same name again is BUSY.
      const from2 = c1.frames.length;
      const fresh = { type: 'addWorkspace', name: 'e', url: b.url, token: b.token() };
      c1.ws.send(JSON.stringify(fresh));
      c1.ws.send(JSON.stringify(fresh));
      await c1.next((f) => f.type === 'workspaceAdded' && f.name === 'e', from2);
      assert.equal((await c1.next((f) => f.type === 'error', from2)).code, 'BUSY');
      assert.deepEqual((await c1.ask({ type: 'removeWorkspace', name: 'e' })).type, 'workspaceRemoved');
      assert.match(await ask(r, '@b status'), /^\[b\] feature/, 'still there');
      assert.deepEqual(await c1.ask({ type: 'removeWorkspace', name: 'B' }), { type: 'workspaceRemoved', name: 'b' });
      assert.equal(await ask(r, '@b status'), 'Unknown workspace "b". Workspaces: @app.');
      await c1.close();
      await c2.close();
    } finally {
      await r.bridge.stop();
      await a.stop();
      await b.stop();
    }
  });

  test('bad input: missing fields and wrong types (BAD_REQUEST), a taken name (NAME_TAKEN), a token the helper refuses (HELPER_AUTH_FAILED), too many (TOO_MANY)', async () => {
    const a = new ServedHelper(gitRepo('main'));
    const b = new ServedHelper(gitRepo('feature'));
    const other = new ServedHelper(gitRepo('other')); // its own secret: its tokens are not B's
    await a.start();
    await b.start();
    await other.start();
    // 3 at most: @app and two added.
    const r = await rig(a, { maxWorkspaces: 3 });
    try {
      const c1 = await ApiClient.open(r.url);
      const good = { type: 'addWorkspace', name: 'b', url: b.url, workspaceId: b.workspaceId, token: b.token() };
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ ...good, name: undefined }, /needs "name"/],
        [{ ...good, name: 42 }, /needs "name"/],
        [{ ...good, name: 'a b' }, /may hold only letters, digits/],
        [{ ...good, name: 'x'.repeat(65) }, /at most 64/],
        [{ ...good, url: undefined }, /needs "url"/],
        [{ ...good, url: ['ws://127.0.0.1:1/ws'] }, /needs "url"/],
        [{ ...good, url: 'not a url' }, /not a URL/],
        [{ ...good, url: 'http://127.0.0.1:1/ws' }, /ws:\/\/ or wss:\/\//],
        [{ ...good, url: 'ws://example.com/ws' }, /ws:\/\/ only to this machine/],
        [{ ...good, url: 'ws://me:secret@127.0.0.1:1/ws' }, /may not hold a user or password/],
        [{ ...good, token: undefined }, /needs "token"/],
        [{ ...good, token: 7 }, /needs "token"/],
        [{ ...good, token: '   ' }, /needs "token"/],
        [{ ...good, token: 'x'.repeat(9000) }, /needs "token"/],
        [{ ...good, workspaceId: 5 }, /"workspaceId"/],
      ];
      for (const [req, msg] of cases) {
        const e = await c1.ask(req);
        assert.equal(e.type, 'error', JSON.stringify(req).slice(0, 200));
        assert.equal(e.code, 'BAD_REQUEST', JSON.stringify(e));
        assert.match(String(e.error), msg);
      }
      assert.deepEqual(r.bridge.workspaces.names, [], 'none of those was added');
      // A configured workspace's name, in any case.
      const taken = await c1.ask({ ...good, name: 'APP' });
      assert.equal(taken.code, 'NAME_TAKEN');
      assert.match(String(taken.error), /bridge's own configuration/);
      // A token signed by another helper's secret: helper B refuses it.
      const refused = await c1.ask({ ...good, token: other.token() });
      assert.equal(refused.type, 'error');
      assert.equal(refused.code, 'HELPER_AUTH_FAILED');
      assert.equal(refused.name, 'b');
      assert.match(String(refused.error), /refused the token/);
      assert.equal(await ask(r, '@b status'), 'Unknown workspace "b". Workspaces: @app.', 'a refused workspace is not added');
      assert.equal(r.bridge.helpers.length, 1, 'its client is stopped');
      // Added by c1; c2 may not take the name (in any case).
      assert.equal((await c1.ask(good)).type, 'workspaceAdded');
      const c2 = await ApiClient.open(r.url);
      const clash = await c2.ask({ ...good, name: 'B', token: b.token() });
      assert.equal(clash.code, 'NAME_TAKEN');
      assert.match(String(clash.error), /another client/);
      // A helper not reachable now is added offline (the bridge keeps trying): the 3rd; a 4th is too many.
      const offline = await c2.ask({ type: 'addWorkspace', name: 'c', url: 'ws://127.0.0.1:9/ws', token: 'tok-0123456789' });
      assert.deepEqual(offline, { type: 'workspaceAdded', name: 'c', online: false, replaced: false });
      assert.equal(await ask(r, '@c status'), 'Workspace offline.');
      const tooMany = await c2.ask({ type: 'addWorkspace', name: 'd', url: b.url, token: b.token() });
      assert.equal(tooMany.code, 'TOO_MANY');
      assert.match(String(tooMany.error), /at most 3 workspaces/);
      // c2 going away frees its slot, and leaves c1's @b alone.
      await c2.close();
      await until('@c removed', () => !r.bridge.workspaces.names.includes('c'));
      assert.match(await ask(r, '@b status'), /^\[b\] feature/);
      assert.equal((await c1.ask({ type: 'addWorkspace', name: 'd', url: b.url, token: b.token() })).type, 'workspaceAdded');
      // Not JSON, or an unknown type, changes nothing.
      assert.equal((await c1.ask('{')).code, 'BAD_JSON');
      assert.deepEqual(r.bridge.workspaces.names.sort(), ['b', 'd']);
      await c1.close();
    } finally {
      await r.bridge.stop();
      await a.stop();
      await b.stop();
      await other.stop();
    }
  });
});
