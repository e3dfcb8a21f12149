/*
 * Unlinking through the API ({type:"logout"}) and the bundle's linking
 * stand-in (COMPANION_WHATSAPP_STANDIN), which the VS Code extension's Link
 * WhatsApp tests run. WhatsApp's servers are stood in by the in-memory
 * server (InMemoryWhatsAppServer under the real BaileysTransport) and by
 * StandInLinkingTransport in the bundle: nothing reaches WhatsApp.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { BaileysTransport } from '../src/baileys.js';
import { startBridge } from '../src/bridge.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppServer } from '../src/memoryTransport.js';
import { parseStandIn } from '../src/standinTransport.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/companion-whatsapp.js');
const TOKEN = 'test-token-0123456789abcdef';
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cw-link-'));
  dirs.push(d);
  return d;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function until(what: string, pred: () => boolean, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => { setTimeout(r, 20); });
  }
}

type Frame = Record<string, unknown> & { type: string };

async function apiClient(port: number, token: string): Promise<{ ws: WebSocket; frames: Frame[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const frames: Frame[] = [];
  ws.on('message', (d: Buffer) => { frames.push(JSON.parse(d.toString('utf8')) as Frame); });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve(); }); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'auth', token }));
  await until('auth ok', () => frames.some((f) => f.type === 'auth' && f.ok === true));
  return { ws, frames };
}

describe('unlink through the API (InMemoryWhatsAppServer under BaileysTransport)', () => {
  test('logout: WhatsApp forgets the device, the session files go, logged_out is broadcast once', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'helper-token'), 'x');
    const server = new InMemoryWhatsAppServer('+15550000001');
    const device = server.device();
    const reporter = new MemoryReporter();
    const authDir = path.join(dir, 'whatsapp-auth');
    const transport = new BaileysTransport({
      authDir, reporter, relink: false, printQr: false, makeSocket: device.makeSocket,
      reconnectInitialMs: 50, reconnectMaxMs: 200, fetchVersion: () => Promise.reject(new Error('no network in the tests')),
    });
    const bridge = await startBridge({
      workspaces: [{ name: 'ws1', url: 'ws://127.0.0.1:9/ws', tokenFile: path.join(dir, 'helper-token') }],
      allow: [], groups: [], authDir, stateDir: dir, json: false, relink: false,
      perSenderPerMinute: 100, helperSendsPerSecond: 10, logLevel: 'debug', apiPort: 0,
    }, transport, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100 }, { env: { BRIDGE_TOKEN: TOKEN } });
    try {
      await until('WhatsApp open', () => device.current?.state === 'open');
      await until('a saved session', () => existsSync(path.join(authDir, 'creds.json')));
      const c = await apiClient(bridge.api!.port, TOKEN);
      await until('connected', () => c.frames.some((f) => f.type === 'status' && f.status === 'connected'));
      c.ws.send(JSON.stringify({ type: 'logout' }));
      await until('logout ok', () => c.frames.some((f) => f.type === 'logout' && f.ok === true));
      assert.equal(device.loggedOut, true, 'the socket asked WhatsApp to remove the device');
      assert.deepEqual(readdirSync(authDir).filter((f) => f.endsWith('.json')), [], 'no session file left');
      assert.equal(c.frames.filter((f) => f.type === 'status' && f.status === 'logged_out').length, 1);
      const sockets = device.sockets.length;
      await new Promise((r) => { setTimeout(r, 400); });
      assert.equal(device.sockets.length, sockets, 'no reconnect after the logout');
      c.ws.close();
    } finally {
      await bridge.stop(500);
    }
  });
});

describe('the bundle on the linking stand-in (COMPANION_WHATSAPP_STANDIN)', () => {
  test('parseStandIn', () => {
    assert.equal(parseStandIn('1500'), 1500);
    assert.equal(parseStandIn('never'), null);
    assert.equal(parseStandIn('soon'), undefined);
    assert.equal(parseStandIn('-1'), undefined);
  });

  function run(dir: string, standIn: string, env: Record<string, string> = {}): { child: ReturnType<typeof spawn>; stderr: () => string; port: Promise<number> } {
    let err = '';
    const child = spawn(process.execPath, [BIN, '--api-port', '0', '--auth-dir', path.join(dir, 'auth'), '--helper-url', 'ws://127.0.0.1:9/ws'], {
      env: { ...process.env, COMPANION_WHATSAPP_STANDIN: standIn, BRIDGE_TOKEN: TOKEN, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const port = new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /api: listening on 127\.0\.0\.1:(\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => { reject(new Error(`exited ${String(code)}: ${err}`)); });
    });
    return { child, stderr: () => err, port };
  }

  async function stop(child: ReturnType<typeof spawn>): Promise<void> {
    if (child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }

  test('a QR code, then connected after the simulated scan; a restart opens without a QR; logout forgets it', async () => {
    const dir = tempDir();
    const a = run(dir, '300');
    try {
      const c = await apiClient(await a.port, TOKEN);
      await until('connected', () => c.frames.some((f) => f.type === 'status' && f.status === 'connected'));
      const qrAt = c.frames.findIndex((f) => f.type === 'qr' && f.qr === 'standin-qr-1');
      assert.ok(qrAt >= 0 && qrAt < c.frames.findIndex((f) => f.status === 'connected'), JSON.stringify(c.frames));
      assert.match(a.stderr(), /using the in-memory WhatsApp stand-in/);
      assert.ok(!a.stderr().includes(TOKEN), 'the token is never logged');
      c.ws.close();
    } finally {
      await stop(a.child);
    }
    assert.ok((JSON.parse(readFileSync(path.join(dir, 'auth', 'creds.json'), 'utf8')) as { standIn?: boolean }).standIn);
    const b = run(dir, 'never');
    try {
      const c = await apiClient(await b.port, TOKEN);
      await until('connected again', () => c.frames.some((f) => f.type === 'status' && f.status === 'connected'));
      assert.ok(!c.frames.some((f) => f.type === 'qr'), 'no QR code with a session');
      c.ws.send(JSON.stringify({ type: 'logout' }));
      await until('logout ok', () => c.frames.some((f) => f.type === 'logout' && f.ok === true));
      assert.ok(c.frames.some((f) => f.type === 'status' && f.status === 'logged_out'));
      assert.equal(existsSync(path.join(dir, 'auth', 'creds.json')), false);
      c.ws.close();
    } finally {
      await stop(b.child);
    }
  });

  test('chats on the stand-in (COMPANION_WHATSAPP_STANDIN_CHAT): a stranger gets a code; the bridge is killed (-9) and restarted; the owner\'s "pair CODE" still admits the number', async () => {
    const dir = tempDir();
    const chat = path.join(dir, 'chat');
    let seq = 0;
    const say = (m: Record<string, unknown>): void => {
      mkdirSync(path.join(chat, 'in'), { recursive: true });
      const tmp = path.join(chat, `.${++seq}.tmp`);
      writeFileSync(tmp, JSON.stringify(m));
      renameSync(tmp, path.join(chat, 'in', `${String(seq).padStart(4, '0')}.json`));
    };
    const sent = (): { to: string | null; text: string }[] => {
      try {
        return readFileSync(path.join(chat, 'sent.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { to: string | null; text: string });
      } catch { return []; }
    };
    const STRANGER = '+15551230001';
    const a = run(dir, '100', { COMPANION_WHATSAPP_STANDIN_CHAT: chat });
    let code = '';
    try {
      const c = await apiClient(await a.port, TOKEN);
      await until('connected', () => c.frames.some((f) => f.type === 'status' && f.status === 'connected'));
      say({ nonsense: true });
      say({ from: STRANGER, text: 'hello' });
      await until('the code reply', () => sent().some((m) => m.to === STRANGER && /Your code: [A-Z2-9]{6}/.test(m.text)));
      code = /Your code: ([A-Z2-9]{6})/.exec(sent().find((m) => m.to === STRANGER)!.text)![1]!;
      await until('the pairing frame', () => c.frames.some((f) => f.type === 'pairing' && f.code === code && f.from === STRANGER));
      assert.match(a.stderr(), /stand-in: 0001\.json is not a message/);
      assert.deepEqual(readdirSync(path.join(chat, 'in')), [], 'delivered files are consumed');
      c.ws.close();
    } finally {
      a.child.kill('SIGKILL'); // a crash: nothing saved at exit
      await new Promise((r) => { if (a.child.exitCode !== null || a.child.signalCode !== null) r(null); else a.child.once('exit', r); });
    }
    const b = run(dir, '100', { COMPANION_WHATSAPP_STANDIN_CHAT: chat });
    try {
      const c = await apiClient(await b.port, TOKEN);
      await until('the pending code replayed after auth', () => c.frames.some((f) => f.type === 'pairing' && f.code === code));
      say({ selfChat: true, text: `pair ${code}` });
      await until('the welcome', () => sent().some((m) => m.to === STRANGER && /Welcome/.test(m.text)));
      assert.ok(sent().some((m) => m.to === '+15550000000' && m.text.includes(`Approved ${STRANGER}`)), JSON.stringify(sent()));
      say({ from: STRANGER, text: 'status' });
      await until('the admitted number answered', () => sent().some((m) => m.to === STRANGER && /offline/i.test(m.text)));
      c.ws.close();
    } finally {
      await stop(b.child);
    }
  });

  test('--stop-with-parent: the bridge stops when its stdin closes (its parent is gone)', async () => {
    const dir = tempDir();
    let err = '';
    const child = spawn(process.execPath, [BIN, '--api-port', '0', '--stop-with-parent', '--auth-dir', path.join(dir, 'auth'), '--helper-url', 'ws://127.0.0.1:9/ws'], {
      env: { ...process.env, COMPANION_WHATSAPP_STANDIN: '100', BRIDGE_TOKEN: TOKEN }, stdio: ['pipe', 'ignore', 'pipe'],
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    await until('the API', () => /api: listening/.test(err));
    await new Promise((r) => { setTimeout(r, 300); });
    assert.equal(child.exitCode, null, 'still running while stdin is open');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => { r(code); }));
    child.stdin.end();
    const code = await Promise.race([exited, new Promise<string>((r) => { setTimeout(() => { r('timeout'); }, 10000); })]);
    if (code === 'timeout') child.kill('SIGKILL');
    assert.equal(code, 0, err);
    assert.match(err, /stdin closed \(--stop-with-parent\)/);
  });

  test('a bad COMPANION_WHATSAPP_STANDIN stops the bridge with a clear error', async () => {
    const r = run(tempDir(), 'soon');
    await assert.rejects(r.port, /COMPANION_WHATSAPP_STANDIN: expected a number of milliseconds or "never"/);
    assert.equal(r.child.exitCode, 1);
  });
});
