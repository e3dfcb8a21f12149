/**
 * The bridge's own API (--api-port) with real clients over real sockets:
 * `ws` clients, a Python client on Debian's python3-websockets written the
 * way the original BridgeServer's clients are, and the built bundle for the
 * command line. WhatsApp's servers are stood in by InMemoryWhatsAppServer
 * (under the real BaileysTransport); no helper is needed (the workspace is
 * offline), the API does not go through it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { API_TOKEN_FILE, CLOSE_AUTH } from '../src/api.js';
import type { ApiTuning } from '../src/api.js';
import { BaileysTransport } from '../src/baileys.js';
import { startBridge } from '../src/bridge.js';
import type { Bridge } from '../src/bridge.js';
import { parseArgs } from '../src/config.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppServer } from '../src/memoryTransport.js';
import type { InMemoryLinkedDevice, MemoryContact } from '../src/memoryTransport.js';
import { e164ToJid } from '../src/transport.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/companion-whatsapp.js');
const PY_CLIENT = path.join(ROOT, 'test/python/seed_client.py');
/** Debian's Python, where python3-websockets is installed (not a pyenv or venv python3 earlier in PATH). */
const PYTHON = process.env.COMPANION_TEST_PYTHON ?? '/usr/bin/python3';
const OWNER = '+15550000001';
const ALICE: MemoryContact = { e164: '+15550000002', lid: '104257358999812' };
const MALLORY: MemoryContact = { e164: '+15550000099', lid: '999000111222333' };
const ALICE_JID = e164ToJid(ALICE.e164);
const GROUP = '120363025246125486@g.us';
const TOKEN = 'test-token-0123456789abcdef';

const sleep = (ms: number): Promise<void> => new Promise((r) => { setTimeout(r, ms); });
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cw-api-'));
  dirs.push(d);
  return d;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function until(what: string, pred: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** p, or a failure after timeoutMs. */
function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error(`timed out waiting for ${what}`)); }, timeoutMs); });
  return Promise.race([p, t]).finally(() => { clearTimeout(timer); });
}

function config(dir: string, extra: Partial<Config> = {}): Config {
  writeFileSync(path.join(dir, 'helper-token'), 'x');
  return {
    // No helper: the relay answers "Workspace offline."; the API does not need one.
    workspaces: [{ name: 'ws1', url: 'ws://127.0.0.1:9/ws', tokenFile: path.join(dir, 'helper-token') }],
    allow: [ALICE.e164],
    groups: [GROUP],
    authDir: path.join(dir, 'whatsapp-auth'),
    stateDir: dir,
    json: false,
    relink: false,
    perSenderPerMinute: 1000,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
    apiPort: 0,
    ...extra,
  };
}

interface Rig { bridge: Bridge; server: InMemoryWhatsAppServer; device: InMemoryLinkedDevice; reporter: MemoryReporter; dir: string; port: number; url: string }

/** A bridge with its API, WhatsApp stood in by the in-memory server; BRIDGE_TOKEN = TOKEN unless env says otherwise. */
async function rig(opts: { dir?: string; config?: Partial<Config>; api?: ApiTuning; server?: InMemoryWhatsAppServer } = {}): Promise<Rig> {
  const server = opts.server ?? new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE, MALLORY] });
  const device = server.device();
  const dir = opts.dir ?? tempDir();
  const cfg = config(dir, opts.config);
  const reporter = new MemoryReporter();
  const transport = new BaileysTransport({
    authDir: cfg.authDir, reporter, relink: false, printQr: false, makeSocket: device.makeSocket,
    reconnectInitialMs: 50, reconnectMaxMs: 200,
    fetchVersion: () => Promise.reject(new Error('no network in the tests')),
  });
  const bridge = await startBridge(cfg, transport, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100 },
    { env: { BRIDGE_TOKEN: TOKEN }, ...opts.api });
  assert.ok(bridge.api, 'the API is running');
  const port = bridge.api.port;
  return { bridge, server, device, reporter, dir, port, url: `ws://127.0.0.1:${port}/` };
}

async function connected(r: Rig): Promise<void> {
  await until('WhatsApp open', () => r.device.current?.state === 'open');
}

type Frame = Record<string, unknown> & { type: string };

/** A `ws` client that keeps every frame it gets. */
class Client {
  readonly frames: Frame[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<number>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => { this.frames.push(JSON.parse(d.toString('utf8')) as Frame); });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => { this.closeCode = code; this.closeReason = reason.toString(); resolve(code); });
    });
    ws.on('error', () => { /* close follows */ });
  }

  static open(url: string, opts: WebSocket.ClientOptions = {}): Promise<Client> {
    const ws = new WebSocket(url, opts);
    return new Promise((resolve, reject) => {
      ws.once('open', () => { resolve(new Client(ws)); });
      ws.once('unexpected-response', (_req, res) => { reject(new Error(`HTTP ${res.statusCode}`)); });
      ws.once('error', reject);
    });
  }

  /** Opens and authenticates with this token; resolves after {type:"auth", ok:true}. */
  static async authed(url: string, token = TOKEN): Promise<Client> {
    const c = await Client.open(url);
    c.send({ type: 'auth', token });
    await c.next((f) => f.type === 'auth');
    assert.deepEqual(c.frames[0], { type: 'auth', ok: true });
    return c;
  }

  /** The close code, or a failure when the bridge has not closed within timeoutMs. */
  waitClosed(timeoutMs = 15000): Promise<number> {
    return within(this.closed, timeoutMs, 'the connection to close');
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** The first frame (after `from`) that matches. */
  async next(pred: (f: Frame) => boolean, from = 0, timeoutMs = 10000): Promise<Frame> {
    let found: Frame | undefined;
    await until(`a frame; got ${JSON.stringify(this.frames.slice(from))}`, () => (found = this.frames.slice(from).find(pred)) !== undefined, timeoutMs);
    return found!;
  }

  /** Sends and waits for the answer frame (sent or error) that follows. */
  async ask(obj: unknown): Promise<Frame> {
    const from = this.frames.length;
    this.send(obj);
    return this.next((f) => f.type === 'sent' || f.type === 'error', from);
  }

  close(): void {
    this.ws.close();
  }
}

describe("the bridge's API (WhatsApp stood in by the in-memory server)", () => {
  test('auth ok: {type:"auth", ok:true}, then the current status; no token in the logs', async () => {
    const r = await rig();
    try {
      await connected(r);
      const c = await Client.authed(r.url);
      const status = await c.next((f) => f.type === 'status');
      assert.deepEqual(status, { type: 'status', status: 'connected' });
      assert.ok(r.reporter.logs.some((l) => l.message === `api: listening on 127.0.0.1:${r.port}`));
      assert.ok(r.reporter.logs.some((l) => l.message === 'api: token from BRIDGE_TOKEN'));
      assert.ok(!JSON.stringify(r.reporter.logs).includes(TOKEN), 'the token is never logged');
      assert.ok(!existsSync(path.join(r.dir, API_TOKEN_FILE)), 'with BRIDGE_TOKEN no token file is made');
      c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('no auth within 5 s: error AUTH_TIMEOUT and close 4001', async () => {
    const r = await rig();
    try {
      const c = await Client.open(r.url);
      const t0 = Date.now();
      const code = await c.waitClosed();
      const waited = Date.now() - t0;
      assert.equal(code, CLOSE_AUTH);
      assert.ok(waited >= 4500 && waited < 7000, `closed after ${waited} ms`);
      assert.equal(c.frames.length, 1);
      assert.equal(c.frames[0]!.type, 'error');
      assert.equal(c.frames[0]!.code, 'AUTH_TIMEOUT');
    } finally {
      await r.bridge.stop();
    }
  });

  test('wrong token, a token of another type, or anything but auth first: error and close 4001, nothing else sent', async () => {
    const r = await rig();
    try {
      await connected(r);
      for (const [first, code] of [
        [{ type: 'auth', token: 'wrong-token-0123456789abcdef' }, 'AUTH_FAILED'],
        [{ type: 'auth', token: TOKEN.slice(0, -1) }, 'AUTH_FAILED'],
        [{ type: 'auth', token: 42 }, 'AUTH_FAILED'],
        [{ type: 'auth' }, 'AUTH_FAILED'],
        [{ type: 'send', to: ALICE.e164, text: 'hi', token: TOKEN }, 'AUTH_REQUIRED'],
        ['not json', 'AUTH_REQUIRED'],
      ] as const) {
        const c = await Client.open(r.url);
        c.send(first);
        assert.equal(await c.waitClosed(), CLOSE_AUTH, JSON.stringify(first));
        assert.equal(c.frames.length, 1, JSON.stringify(c.frames));
        assert.equal(c.frames[0]!.type, 'error');
        assert.equal(c.frames[0]!.code, code, JSON.stringify(first));
      }
      await sleep(200);
      assert.equal(r.server.sent.filter((s) => s.text === 'hi').length, 0, 'nothing was sent');
    } finally {
      await r.bridge.stop();
    }
  });

  test('token file: made on first start (0600, 32 random bytes base64url), reused on the next, never logged', async () => {
    const dir = tempDir();
    const file = path.join(dir, API_TOKEN_FILE);
    const r1 = await rig({ dir, api: { env: {} } });
    let token: string;
    try {
      const st = statSync(file);
      assert.equal(st.mode & 0o777, 0o600);
      token = readFileSync(file, 'utf8').trim();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(r1.reporter.logs.some((l) => l.message === `api: token from ${file} (created)`));
      assert.ok(!JSON.stringify(r1.reporter.logs).includes(token), 'the token is never logged');
      const c = await Client.authed(r1.url, token);
      c.close();
      const bad = await Client.open(r1.url);
      bad.send({ type: 'auth', token: TOKEN });
      assert.equal(await bad.waitClosed(), CLOSE_AUTH, 'BRIDGE_TOKEN unset: only the file token counts');
    } finally {
      await r1.bridge.stop();
    }
    const r2 = await rig({ dir, api: { env: {} } });
    try {
      assert.equal(readFileSync(file, 'utf8').trim(), token, 'the same token');
      assert.ok(r2.reporter.logs.some((l) => l.message === `api: token from ${file}`));
      const c = await Client.authed(r2.url, token);
      c.close();
    } finally {
      await r2.bridge.stop();
    }
  });

  test('BRIDGE_TOKEN overrides the token file; a short one, or a token file others can read, stops the start', async () => {
    const dir = tempDir();
    const file = path.join(dir, API_TOKEN_FILE);
    writeFileSync(file, 'file-token-0123456789abcdef\n', { mode: 0o600 });
    const r = await rig({ dir, api: { env: { BRIDGE_TOKEN: 'env-token-0123456789abcdef' } } });
    try {
      const c = await Client.authed(r.url, 'env-token-0123456789abcdef');
      c.close();
      const old = await Client.open(r.url);
      old.send({ type: 'auth', token: 'file-token-0123456789abcdef' });
      assert.equal(await old.waitClosed(), CLOSE_AUTH, 'the file token does not count');
    } finally {
      await r.bridge.stop();
    }
    await assert.rejects(rig({ dir, api: { env: { BRIDGE_TOKEN: 'short' } } }), (e: Error) => e.name === 'ApiStartError' && /BRIDGE_TOKEN is too short/.test(e.message));
    chmodSync(file, 0o644);
    await assert.rejects(rig({ dir, api: { env: {} } }), (e: Error) => e.name === 'ApiStartError' && /readable by others \(mode 644\)/.test(e.message));
  });

  test('qr, status and message reach two clients; strangers\', media-only and the bridge\'s own messages never do', async () => {
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE, MALLORY] });
    server.refuseWith = 503; // WhatsApp unreachable at first: the clients connect before the QR code
    const r = await rig({ server });
    try {
      const a = await Client.authed(r.url);
      const b = await Client.authed(r.url);
      for (const c of [a, b]) {
        const s = await c.next((f) => f.type === 'status');
        assert.ok(['connecting', 'disconnected'].includes(s.status as string), JSON.stringify(s));
      }
      const fromA = a.frames.length;
      const fromB = b.frames.length;
      server.refuseWith = null;
      await connected(r);
      for (const [c, from] of [[a, fromA], [b, fromB]] as const) {
        assert.deepEqual(await c.next((f) => f.type === 'qr', from), { type: 'qr', qr: 'stand-in-qr-10' });
        await c.next((f) => f.type === 'status' && f.status === 'qr', from);
        await c.next((f) => f.type === 'status' && f.status === 'connected', from);
        const statuses = c.frames.slice(from).filter((f) => f.type === 'status').map((f) => f.status);
        // Linking: the QR code, then WhatsApp's restart after the scan (515), then open.
        assert.deepEqual(statuses.slice(statuses.indexOf('qr')), ['qr', 'disconnected', 'connecting', 'connected'], JSON.stringify(statuses));
      }
      // A client connecting now gets the current status and no stale QR code.
      const late = await Client.authed(r.url);
      await late.next((f) => f.type === 'status');
      await sleep(100);
      assert.deepEqual(late.frames, [{ type: 'auth', ok: true }, { type: 'status', status: 'connected' }]);

      const mark = a.frames.length;
      const t = Math.floor(Date.now() / 1000);
      server.deliver(server.fromContact(MALLORY.e164, { text: 'stranger says hi' }));
      server.deliver(server.fromContact(ALICE.e164, { message: { imageMessage: { mimetype: 'image/jpeg' } } as never }));
      server.deliver(server.fromContact(ALICE.e164, { text: 'hello bridge', id: 'ALICEMSG1', timestamp: t }));
      server.deliver(server.fromContact(ALICE.e164, { text: 'in the group', id: 'GROUPMSG1', group: GROUP, timestamp: t }));
      server.deliver(server.fromContact(ALICE.e164, { text: 'in another group', group: '120363000000000000@g.us' }));
      server.deliver(server.fromPhone({ text: 'note to self', id: 'SELFMSG1', timestamp: t }));
      for (const c of [a, b, late]) {
        await c.next((f) => f.type === 'message' && f.id === 'SELFMSG1');
        const msgs = c.frames.filter((f) => f.type === 'message');
        assert.deepEqual(msgs, [
          { type: 'message', from: ALICE.e164, chat: ALICE_JID, text: 'hello bridge', timestamp: t, id: 'ALICEMSG1', isGroup: false },
          { type: 'message', from: ALICE.e164, chat: GROUP, text: 'in the group', timestamp: t, id: 'GROUPMSG1', isGroup: true },
          { type: 'message', from: OWNER, chat: server.selfChatId(), text: 'note to self', timestamp: t, id: 'SELFMSG1', isGroup: false },
        ]);
      }
      // The relay answered Alice ("Workspace offline."): its reply, echoed by WhatsApp, is not a chat message.
      await server.waitSent((s) => s.some((x) => x.chatId === ALICE_JID));
      await sleep(300);
      assert.equal(a.frames.slice(mark).filter((f) => f.type === 'message').length, 3);
      for (const c of [a, b, late]) c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('send -> sent after WhatsApp took it (by number, by chat id, to the own chat and a listed group)', async () => {
    const r = await rig();
    try {
      await connected(r);
      const c = await Client.authed(r.url);
      assert.deepEqual(Object.keys(await c.ask({ type: 'send', to: ALICE.e164, text: 'one' })), ['type', 'to', 'id']);
      for (const [to, jid, text] of [
        [ALICE.e164, ALICE_JID, 'one'],
        [ALICE_JID, ALICE_JID, 'two'],
        [ALICE.e164.slice(1), ALICE_JID, 'three'],
        [r.server.selfChatId(), r.server.selfChatId(), 'four'],
        [GROUP, GROUP, 'five'],
      ] as const) {
        const f = text === 'one' ? c.frames.find((x) => x.type === 'sent')! : await c.ask({ type: 'send', to, text });
        assert.equal(f.type, 'sent', JSON.stringify(f));
        assert.equal(f.to, to, 'to is echoed as given');
        const sent = r.server.sent.find((s) => s.text === text);
        assert.ok(sent, `${text} reached WhatsApp`);
        assert.equal(sent.chatId, jid);
        assert.equal(sent.id, f.id);
      }
      // The echo of "four" in the own chat is the bridge's, not a message and not a command.
      await sleep(300);
      assert.equal(c.frames.filter((f) => f.type === 'message').length, 0);
      assert.equal(r.server.sent.filter((s) => s.chatId === r.server.selfChatId()).length, 1, 'the relay did not answer it');
      c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('send to a chat that is not allowed is refused, nothing reaches WhatsApp', async () => {
    const r = await rig();
    try {
      await connected(r);
      const c = await Client.authed(r.url);
      for (const to of [MALLORY.e164, e164ToJid(MALLORY.e164), `${MALLORY.lid}@lid`, '120363000000000000@g.us', 'status@broadcast', `${ALICE.lid}@lid`]) {
        const f = await c.ask({ type: 'send', to, text: 'let me in' });
        assert.equal(f.type, 'error', `${to}: ${JSON.stringify(f)}`);
        assert.equal(f.to, to);
        assert.equal(f.code, to === 'status@broadcast' ? 'BAD_REQUEST' : 'NOT_ALLOWED', to);
      }
      await sleep(200);
      assert.equal(r.server.sent.filter((s) => s.text === 'let me in').length, 0);
      c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('a contact addressed by LID only: its chat becomes a destination once it wrote', async () => {
    const r = await rig();
    try {
      await connected(r);
      const c = await Client.authed(r.url);
      const lidChat = `${ALICE.lid}@lid`;
      assert.equal((await c.ask({ type: 'send', to: lidChat, text: 'early' })).code, 'NOT_ALLOWED');
      // The relay learns the allowlist's LIDs when WhatsApp opens; then Alice writes by LID only.
      await until('LIDs resolved', () => r.reporter.logs.some((l) => /allowlist: 1 of 1 numbers have a known LID/.test(l.message)));
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'by lid', addressing: 'lid-only', id: 'LIDMSG1' }));
      const m = await c.next((f) => f.type === 'message');
      assert.equal(m.chat, lidChat);
      assert.equal(m.id, 'LIDMSG1');
      const f = await c.ask({ type: 'send', to: lidChat, text: 'late' });
      assert.equal(f.type, 'sent', JSON.stringify(f));
      c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('malformed input gets an error and the connection stays: bad JSON, binary, not an object, no or unknown type, bad send fields, oversize text', async () => {
    const r = await rig({ api: { maxTextChars: 100 } });
    try {
      await connected(r);
      const c = await Client.authed(r.url);
      const cases: [unknown, string][] = [
        ['{"type": "send", ', 'BAD_JSON'],
        ['[1,2]', 'BAD_REQUEST'],
        ['"send"', 'BAD_REQUEST'],
        [{ to: ALICE.e164, text: 'x' }, 'BAD_REQUEST'],
        [{ type: 7 }, 'BAD_REQUEST'],
        [{ type: 'subscribe' }, 'UNKNOWN_TYPE'],
        [{ type: 'auth', token: TOKEN }, 'BAD_REQUEST'],
        [{ type: 'send', text: 'x' }, 'BAD_REQUEST'],
        [{ type: 'send', to: 15550000002, text: 'x' }, 'BAD_REQUEST'],
        [{ type: 'send', to: ALICE.e164 }, 'BAD_REQUEST'],
        [{ type: 'send', to: ALICE.e164, text: '   ' }, 'BAD_REQUEST'],
        [{ type: 'send', to: ALICE.e164, text: ['x'] }, 'BAD_REQUEST'],
        [{ type: 'send', to: 'alice', text: 'x' }, 'BAD_REQUEST'],
        [{ type: 'send', to: 'x'.repeat(200), text: 'x' }, 'BAD_REQUEST'],
        [{ type: 'send', to: ALICE.e164, text: 'y'.repeat(101) }, 'TOO_LONG'],
      ];
      for (const [input, code] of cases) {
        const from = c.frames.length;
        c.send(input);
        const f = await c.next(() => true, from);
        assert.equal(f.type, 'error', JSON.stringify(input));
        assert.equal(f.code, code, JSON.stringify(input));
        assert.equal(typeof f.error, 'string');
      }
      const from = c.frames.length;
      c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.equal((await c.next(() => true, from)).code, 'BAD_JSON');
      // Still connected and working.
      assert.equal((await c.ask({ type: 'send', to: ALICE.e164, text: 'y'.repeat(100) })).type, 'sent');
      assert.equal(c.closeCode, null);
      c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('a frame larger than the limit closes that client (1009); the others stay', async () => {
    const r = await rig({ api: { maxTextChars: 100 } });
    try {
      const big = await Client.authed(r.url);
      const other = await Client.authed(r.url);
      big.send({ type: 'send', to: ALICE.e164, text: 'z'.repeat(10000) });
      assert.equal(await big.waitClosed(), 1009);
      await sleep(100);
      assert.equal(other.closeCode, null);
      other.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('sends are rate limited per client', async () => {
    const r = await rig({ api: { sendsPerMinute: 3 } });
    try {
      await connected(r);
      const a = await Client.authed(r.url);
      const b = await Client.authed(r.url);
      for (let i = 0; i < 3; i++) assert.equal((await a.ask({ type: 'send', to: ALICE.e164, text: `a${i}` })).type, 'sent');
      const f = await a.ask({ type: 'send', to: ALICE.e164, text: 'a3' });
      assert.equal(f.code, 'RATE_LIMITED');
      assert.equal(f.to, ALICE.e164);
      assert.equal((await b.ask({ type: 'send', to: ALICE.e164, text: 'b0' })).type, 'sent', 'another client has its own budget');
      assert.ok(!r.server.sent.some((s) => s.text === 'a3'));
      a.close();
      b.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('send while WhatsApp is not connected: error NOT_CONNECTED', async () => {
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE] });
    server.refuseWith = 503;
    const r = await rig({ server });
    try {
      const c = await Client.authed(r.url);
      const f = await c.ask({ type: 'send', to: ALICE.e164, text: 'hi' });
      assert.equal(f.code, 'NOT_CONNECTED');
      c.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('a client that does not read is dropped; the others keep getting messages', async () => {
    const r = await rig({ api: { maxBufferedBytes: 256 * 1024 } });
    try {
      await connected(r);
      const reader = await Client.authed(r.url);
      const stuck = await Client.authed(r.url);
      stuck.ws.pause();
      const text = 'm'.repeat(60000);
      for (let i = 0; i < 400 && stuck.closeCode === null; i++) {
        r.server.deliver(r.server.fromContact(ALICE.e164, { text, id: `BULK${i}` }));
        if (i % 20 === 19) await sleep(10);
      }
      await until('the stuck client dropped', () => r.reporter.logs.some((l) => l.message === 'api: dropped a client that does not read what it is sent'));
      await reader.next((f) => f.type === 'message' && f.id === 'BULK0');
      assert.equal(r.bridge.api!.clientCount, 1);
      reader.close();
    } finally {
      await r.bridge.stop();
    }
  });

  test('Origin refused (browsers), non-loopback or wrong-port Host refused (DNS rebinding), plain HTTP and other paths refused', async () => {
    const r = await rig();
    try {
      for (const origin of [`http://127.0.0.1:${r.port}`, 'https://evil.example', 'null', 'vscode-webview://abc']) {
        await assert.rejects(Client.open(r.url, { origin }), /HTTP 403/, origin);
      }
      for (const host of ['evil.example', `evil.example:${r.port}`, `127.0.0.1:${r.port + 1}`, '127.0.0.1', `10.0.0.1:${r.port}`, `localhost.evil.example:${r.port}`]) {
        await assert.rejects(Client.open(r.url, { headers: { host } }), /HTTP 403/, host);
      }
      for (const host of [`localhost:${r.port}`, `[::1]:${r.port}`]) {
        const c = await Client.open(r.url, { headers: { host } });
        c.close();
      }
      await assert.rejects(Client.open(`ws://127.0.0.1:${r.port}/ws`), /HTTP 404/);
      const res = await fetch(`http://127.0.0.1:${r.port}/`);
      assert.equal(res.status, 426);
      // Listening on 127.0.0.1 only.
      const addr = await new Promise<string>((resolve) => {
        const s = net.connect({ host: '::1', port: r.port });
        s.on('connect', () => { s.destroy(); resolve('connected'); });
        s.on('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'error'); });
      });
      assert.notEqual(addr, 'connected', 'not reachable on ::1');
    } finally {
      await r.bridge.stop();
    }
  });

  test('graceful stop: clients closed with 1001, the WhatsApp socket ended, the port released', async () => {
    const r = await rig();
    await connected(r);
    const a = await Client.authed(r.url);
    const b = await Client.open(r.url); // not authenticated yet
    await r.bridge.stop();
    assert.equal(await a.waitClosed(), 1001);
    assert.equal(await b.waitClosed(), 1001);
    assert.notEqual(r.device.current?.state, 'open', 'the WhatsApp socket is closed');
    await assert.rejects(Client.open(r.url), /ECONNREFUSED/);
  });

  test('a Python client on python3-websockets, written the original way: auth, status, send -> sent, message', async () => {
    const r = await rig();
    try {
      await connected(r);
      const py = spawn(PYTHON, [PY_CLIENT], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', BRIDGE_URL: `ws://127.0.0.1:${r.port}`, BRIDGE_TOKEN: TOKEN, SEND_TO: ALICE.e164 },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      py.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      py.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      const exited = new Promise<number | null>((resolve) => { py.on('exit', (code) => { resolve(code); }); });
      try {
        await until(`python's send acknowledged; stdout: ${out} stderr: ${err}`, () => out.includes('sent '), 15000);
        r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'hello python' }));
        assert.equal(await within(exited, 15000, 'the process to exit'), 0, `stdout: ${out} stderr: ${err}`);
      } finally {
        py.kill();
      }
      assert.deepEqual(out.trim().split('\n'), [
        'auth True',
        'status connected',
        `sent ${ALICE.e164}`,
        `message ${ALICE.e164} ${ALICE_JID} hello python`,
      ]);
      assert.ok(r.server.sent.some((s) => s.chatId === ALICE_JID && s.text === 'hello from python'));
    } finally {
      await r.bridge.stop();
    }
  });
});

describe("the bridge's API from the command line (the built bundle)", () => {
  test('--api-port 0: the port on stderr, BRIDGE_TOKEN from the environment and never printed, SIGTERM closes clients 1001 and exits 0', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'token'), 'x');
    // No WhatsApp and no helper reachable here: it keeps retrying both until stopped.
    const child = spawn(process.execPath, [BIN, '--api-port', '0', '--auth-dir', path.join(dir, 'auth'), '--token-file', path.join(dir, 'token'),
      '--helper-url', 'ws://127.0.0.1:9/ws'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BRIDGE_TOKEN: TOKEN } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code); }); });
    try {
      await until(`the API's port on stderr: ${err}`, () => /api: listening on 127\.0\.0\.1:\d+\n/.test(err), 15000);
      const port = Number(/api: listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]);
      const c = await Client.authed(`ws://127.0.0.1:${port}`);
      const s = await c.next((f) => f.type === 'status');
      assert.ok(['starting', 'connecting', 'disconnected'].includes(s.status as string), JSON.stringify(s));
      child.kill('SIGTERM');
      assert.equal(await c.waitClosed(), 1001);
      assert.equal(c.closeReason, 'bridge stopping');
      assert.equal(await within(exited, 15000, 'the process to exit'), 0, err);
      assert.ok(!err.includes(TOKEN) && !out.includes(TOKEN), 'the token is never printed');
      assert.match(err, /api: token from BRIDGE_TOKEN/);
      assert.ok(!existsSync(path.join(dir, API_TOKEN_FILE)));
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('bad --api-port values and a port in use: a clear message, no stack', async () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) => new Promise<{ code: number | null; err: string }>((resolve) => {
      const dir = tempDir();
      const child = spawn(process.execPath, [BIN, '--auth-dir', path.join(dir, 'auth'), '--helper-url', 'ws://127.0.0.1:9/ws', ...args],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BRIDGE_TOKEN: TOKEN, ...env } });
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.on('exit', (code) => { resolve({ code, err }); });
    });
    for (const v of ['70000', 'abc']) {
      const r = await run(['--api-port', v]);
      assert.equal(r.code, 2, v);
      assert.match(r.err, /--api-port: not a port/);
    }
    assert.match((await run(['--api-port'])).err, /--api-port needs a value/);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => { blocker.listen(0, '127.0.0.1', resolve); });
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const r = await run(['--api-port', String(port)]);
      assert.equal(r.code, 1);
      assert.match(r.err, new RegExp(`companion-whatsapp: api: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
      const short = await run(['--api-port', '0'], { BRIDGE_TOKEN: 'short' });
      assert.equal(short.code, 1);
      assert.match(short.err, /companion-whatsapp: BRIDGE_TOKEN is too short/);
    } finally {
      blocker.close();
    }
  });
});

describe('--api-port and apiPort (configuration)', () => {
  const port = (argv: string[], file?: unknown): number | undefined | string => {
    const dir = tempDir();
    if (file !== undefined) writeFileSync(path.join(dir, 'bridge.json'), JSON.stringify(file));
    const r = parseArgs(file !== undefined ? [...argv, '--config', 'bridge.json'] : argv, {}, dir);
    return r.kind === 'run' ? r.config.apiPort : r.kind === 'error' ? `error: ${r.message}` : r.kind;
  };

  test('off unless asked; the flag, its = form and the file key; the flag wins; bad values refused', () => {
    assert.equal(port([]), undefined);
    assert.equal(port(['--api-port', '0']), 0);
    assert.equal(port(['--api-port=8765']), 8765);
    assert.equal(port([], { apiPort: 9000 }), 9000);
    assert.equal(port(['--api-port', '9001'], { apiPort: 9000 }), 9001);
    for (const bad of [['--api-port', '65536'], ['--api-port', 'x'], ['--api-port', '']]) {
      assert.match(String(port(bad)), /^error: --api-port/, bad.join(' '));
    }
    assert.match(String(port([], { apiPort: -1 })), /^error: apiPort: not a port/);
    assert.match(String(port([], { apiPort: 1.5 })), /^error: apiPort: not a port/);
  });
});
