/**
 * The real Baileys adapter (BaileysTransport: upserts, reconnects, the
 * session folder) and the relay, against the REAL companion-helper binary.
 * WhatsApp's servers are stood in by InMemoryWhatsAppServer (the socket
 * Baileys would give, with messages shaped as Baileys' decoder makes them).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BaileysTransport } from '../src/baileys.js';
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
    reconnectInitialMs: 100, reconnectMaxMs: 1000, ...opts.transport,
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
});
