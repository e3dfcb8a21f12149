/**
 * Pairing codes for new senders, through the real bridge (relay, API) with
 * WhatsApp's servers stood in by InMemoryWhatsAppTransport (the in-memory
 * stand-in), the real companion-helper where a command must be answered,
 * and a real `ws` client for the bridge's API.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startBridge } from '../src/bridge.js';
import type { Bridge, BridgeTuning } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { parseArgs } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import type { FakeSent } from '../src/memoryTransport.js';
import { ALLOWED_FILE, CODE_ALPHABET, PAIRING_FILE, PairingCodes, WELCOME } from '../src/pairingCodes.js';
import { OFFLINE } from '../src/relay.js';
import type { IncomingMessage } from '../src/transport.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, gitRepo, ServedHelper, sleep } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';
const STRANGERS = ['+15550000011', '+15550000012', '+15550000013', '+15550000014'];
const BOSS = '+15550000077'; // listed in "owners"
const TOKEN = 'test-token-0123456789abcdef';
const CODE_RE = new RegExp(`code: ([${CODE_ALPHABET}]{6})`);

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cw-pair-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  cleanupAll();
});

function config(dir: string, extra: Partial<Config> = {}, helper?: ServedHelper): Config {
  writeFileSync(path.join(dir, 'helper-token'), 'x');
  return {
    workspaces: [helper
      ? { name: 'ws1', url: helper.url, tokenFile: helper.tokenFile(), workspaceId: helper.workspaceId }
      // No helper: allowed senders get "Workspace offline.", strangers nothing (or a code).
      : { name: 'ws1', url: 'ws://127.0.0.1:9/ws', tokenFile: path.join(dir, 'helper-token') }],
    allow: [ALICE],
    groups: [],
    authDir: path.join(dir, 'whatsapp-auth'),
    stateDir: dir,
    json: false,
    relink: false,
    perSenderPerMinute: 1000,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
    ...extra,
  };
}

interface Rig { bridge: Bridge; wa: InMemoryWhatsAppTransport; reporter: MemoryReporter }

async function rig(cfg: Config, tuning: BridgeTuning = {}): Promise<Rig> {
  const wa = new InMemoryWhatsAppTransport(OWNER);
  const reporter = new MemoryReporter();
  const bridge = await startBridge(cfg, wa, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100, ...tuning },
    { env: { BRIDGE_TOKEN: TOKEN } });
  return { bridge, wa, reporter };
}

async function ready(r: Rig): Promise<void> {
  const deadline = Date.now() + 10000;
  while (!r.bridge.helpers.every((h) => h.isReady())) {
    if (Date.now() > deadline) throw new Error('helper not ready');
    await sleep(20);
  }
}

const to = (n: string) => (s: FakeSent) => s.chatId === e164ToJid(n);
const self = (r: Rig) => (s: FakeSent) => s.chatId === r.wa.selfChatId();

function codeOf(sent: FakeSent[], n: string): string {
  const m = sent.filter(to(n)).map((s) => CODE_RE.exec(s.text)).find((x) => x !== null);
  assert.ok(m, `a code for ${n} in ${JSON.stringify(sent.map((s) => [s.chatId, s.text]))}`);
  return m[1]!;
}

/** An IncomingMessage as the transport would give it, for chats inject() cannot make (channels, broadcast lists, LID only). */
function raw(over: Partial<IncomingMessage>): IncomingMessage {
  return {
    chatId: e164ToJid(STRANGERS[0]!), senderE164: null, senderLid: null, isGroup: false, isFromMe: false,
    isStatusBroadcast: false, isSelfChat: false, text: 'hi', kind: 'text', id: `RAW${Math.random().toString(16).slice(2, 10)}`,
    timestamp: Math.floor(Date.now() / 1000), ...over,
  };
}

describe('pairing codes with the in-memory WhatsApp stand-in', () => {
  test('a stranger gets one code an hour; a 4th stranger gets nothing; groups, broadcasts, channels and status never get codes', async () => {
    const r = await rig(config(tempDir()));
    try {
      const [s1, s2, s3, s4] = STRANGERS as [string, string, string, string];
      // Never a code, first (while codes are free): groups (listed or not), status, a broadcast list, a channel.
      r.wa.inject({ from: '+15550000021', text: 'hi', group: '120363000000000009@g.us' });
      r.wa.inject({ from: '+15550000022', text: 'hi', statusBroadcast: true });
      r.wa.emit('message', raw({ chatId: '1234567890@broadcast', senderE164: '+15550000023' }));
      r.wa.emit('message', raw({ chatId: '120363000000000001@newsletter', senderE164: '+15550000024' }));
      await sleep(300);
      assert.equal(r.wa.sent.length, 0, 'nothing to groups, status, broadcast lists, channels');
      r.wa.inject({ from: s1, text: 'status' });
      r.wa.inject({ from: s1, text: 'status again' });
      r.wa.inject({ from: s1, kind: 'image', text: null });
      r.wa.inject({ from: s2, text: 'hello' });
      r.wa.inject({ from: s3, text: 'hello' });
      r.wa.inject({ from: s4, text: 'hello' }); // 3 codes pending already
      await r.wa.waitSent((s) => s.length >= 3, 5000, 'three codes');
      await sleep(600);
      assert.deepEqual(r.wa.sent.map((s) => s.chatId).sort(), [s1, s2, s3].map(e164ToJid).sort(), JSON.stringify(r.wa.sent));
      for (const s of r.wa.sent) assert.match(s.text, /pair [A-Z2-9]{6}/);
      const codes = [s1, s2, s3].map((n) => codeOf(r.wa.sent, n));
      assert.equal(new Set(codes).size, 3);
      for (const c of codes) assert.doesNotMatch(c, /[01OIL]/);
      // The owner lists them.
      r.wa.inject({ selfChat: true, text: 'pair' });
      const list = (await r.wa.waitSent((s) => s.some(self(r)), 5000, 'the list')).find(self(r))!.text;
      for (const c of codes) assert.ok(list.includes(c), list);
      // Strangers' numbers stay out of the info log.
      assert.ok(!r.reporter.logs.some((l) => l.level !== 'debug' && STRANGERS.some((n) => l.message.includes(n.slice(1)))), JSON.stringify(r.reporter.logs));
    } finally {
      await r.bridge.stop();
    }
  });

  test('owner "pair CODE": the stranger is welcomed, their next command is answered by the real helper, and the approval survives a restart (allowed.json, 0600)', async () => {
    const h = new ServedHelper(gitRepo('main'), { tasks: { hi: { command: 'sh', args: ['-c', 'echo hi'] } } });
    await h.start();
    const dir = tempDir();
    const bob = STRANGERS[0]!;
    let r = await rig(config(dir, {}, h));
    try {
      await ready(r);
      r.wa.inject({ from: bob, text: 'status' });
      const code = codeOf(await r.wa.waitSent((s) => s.some(to(bob)), 5000, 'the code'), bob);
      r.wa.inject({ selfChat: true, text: `pair ${code.toLowerCase()}` });
      await r.wa.waitSent((s) => s.some((x) => to(bob)(x) && x.text === WELCOME), 5000, 'the welcome');
      assert.match(r.wa.sent.find(self(r))!.text, new RegExp(`Approved \\${bob}`));
      assert.ok(r.reporter.events.some((e) => e.type === 'allowed' && e.data.number === bob));
      r.wa.inject({ from: bob, text: 'tasks' });
      await r.wa.waitSent((s) => s.some((x) => to(bob)(x) && /Tasks: hi/.test(x.text)), 10000, "the helper's answer");
      // The code is spent.
      r.wa.inject({ selfChat: true, text: `pair ${code}` });
      await r.wa.waitSent((s) => s.filter(self(r)).length >= 2, 5000, 'second owner reply');
      assert.match(r.wa.sent.filter(self(r))[1]!.text, /No pending code/);
      const file = path.join(dir, ALLOWED_FILE);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { allow: string[] }).allow, [bob]);
      await r.bridge.stop();
      r = await rig(config(dir, {}, h));
      await ready(r);
      r.wa.inject({ from: bob, text: 'tasks' });
      const sent = await r.wa.waitSent((s) => s.some(to(bob)), 10000, 'answer after restart');
      assert.match(sent.find(to(bob))!.text, /Tasks: hi/);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('wrong codes are rate-limited (5 per window), an expired code is refused, "deny" drops a code', async () => {
    const r = await rig(config(tempDir()), { pairing: { ttlMs: 1500, replyEveryMs: 1500 } });
    try {
      const [s1, s2] = STRANGERS as [string, string];
      r.wa.inject({ from: s1, text: 'hi' });
      const c1 = codeOf(await r.wa.waitSent((s) => s.some(to(s1)), 5000, 'code 1'), s1);
      await sleep(1700);
      r.wa.inject({ selfChat: true, text: `pair ${c1}` });
      await r.wa.waitSent((s) => s.some(self(r)), 5000, 'expired answer');
      assert.match(r.wa.sent.find(self(r))!.text, /No pending code/);
      // Still a stranger; after the hour (shortened) a new code comes.
      r.wa.inject({ from: s1, text: 'hi again' });
      await r.wa.waitSent((s) => s.filter(to(s1)).length >= 2, 5000, 'a new code after the hour');
      r.wa.inject({ from: s2, text: 'hi' });
      const c2 = codeOf(await r.wa.waitSent((s) => s.some(to(s2)), 5000, 'code 2'), s2);
      r.wa.inject({ selfChat: true, text: `deny ${c2}` });
      await r.wa.waitSent((s) => s.filter(self(r)).length >= 2, 5000, 'deny answer');
      assert.match(r.wa.sent.filter(self(r))[1]!.text, /Denied/);
      r.wa.inject({ from: s2, text: 'status' });
      await sleep(300);
      assert.equal(r.wa.sent.filter(to(s2)).length, 1, 'a denied sender is not answered');
      // Guessing: 4 more wrong (the expired one counted), then even a right code is refused.
      r.wa.inject({ from: STRANGERS[2]!, text: 'hi' });
      const c3 = codeOf(await r.wa.waitSent((s) => s.some(to(STRANGERS[2]!)), 5000, 'code 3'), STRANGERS[2]!);
      for (const g of ['AAAAAA', 'BBBBBB', 'CCCCCC', '!!']) r.wa.inject({ selfChat: true, text: `pair ${g}` });
      await r.wa.waitSent((s) => s.filter(self(r)).length >= 6, 5000, 'four refusals');
      r.wa.inject({ selfChat: true, text: `pair ${c3}` });
      await r.wa.waitSent((s) => s.filter(self(r)).length >= 7, 5000, 'rate-limited answer');
      assert.match(r.wa.sent.filter(self(r))[6]!.text, /Too many wrong codes/);
      r.wa.inject({ from: STRANGERS[2]!, text: 'status' });
      await sleep(300);
      assert.ok(!r.wa.sent.some((s) => to(STRANGERS[2]!)(s) && s.text === OFFLINE), 'not approved while rate-limited');
      // Only the owner's chats approve: an allowed sender's "pair" goes to the workspace.
      r.wa.inject({ from: ALICE, text: `pair ${c3}` });
      await r.wa.waitSent((s) => s.some(to(ALICE)), 5000, "Alice's answer");
      assert.equal(r.wa.sent.find(to(ALICE))!.text, OFFLINE);
    } finally {
      await r.bridge.stop();
    }
  });

  test('an "owners" number approves from its own chat; a LID-only stranger is keyed by LID and allowed by it', async () => {
    const r = await rig(config(tempDir(), { owners: [BOSS] }));
    try {
      const lid = '104257358999000@lid';
      r.wa.emit('message', raw({ chatId: lid, senderLid: lid, text: 'hello' }));
      const sent = await r.wa.waitSent((s) => s.some((x) => x.chatId === lid), 5000, 'the LID code');
      const code = CODE_RE.exec(sent.find((x) => x.chatId === lid)!.text)![1]!;
      r.wa.inject({ from: BOSS, text: 'pair' });
      await r.wa.waitSent((s) => s.some(to(BOSS)), 5000, 'the list for the owner');
      assert.ok(r.wa.sent.find(to(BOSS))!.text.includes(lid));
      r.wa.inject({ from: BOSS, text: `pair ${code}` });
      await r.wa.waitSent((s) => s.some((x) => x.chatId === lid && x.text === WELCOME), 5000, 'welcome by LID');
      r.wa.emit('message', raw({ chatId: lid, senderLid: lid, text: 'status' }));
      await r.wa.waitSent((s) => s.some((x) => x.chatId === lid && x.text === OFFLINE), 5000, 'answered by LID');
    } finally {
      await r.bridge.stop();
    }
  });

  test('API: a pairing frame is broadcast (and replayed to a new client), approvePairing/denyPairing answer, "allowed" is announced; allowManaged writes no file', async () => {
    const dir = tempDir();
    const r = await rig(config(dir, { apiPort: 0, allowManaged: true }));
    const frames: Record<string, unknown>[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${r.bridge.api!.port}/`);
    try {
      await new Promise<void>((resolve, reject) => { ws.on('open', () => { resolve(); }); ws.on('error', reject); });
      ws.on('message', (d: Buffer) => { frames.push(JSON.parse(d.toString()) as Record<string, unknown>); });
      ws.send(JSON.stringify({ type: 'auth', token: TOKEN }));
      const wait = async (pred: (f: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
        const deadline = Date.now() + 5000;
        for (;;) {
          const f = frames.find(pred);
          if (f) return f;
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(frames)}`);
          await sleep(20);
        }
      };
      await wait((f) => f.type === 'auth', 'auth');
      const [s1, s2] = STRANGERS as [string, string];
      r.wa.inject({ from: s1, text: 'hi' });
      const p = await wait((f) => f.type === 'pairing', 'pairing frame');
      assert.equal(p.from, s1);
      assert.equal(p.code, codeOf(r.wa.sent, s1));
      assert.ok(typeof p.expiresAt === 'number' && p.expiresAt > Date.now() + 3500000);
      // Bad input.
      ws.send(JSON.stringify({ type: 'approvePairing' }));
      const bad = await wait((f) => f.type === 'error', 'bad request');
      assert.equal(bad.code, 'BAD_REQUEST');
      ws.send(JSON.stringify({ type: 'approvePairing', code: 'ZZZZZZ' }));
      const wrong = await wait((f) => f.type === 'pairingResult' && f.ok === false, 'wrong code result');
      assert.equal(wrong.reason, 'UNKNOWN_CODE');
      ws.send(JSON.stringify({ type: 'approvePairing', code: p.code }));
      const ok = await wait((f) => f.type === 'pairingResult' && f.ok === true, 'approve result');
      assert.equal(ok.number, s1);
      assert.deepEqual(await wait((f) => f.type === 'allowed', 'allowed frame'), { type: 'allowed', number: s1 });
      await r.wa.waitSent((s) => s.some((x) => to(s1)(x) && x.text === WELCOME), 5000, 'welcome');
      r.wa.inject({ from: s1, text: 'status' });
      await r.wa.waitSent((s) => s.some((x) => to(s1)(x) && x.text === OFFLINE), 5000, 'allowed sender answered');
      // The API may now send to the new sender.
      ws.send(JSON.stringify({ type: 'send', to: s1, text: 'hello from the editor' }));
      await wait((f) => f.type === 'sent', 'sent');
      // A second stranger: a new client gets the pending code on connect; deny.
      r.wa.inject({ from: s2, text: 'hi' });
      await r.wa.waitSent((s) => s.some(to(s2)), 5000, 'code 2');
      const c2 = codeOf(r.wa.sent, s2);
      const ws2 = new WebSocket(`ws://127.0.0.1:${r.bridge.api!.port}/`);
      const frames2: Record<string, unknown>[] = [];
      ws2.on('message', (d: Buffer) => { frames2.push(JSON.parse(d.toString()) as Record<string, unknown>); });
      await new Promise<void>((resolve) => { ws2.on('open', () => { resolve(); }); });
      ws2.send(JSON.stringify({ type: 'auth', token: TOKEN }));
      const deadline = Date.now() + 5000;
      while (!frames2.some((f) => f.type === 'pairing') && Date.now() < deadline) await sleep(20);
      assert.ok(frames2.some((f) => f.type === 'pairing' && f.code === c2 && f.from === s2), JSON.stringify(frames2));
      ws2.close();
      ws.send(JSON.stringify({ type: 'denyPairing', code: c2 }));
      const denied = await wait((f) => f.type === 'pairingResult' && f.action === 'deny', 'deny result');
      assert.equal(denied.ok, true);
      assert.throws(() => statSync(path.join(dir, ALLOWED_FILE)), /ENOENT/, 'the editor owns the list: no allowed.json');
    } finally {
      ws.close();
      await r.bridge.stop();
    }
  });

  test('a corrupt allowed.json is reported and the bridge keeps running; config "owners" and --allow-managed are checked', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, ALLOWED_FILE), '{not json');
    const r = await rig(config(dir));
    try {
      assert.ok(r.reporter.logs.some((l) => l.level === 'warn' && l.message.includes('not JSON')), JSON.stringify(r.reporter.logs));
      r.wa.inject({ from: ALICE, text: 'status' });
      await r.wa.waitSent((s) => s.some(to(ALICE)), 5000, 'answer');
    } finally {
      await r.bridge.stop();
    }
    const cfgFile = path.join(dir, 'c.json');
    writeFileSync(cfgFile, JSON.stringify({ owners: ['nope'] }));
    const bad = parseArgs(['--config', cfgFile]);
    assert.equal(bad.kind, 'error');
    assert.match((bad as { message: string }).message, /owners/);
    writeFileSync(cfgFile, JSON.stringify({ owners: ['+1 555 000 0077'] }));
    const good = parseArgs(['--config', cfgFile, '--allow-managed']);
    assert.ok(good.kind === 'run');
    assert.deepEqual(good.config.owners, [BOSS]);
    assert.equal(good.config.allowManaged, true);
    assert.equal(parseArgs(['--allow-managed=1']).kind, 'error');
  });

  test('a pending code survives a restart (pairing.json, 0600): the owner approves it after, the counters still bound strangers, expired codes are dropped', async () => {
    const dir = tempDir();
    const [s1, s2, s3, s4] = STRANGERS as [string, string, string, string];
    let r = await rig(config(dir));
    let code: string;
    try {
      r.wa.inject({ from: s1, text: 'hi' });
      r.wa.inject({ from: s2, text: 'hi' });
      r.wa.inject({ from: s3, text: 'hi' });
      await r.wa.waitSent((s) => s.length >= 3, 5000, 'three codes');
      code = codeOf(r.wa.sent, s1);
    } finally {
      await r.bridge.stop();
    }
    const file = path.join(dir, PAIRING_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    r = await rig(config(dir));
    try {
      // Answered within the hour before the restart: no second code; 3 pending: a 4th stranger gets nothing.
      r.wa.inject({ from: s1, text: 'hi again' });
      r.wa.inject({ from: s4, text: 'hi' });
      await sleep(400);
      assert.deepEqual(r.wa.sent, [], 'no code after the restart: the counters were kept');
      r.wa.inject({ selfChat: true, text: 'pair' });
      const list = (await r.wa.waitSent((s) => s.some(self(r)), 5000, 'the list')).find(self(r))!.text;
      assert.ok(list.includes(code) && list.includes(s1), list);
      r.wa.inject({ selfChat: true, text: `pair ${code}` });
      await r.wa.waitSent((s) => s.some((x) => to(s1)(x) && x.text === WELCOME), 5000, 'the welcome after the restart');
      r.wa.inject({ from: s1, text: 'status' });
      await r.wa.waitSent((s) => s.some((x) => to(s1)(x) && x.text === OFFLINE), 5000, 'the approved sender answered');
      assert.deepEqual((JSON.parse(readFileSync(path.join(dir, ALLOWED_FILE), 'utf8')) as { allow: string[] }).allow, [s1]);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { pending: { code: string }[] };
      assert.equal(saved.pending.length, 2, 'the used code is gone from the file');
      assert.ok(!saved.pending.some((p) => p.code === code));
    } finally {
      await r.bridge.stop();
    }
    // Expired while the bridge was down: dropped on load.
    const old = JSON.parse(readFileSync(file, 'utf8')) as { pending: { expiresAt: number }[] };
    for (const p of old.pending) p.expiresAt = Date.now() - 1000;
    writeFileSync(file, JSON.stringify(old), { mode: 0o600 });
    r = await rig(config(dir));
    try {
      r.wa.inject({ selfChat: true, text: 'pair' });
      await r.wa.waitSent((s) => s.some(self(r)), 5000, 'the list');
      assert.equal(r.wa.sent.find(self(r))!.text, 'No pending pairing codes.');
      assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { pending: unknown[] }).pending, [], 'rewritten without them');
    } finally {
      await r.bridge.stop();
    }
  });

  test('a corrupt pairing.json is reported and ignored (the bridge starts and issues codes); an unwritable one is reported, the code still works', async () => {
    for (const bad of ['{not json', '{"version":1,"pending":[{"code":"nope"}],"replied":[],"issued":[],"wrong":[]}', '[]', '{"version":2}']) {
      const dir = tempDir();
      writeFileSync(path.join(dir, PAIRING_FILE), bad);
      const r = await rig(config(dir));
      try {
        assert.ok(r.reporter.logs.some((l) => l.level === 'warn' && /pairing\.json is corrupt/.test(l.message)), `${bad}: ${JSON.stringify(r.reporter.logs)}`);
        r.wa.inject({ from: STRANGERS[0]!, text: 'hi' });
        const code = codeOf(await r.wa.waitSent((s) => s.some(to(STRANGERS[0]!)), 5000, 'a code'), STRANGERS[0]!);
        const saved = JSON.parse(readFileSync(path.join(dir, PAIRING_FILE), 'utf8')) as { pending: { code: string }[] };
        assert.deepEqual(saved.pending.map((p) => p.code), [code], 'rewritten whole');
      } finally {
        await r.bridge.stop();
      }
    }
    const dir = tempDir();
    mkdirSync(path.join(dir, PAIRING_FILE)); // cannot be read as a file, nor replaced by one
    const r = await rig(config(dir));
    try {
      assert.ok(r.reporter.logs.some((l) => l.level === 'warn' && /cannot read .*pairing\.json/.test(l.message)), JSON.stringify(r.reporter.logs));
      const s1 = STRANGERS[1]!;
      r.wa.inject({ from: s1, text: 'hi' });
      const code = codeOf(await r.wa.waitSent((s) => s.some(to(s1)), 5000, 'a code'), s1);
      assert.ok(r.reporter.logs.some((l) => l.level === 'warn' && /cannot save .*pairing\.json/.test(l.message)), JSON.stringify(r.reporter.logs));
      r.wa.inject({ selfChat: true, text: `pair ${code}` });
      await r.wa.waitSent((s) => s.some((x) => to(s1)(x) && x.text === WELCOME), 5000, 'the welcome');
    } finally {
      await r.bridge.stop();
    }
  });

  test('codes stay bounded when strangers flood in (unit)', () => {
    let now = 1000;
    const p = new PairingCodes({ now: () => now });
    let issued = 0;
    for (let hour = 0; hour < 3; hour++) {
      for (let i = 0; i < 10000; i++) {
        const c = p.onStranger(`+1555${hour}${String(i).padStart(6, '0')}`, null, 'x@s.whatsapp.net');
        if (c) { issued++; assert.equal(p.deny(c.code).ok, true); } // even when each is dealt with at once
      }
      now += 3600000;
    }
    assert.equal(issued, 30, 'at most 10 codes an hour');
  });
});
