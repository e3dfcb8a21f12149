/**
 * The real Baileys adapter (BaileysTransport: upserts, reconnects, the
 * session folder) and the relay, against the REAL companion-helper binary.
 * WhatsApp's servers are stood in by InMemoryWhatsAppServer (the socket
 * Baileys would give, with messages shaped as Baileys' decoder makes them).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_CONNECTION_CONFIG } from '@whiskeysockets/baileys';
import { BaileysTransport, parseWebVersion, resolveWebVersion } from '../src/baileys.js';
import type { WAVersion } from '../src/baileys.js';
import type { BaileysTransportOptions } from '../src/baileys.js';
import { startBridge } from '../src/bridge.js';
import type { Bridge } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppServer } from '../src/memoryTransport.js';
import type { FakeSent, InMemoryLinkedDevice, MemoryContact } from '../src/memoryTransport.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, gitRepo, ServedHelper, sleep, tempDir } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE: MemoryContact = { e164: '+15550000002', lid: '104257358999812' };
const MALLORY: MemoryContact = { e164: '+15550000099', lid: '999000111222333' };

const TASKS = {
  tasks: {
    hi: { command: 'sh', args: ['-c', 'echo hello from task'] },
    slow: { command: 'sh', args: ['-c', 'sleep 1.5; echo slow done'] },
  },
};

function config(h: ServedHelper, tokenFile: string, dir: string, extra: Partial<Config> = {}): Config {
  return {
    workspaces: [{ name: 'ws1', url: h.url, tokenFile, workspaceId: h.workspaceId }],
    allow: [ALICE.e164],
    groups: [],
    authDir: path.join(dir, 'whatsapp-auth'),
    json: false,
    relink: false,
    perSenderPerMinute: 100,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
    ...extra,
  };
}

interface Rig { bridge: Bridge; server: InMemoryWhatsAppServer; device: InMemoryLinkedDevice; transport: BaileysTransport; reporter: MemoryReporter; dir: string }

async function rig(h: ServedHelper, opts: { server?: InMemoryWhatsAppServer; device?: InMemoryLinkedDevice; dir?: string; config?: Partial<Config>; transport?: Partial<BaileysTransportOptions> } = {}): Promise<Rig> {
  const server = opts.server ?? new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE, MALLORY] });
  const device = opts.device ?? server.device();
  const dir = opts.dir ?? tempDir('cw-wa-');
  const cfg = config(h, h.tokenFile(), dir, opts.config);
  const reporter = new MemoryReporter();
  const transport = new BaileysTransport({
    authDir: cfg.authDir, reporter, relink: false, printQr: false, makeSocket: device.makeSocket,
    reconnectInitialMs: 100, reconnectMaxMs: 1000,
    // Never the network in the tests: the version fetch fails as it does offline, unless a test gives one.
    fetchVersion: () => Promise.reject(new Error('no network in the tests')),
    ...opts.transport,
  });
  const bridge = await startBridge(cfg, transport, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100 });
  return { bridge, server, device, transport, reporter, dir };
}

async function until(what: string, pred: () => boolean, timeoutMs = 10000, r?: Rig): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${r ? `; logs: ${JSON.stringify(r.reporter.logs.slice(-30))}` : ''}`);
    await sleep(20);
  }
}

async function ready(r: Rig): Promise<void> {
  await until('helpers ready', () => r.bridge.helpers.every((h) => h.isReady()), 10000, r);
  await until('WhatsApp open', () => r.device.current?.state === 'open', 10000, r);
}

const to = (jid: string) => (s: FakeSent) => s.chatId === jid;
const ALICE_JID = e164ToJid(ALICE.e164);

after(() => { cleanupAll(); });

describe('BaileysTransport on the in-memory WhatsApp server stand-in, with the real helper', () => {
  test('links (QR, creds saved, restart 515), opens, and answers the self chat and an allowed contact', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h);
    try {
      await ready(r);
      assert.ok(r.reporter.events.some((e) => e.type === 'qr'), 'a QR code was shown');
      assert.equal(r.device.sockets.length, 2, 'reconnected once after the scan (515)');
      await until('creds.json written', () => existsSync(path.join(r.dir, 'whatsapp-auth', 'creds.json')), 5000, r);
      const creds = JSON.parse(readFileSync(path.join(r.dir, 'whatsapp-auth', 'creds.json'), 'utf8')) as { me?: { id: string } };
      assert.equal(creds.me?.id, '15550000001:10@s.whatsapp.net');
      r.server.deliver(r.server.fromPhone({ text: 'tasks' }));
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'log 1' }));
      await r.server.waitSent((s) => s.some(to(r.server.selfChatId())) && s.some(to(ALICE_JID)), 10000, 'two answers');
      assert.equal(r.server.sent.find(to(r.server.selfChatId()))!.text, 'Tasks: hi, slow');
      assert.match(r.server.sent.find(to(ALICE_JID))!.text, /first commit/);
      await sleep(500);
      assert.equal(r.server.sent.length, 2, `the echoes of the replies are not commands: ${JSON.stringify(r.server.sent)}`);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('edits, encrypted edits, pins, reactions and call offers from an allowed contact get no answer at all', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h);
    try {
      await ready(r);
      const target = { remoteJid: ALICE_JID, fromMe: false, id: '3EB0C431D8B5A3F2E1A7' };
      const contents = [
        { editedMessage: { message: { protocolMessage: { key: target, type: 'MESSAGE_EDIT', editedMessage: { conversation: 'run hi' } } } } },
        { secretEncryptedMessage: { targetMessageKey: target, encPayload: 'q83vEjRWeJ', encIv: 'AAECAwQF', secretEncType: 'MESSAGE_EDIT' } },
        { pinInChatMessage: { key: target, type: 'PIN_FOR_ALL' }, messageContextInfo: { messageAddOnDurationInSecs: 604800 } },
        { reactionMessage: { key: target, text: '👍' } },
        { call: { callKey: 'NUExQzBGRkVF' } },
      ];
      for (const message of contents) r.server.deliver(r.server.fromContact(ALICE.e164, { message }));
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'tasks' }));
      await r.server.waitSent((s) => s.length >= 1, 10000, 'the answer to tasks');
      await sleep(800);
      assert.deepEqual(r.server.sent.map((s) => s.text), ['Tasks: hi, slow'], 'only the text command is answered');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('broadcast lists and channels (newsletters) are never answered, not even an allowed contact\'s', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h);
    try {
      await ready(r);
      await sleep(300); // the allowlist is resolved to LIDs when the connection opens
      const list = '1733412345@broadcast';
      // Alice's broadcast list, with her number given (LID addressing, number in remoteJidAlt) and by number.
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'status', broadcastList: list, addressing: 'lid' }));
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'status', broadcastList: list, addressing: 'pn' }));
      r.server.deliver(r.server.fromNewsletter('120363144038483540@newsletter', { text: 'status' }));
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'tasks' }));
      await r.server.waitSent((s) => s.length >= 1, 10000, 'the answer to tasks');
      await sleep(800);
      assert.deepEqual(r.server.sent.map((s) => [s.chatId, s.text]), [[ALICE_JID, 'Tasks: hi, slow']], 'only the direct chat is answered');
      assert.ok(r.reporter.logs.some((l) => l.level === 'debug' && l.message.includes(`ignored message in ${list}`)), JSON.stringify(r.reporter.logs));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a command sent while the connection is re-established (428) is answered once: Baileys upserts it as append', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h);
    try {
      await ready(r);
      const sockets = r.device.sockets.length;
      r.device.disconnect(428, 'Connection Closed');
      // WhatsApp holds it for the device; the new socket gets it as an offline message ('append').
      const raw = r.server.fromContact(ALICE.e164, { text: 'tasks' });
      r.server.deliver(raw);
      await r.server.waitSent((s) => s.some(to(ALICE_JID)), 10000, 'the answer after the reconnect');
      assert.ok(r.device.sockets.length > sockets, 'reconnected');
      // The same message again (as WhatsApp may redeliver it): de-duplicated by its key.
      r.server.deliver(raw, { type: 'append' });
      r.server.deliver(raw, { type: 'notify' });
      await sleep(800);
      assert.deepEqual(r.server.sent.map((s) => s.text), ['Tasks: hi, slow']);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('messages sent before the bridge started, delivered as append, are not run', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE, MALLORY] });
    const device = server.device();
    server.deliver(server.fromContact(ALICE.e164, { text: 'run hi', timestamp: Math.floor(Date.now() / 1000) - 30 }));
    const r = await rig(h, { server, device });
    try {
      await ready(r);
      server.deliver(server.fromContact(ALICE.e164, { text: 'tasks' }));
      await server.waitSent((s) => s.length >= 1, 10000, 'the answer to tasks');
      await sleep(800);
      assert.deepEqual(server.sent.map((s) => s.text), ['Tasks: hi, slow']);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a task\'s end while WhatsApp reconnects for seconds (503) is held and sent when it is back', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h);
    try {
      await ready(r);
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'run slow' }));
      await r.server.waitSent((s) => s.some((x) => /slow started/.test(x.text)), 10000, 'slow started');
      // WhatsApp is away for 3.5 s: every connection attempt is refused with 503 meanwhile.
      r.server.refuseWith = 503;
      r.device.disconnect(503, 'Service Unavailable');
      await sleep(3500);
      assert.ok(!r.server.sent.some((x) => /slow finished/.test(x.text)));
      r.server.refuseWith = null;
      await r.server.waitSent((s) => s.some((x) => /slow finished: exit 0/.test(x.text)), 10000, 'the task\'s end after the reconnect');
      assert.equal(r.server.sent.filter((x) => /slow finished/.test(x.text)).length, 1);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });
});

/** The version pinned in the Baileys release (its DEFAULT_CONNECTION_CONFIG). */
const BUNDLED_VERSION: WAVersion = [...DEFAULT_CONNECTION_CONFIG.version];

describe('WhatsApp Web version (fetched at connect, bundled fallback, override) on the in-memory server stand-in', () => {
  const above = (n: number): WAVersion => [BUNDLED_VERSION[0], BUNDLED_VERSION[1], BUNDLED_VERSION[2] + n];

  test('WhatsApp raised its minimum above the bundled version: the fetched current version connects', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE] });
    server.minVersion = above(1);
    const r = await rig(h, { server, transport: { fetchVersion: () => Promise.resolve(above(7)) } });
    try {
      await ready(r);
      assert.ok(r.device.connects.every((c) => c.version?.join('.') === above(7).join('.')), JSON.stringify(r.device.connects));
      server.deliver(server.fromContact(ALICE.e164, { text: 'tasks' }));
      await server.waitSent((s) => s.length >= 1, 10000, 'an answer');
      assert.ok(r.reporter.logs.some((l) => l.level === 'info' && l.message === `WhatsApp Web version ${above(7).join('.')} (the current one)`));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('no network (the fetch hangs): the bundled version is used after the time bound, and said so', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const hang = (signal: AbortSignal): Promise<WAVersion | null> => new Promise((_, reject) => { signal.addEventListener('abort', () => { reject(new Error('aborted')); }); });
    const started = Date.now();
    const r = await rig(h, { transport: { fetchVersion: hang, versionFetchTimeoutMs: 300 } });
    try {
      await ready(r);
      assert.ok(Date.now() - started < 5000);
      assert.equal(r.device.connects[0]!.version?.join('.'), BUNDLED_VERSION.join('.'));
      assert.ok(r.reporter.logs.some((l) => l.level === 'warn' && /WhatsApp Web version [\d.]+ \(bundled with Baileys; fetching the current one failed: no answer within 300 ms\)/.test(l.message)), JSON.stringify(r.reporter.logs));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('--wa-version overrides: no fetch, that version is presented', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    let fetches = 0;
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE] });
    server.minVersion = above(2);
    const r = await rig(h, { server, transport: { waVersion: above(3), fetchVersion: () => { fetches++; return Promise.resolve(above(1)); } } });
    try {
      await ready(r);
      assert.equal(fetches, 0);
      assert.ok(r.device.connects.every((c) => c.version?.join('.') === above(3).join('.')));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('405 is reported as "client too old" and not retried', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE] });
    server.minVersion = above(100);
    const r = await rig(h, { server, transport: { fetchVersion: () => Promise.resolve(above(1)) } });
    try {
      await until('the close', () => r.reporter.events.some((e) => e.type === 'status' && e.data.whatsapp === 'close'), 5000, r);
      await sleep(1500); // reconnects would be 100, 200, 400, 800 ms apart
      assert.equal(r.device.sockets.length, 1, 'not retried');
      const close = r.reporter.events.find((e) => e.type === 'status' && e.data.whatsapp === 'close')!;
      assert.equal(close.data.reason, 'clientTooOld');
      assert.equal(close.data.willReconnect, false);
      assert.ok(r.reporter.logs.some((l) => l.level === 'error' && /client too old .*version [\d.]+ \(fetched\) as too old.*--wa-version/.test(l.message)), JSON.stringify(r.reporter.logs));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('resolveWebVersion and parseWebVersion', async () => {
    assert.deepEqual(await resolveWebVersion({ fetch: () => Promise.reject(new Error('getaddrinfo ENOTFOUND')), timeoutMs: 1000 }), { version: BUNDLED_VERSION, source: 'bundled', why: 'getaddrinfo ENOTFOUND' });
    assert.deepEqual(await resolveWebVersion({ fetch: () => Promise.resolve(null), timeoutMs: 1000 }), { version: BUNDLED_VERSION, source: 'bundled', why: 'no version found' });
    assert.deepEqual(await resolveWebVersion({ fetch: () => Promise.resolve([2, 3000, 5]), timeoutMs: 1000 }), { version: [2, 3000, 5], source: 'fetched' });
    assert.deepEqual(await resolveWebVersion({ override: [2, 3000, 9], fetch: () => Promise.reject(new Error('not called')), timeoutMs: 1000 }), { version: [2, 3000, 9], source: 'override' });
    assert.deepEqual(parseWebVersion('2.3000.1023456789'), [2, 3000, 1023456789]);
    assert.equal(parseWebVersion('2.3000'), null);
  });
});

describe('reconnect policy on the in-memory server stand-in', () => {
  for (const [code, reason, words] of [
    [401, 'loggedOut', /logged out \(removed from Linked devices\).*--relink/],
    [403, 'forbidden', /refused this account \(403/],
    [405, 'clientTooOld', /client too old.*--wa-version/],
    [411, 'multideviceMismatch', /multi-device mismatch \(411.*--relink/],
  ] as const) {
    test(`${code} is fatal: a clear message, no reconnect`, async () => {
      const h = new ServedHelper(gitRepo('main'), TASKS);
      await h.start();
      const r = await rig(h);
      try {
        await ready(r);
        const sockets = r.device.sockets.length;
        r.server.refuseWith = code;
        r.device.disconnect(code);
        await sleep(1500); // reconnects would come 100, 200, 400, 800 ms apart
        assert.equal(r.device.sockets.length, sockets, 'not retried');
        const close = r.reporter.events.filter((e) => e.type === 'status' && e.data.whatsapp === 'close').at(-1)!;
        assert.equal(close.data.reason, reason);
        assert.equal(close.data.willReconnect, false);
        assert.ok(r.reporter.logs.some((l) => l.level === 'error' && words.test(l.message)), JSON.stringify(r.reporter.logs));
      } finally {
        await r.bridge.stop();
        await h.stop();
      }
    });
  }

  test('the backoff resets only after a connection stayed open a whole minute (the default, on an injected clock)', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    let skew = 0; // how far the injected clock is ahead of the real one
    const r = await rig(h, { transport: { now: () => Date.now() + skew, reconnectInitialMs: 400, reconnectMaxMs: 3200 } });
    try {
      await ready(r);
      // Four quick drops: the next delay is 400 * 2^4 = 6.4 s, capped at 3.2 s (+-20 %).
      r.server.closeAfterOpenMs = 10;
      const from = r.device.connects.length;
      r.device.disconnect(428, 'Connection Closed');
      await until('four flapping connects', () => r.device.connects.length >= from + 4, 15000, r);
      r.server.closeAfterOpenMs = null;
      // One open past the 10 ms a connection made before the line above may still get.
      await until('open again', () => r.device.current?.state === 'open', 10000, r);
      await sleep(200);
      await until('open again, to stay', () => r.device.current?.state === 'open', 10000, r);
      const drop = async (): Promise<number> => {
        const n = r.device.connects.length;
        const at = Date.now();
        r.device.disconnect(428, 'Connection Closed');
        await until('the reconnect', () => r.device.connects.length > n && r.device.current?.state === 'open', 10000, r);
        return r.device.connects[n]!.at - at;
      };
      skew += 59000; // open 59 s: not stable yet, the backoff goes on
      const early = await drop();
      assert.ok(early >= 2400, `reconnected after ${early} ms although the connection was open less than a minute`);
      skew += 60000; // open a whole minute: the backoff starts again from 400 ms
      const late = await drop();
      assert.ok(late < 700, `reconnected after ${late} ms after a stable minute`);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a link that opens and drops at once backs off (no 1 s loop); the backoff resets after a stable period', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h, { transport: { stableMs: 1500 } });
    try {
      await ready(r);
      r.server.closeAfterOpenMs = 20;
      const from = r.device.connects.length;
      r.device.disconnect(428, 'Connection Closed');
      await until('five flapping connects', () => r.device.connects.length >= from + 5, 10000, r);
      const at = r.device.connects.slice(from).map((c) => c.at);
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      // 100, 200, 400, 800 ms (+-20 %) apart, plus the 20 ms each stays open; not 100 ms each time.
      assert.ok(gaps[3]! >= 600, `gaps ${JSON.stringify(gaps)}`);
      // Stable again: after stableMs open, the next drop reconnects after the initial delay.
      r.server.closeAfterOpenMs = null;
      // The stand-in decides at open: a connection made before this line may
      // still open and stay (or be closed by its 20 ms timer, then one more
      // reconnect). Wait for one open past its 20 ms, then a stable period.
      await until('a connection open after the flapping', () => r.device.current?.state === 'open', 5000, r);
      await sleep(200);
      await until('a connection that stays open after the flapping', () => r.device.current?.state === 'open', 5000, r);
      const settled = r.device.connects.length;
      await sleep(1800);
      assert.equal(r.device.connects.length, settled, 'no reconnect while the link is stable');
      const n = r.device.connects.length;
      const dropped = Date.now();
      r.device.disconnect(428, 'Connection Closed');
      await until('the reconnect', () => r.device.connects.length > n, 5000, r);
      assert.ok(r.device.connects[n]!.at - dropped < 400, `reconnected after ${r.device.connects[n]!.at - dropped} ms`);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });
});

describe('LID addressing on the in-memory server stand-in', () => {
  test('an allowed contact addressed by LID only (no phone number) is answered; a stranger by LID only gets a pairing code', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h);
    try {
      await ready(r);
      await sleep(300); // the allowlist is resolved to LIDs when the connection opens
      r.server.deliver(r.server.fromContact(MALLORY.e164, { text: 'status', addressing: 'lid-only' }));
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'tasks', addressing: 'lid-only' }));
      await r.server.waitSent((s) => s.length >= 2, 10000, 'the answer to Alice');
      await sleep(800);
      assert.deepEqual(r.server.sent.filter((s) => s.chatId === `${ALICE.lid}@lid`).map((s) => [s.chatId, s.text]), [[`${ALICE.lid}@lid`, 'Tasks: hi, slow']]);
      const mallory = r.server.sent.filter((s) => s.chatId === `${MALLORY.lid}@lid`);
      assert.equal(mallory.length, 1);
      assert.match(mallory[0]!.text, /pair [A-Z2-9]{6}/);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });
});

describe('the session folder (creds.json) with the in-memory server stand-in', () => {
  /** A transport alone (no relay), linked once, then closed: leaves a session in dir. */
  async function linkOnce(server: InMemoryWhatsAppServer, dir: string, extra: Partial<BaileysTransportOptions> = {}): Promise<{ t: BaileysTransport; reporter: MemoryReporter; device: InMemoryLinkedDevice; qrs: number }> {
    const device = server.device();
    const reporter = new MemoryReporter();
    const t = new BaileysTransport({
      authDir: dir, reporter, relink: false, printQr: false, makeSocket: device.makeSocket, reconnectInitialMs: 100,
      fetchVersion: () => Promise.reject(new Error('no network in the tests')), ...extra,
    });
    const out = { t, reporter, device, qrs: 0 };
    t.on('qr', () => { out.qrs++; });
    await t.start();
    await until('open', () => device.current?.state === 'open');
    return out;
  }
  const registrationId = (file: string): number => (JSON.parse(readFileSync(file, 'utf8')) as { registrationId: number }).registrationId;

  test('--relink deletes only the library\'s own files in the auth folder', async () => {
    const server = new InMemoryWhatsAppServer(OWNER);
    const dir = path.join(tempDir('cw-auth-'), 'auth');
    const first = await linkOnce(server, dir);
    await first.t.close();
    for (const f of ['session-15550000002.0.json', 'pre-key-1.json', 'app-state-sync-key-AAAAAB.json', 'sender-key-120363@g.us--15550000002--0.json', 'lid-mapping-15550000002.json']) {
      writeFileSync(path.join(dir, f), '{}');
    }
    // Not Baileys': a user who pointed --auth-dir at a folder with other things in it.
    writeFileSync(path.join(dir, 'notify.json'), '{}');
    writeFileSync(path.join(dir, 'whatsapp.token'), 'secret');
    mkdirSync(path.join(dir, 'notes'));
    writeFileSync(path.join(dir, 'notes', 'todo.txt'), 'x');
    const second = await linkOnce(server, dir, { relink: true });
    try {
      assert.equal(second.qrs, 1, 'linked anew');
      const left = readdirSync(dir).sort();
      assert.ok(left.includes('notify.json') && left.includes('whatsapp.token') && left.includes('notes'), JSON.stringify(left));
      assert.equal(readFileSync(path.join(dir, 'notes', 'todo.txt'), 'utf8'), 'x');
      for (const f of left) assert.doesNotMatch(f, /^(session|pre-key|app-state-sync-key|sender-key|lid-mapping)-/, f);
    } finally {
      await second.t.close();
    }
  });

  test('a truncated creds.json (a crash while writing) is restored from the backup: same identity, no new QR', async () => {
    const server = new InMemoryWhatsAppServer(OWNER);
    const dir = path.join(tempDir('cw-auth-'), 'auth');
    const first = await linkOnce(server, dir);
    await first.t.close();
    const creds = path.join(dir, 'creds.json');
    const id = registrationId(creds);
    copyFileSync(creds, path.join(dir, 'creds.json.bak'));
    writeFileSync(creds, readFileSync(creds, 'utf8').slice(0, 40));
    const second = await linkOnce(server, dir);
    try {
      assert.equal(second.qrs, 0, 'no new link');
      assert.equal(second.device.current!.config.auth.creds.registrationId, id, 'the same identity');
      assert.ok(second.reporter.logs.some((l) => l.level === 'warn' && /creds\.json .*damaged.*creds\.json\.bak/.test(l.message)), JSON.stringify(second.reporter.logs));
    } finally {
      await second.t.close();
    }
  });

  test('a damaged creds.json without a backup stops with a clear error instead of a new identity', async () => {
    const server = new InMemoryWhatsAppServer(OWNER);
    const dir = path.join(tempDir('cw-auth-'), 'auth');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'creds.json'), '{"noiseKey":{"private":{"type":"Buf');
    const device = server.device();
    const t = new BaileysTransport({ authDir: dir, reporter: new MemoryReporter(), relink: false, printQr: false, makeSocket: device.makeSocket, fetchVersion: () => Promise.reject(new Error('offline')) });
    try {
      await assert.rejects(t.start(), /WhatsApp session in .* is damaged .*--relink/);
      assert.equal(device.sockets.length, 0, 'no connection with a new identity');
      assert.equal(readFileSync(path.join(dir, 'creds.json'), 'utf8'), '{"noiseKey":{"private":{"type":"Buf', 'left as it was');
    } finally {
      await t.close();
    }
  });

  test('saving keeps a backup; a failed save is logged, not a crash', async () => {
    const server = new InMemoryWhatsAppServer(OWNER);
    const dir = path.join(tempDir('cw-auth-'), 'auth');
    const rejections: unknown[] = [];
    const onRejection = (e: unknown): void => { rejections.push(e); };
    process.on('unhandledRejection', onRejection);
    const first = await linkOnce(server, dir);
    try {
      first.device.current!.emit('creds.update', {});
      await until('a backup', () => existsSync(path.join(dir, 'creds.json.bak')));
      await sleep(100);
      assert.equal(registrationId(path.join(dir, 'creds.json.bak')), registrationId(path.join(dir, 'creds.json')));
      // The folder goes away (a full or failing disk): saving fails.
      rmSync(dir, { recursive: true, force: true });
      writeFileSync(dir, 'not a folder');
      first.device.current!.emit('creds.update', {});
      await until('the error', () => first.reporter.logs.some((l) => l.level === 'error' && /cannot save the WhatsApp session/.test(l.message)), 3000, undefined);
      await sleep(200);
      assert.deepEqual(rejections, []);
    } finally {
      process.off('unhandledRejection', onRejection);
      await first.t.close();
    }
  });
});

describe('two bridges on one account (in-memory server stand-in with two linked devices)', () => {
  test('they do not answer each other in the self chat: the bridge\'s messages are marked and marked ones ignored', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const server = new InMemoryWhatsAppServer(OWNER, { contacts: [ALICE] });
    const a = await rig(h, { server });
    const b = await rig(h, { server });
    try {
      await ready(a);
      await ready(b);
      server.deliver(server.fromPhone({ text: 'tasks' }));
      await server.waitSent((s) => s.length >= 2, 10000, 'each bridge answers the owner once');
      await sleep(2000);
      assert.equal(server.sent.length, 2, `no ping-pong: ${JSON.stringify(server.sent.map((s) => [s.device, s.text.slice(0, 40)]))}`);
      assert.deepEqual(server.sent.map((s) => s.text), ['Tasks: hi, slow', 'Tasks: hi, slow']);
    } finally {
      await a.bridge.stop();
      await b.bridge.stop();
      await h.stop();
    }
  });
});

describe('liveness on the in-memory server stand-in', () => {
  test('a connection that looks open but delivers nothing is detected, shown in the status, and replaced', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(h, { transport: { livenessSilenceMs: 300, livenessTimeoutMs: 300 } });
    try {
      await ready(r);
      const sockets = r.device.sockets.length;
      r.device.current!.deaf = true; // no close, no messages, no answers
      r.server.deliver(r.server.fromContact(ALICE.e164, { text: 'tasks' }));
      await r.server.waitSent((s) => s.some(to(ALICE_JID)), 5000, 'the answer on a new connection');
      assert.ok(r.device.sockets.length > sockets, 'a new connection');
      const stale = r.reporter.events.find((e) => e.type === 'status' && e.data.whatsapp === 'close' && e.data.reason === 'stale');
      assert.ok(stale, JSON.stringify(r.reporter.events.filter((e) => e.type === 'status')));
      assert.equal(stale.data.willReconnect, true);
      assert.ok(r.reporter.logs.some((l) => l.level === 'warn' && /looks connected but answered nothing/.test(l.message)), JSON.stringify(r.reporter.logs));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });
});
