/**
 * Notifications (`notify on|off`) against the REAL companion-helper binary:
 * the bridge subscribes to its events and tells the chats that asked.
 * Only WhatsApp is stubbed, by InMemoryWhatsAppTransport.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { HelperClient } from '../src/helperClient.js';
import { notifyStateFile, startBridge } from '../src/bridge.js';
import type { Bridge, BridgeTuning } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import type { FakeSent } from '../src/memoryTransport.js';
import { formatBatch, formatEvent, MISSED, NOTIFY_OFF } from '../src/notify.js';
import { notifyOnText } from '../src/relay.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, gitRepo, ServedHelper, sleep, tempDir } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';
const BOB = '+15550000003';

const TASKS = {
  tasks: {
    ok: { command: 'sh', args: ['-c', 'echo all good'] },
    bad: { command: 'sh', args: ['-c', 'for i in 1 2 3 4 5 6 7; do echo line$i; done; exit 2'] },
    quick: { command: 'sh', args: ['-c', 'sleep 0.2'] },
  },
  limits: { maxConcurrentTasks: 8 },
};

function config(helpers: { h: ServedHelper; tokenFile: string; name?: string }[], stateDir: string): Config {
  return {
    workspaces: helpers.map(({ h, tokenFile, name }, i) => ({ name: name ?? `ws${i + 1}`, url: h.url, tokenFile, workspaceId: h.workspaceId })),
    allow: [ALICE, BOB],
    groups: [],
    authDir: path.join(stateDir, 'whatsapp-auth'),
    json: false,
    relink: false,
    perSenderPerMinute: 100,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
  };
}

interface Rig { bridge: Bridge; wa: InMemoryWhatsAppTransport; reporter: MemoryReporter }

async function rig(cfg: Config, tuning: BridgeTuning = {}): Promise<Rig> {
  const wa = new InMemoryWhatsAppTransport(OWNER);
  const reporter = new MemoryReporter();
  const bridge = await startBridge(cfg, wa, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100, ...tuning });
  return { bridge, wa, reporter };
}

async function ready(r: Rig, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!r.bridge.helpers.every((h) => h.isReady())) {
    if (Date.now() > deadline) throw new Error(`helpers not ready: ${r.bridge.helpers.map((h) => h.state).join(',')} ${JSON.stringify(r.reporter.logs)}`);
    await sleep(20);
  }
}

const to = (n: string) => (s: FakeSent) => s.chatId === e164ToJid(n);
const textsTo = (r: Rig, n: string): string[] => r.wa.sent.filter(to(n)).map((s) => s.text);

/** Runs tasks from a second client (concurrently) and waits for all of them to end. */
async function runTasks(h: ServedHelper, names: string[]): Promise<void> {
  const ws = new WebSocket(h.url);
  try {
    await new Promise<void>((resolve, reject) => {
      let ended = 0;
      ws.on('error', reject);
      ws.on('open', () => { ws.send(JSON.stringify({ type: 'auth', id: 'a', data: { token: h.token('read,run', 'ci'), workspaceId: h.workspaceId } })); });
      ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString()) as { type: string; id: string; data: { success?: boolean; error?: unknown } };
        if (m.type === 'auth_response') names.forEach((name, i) => { ws.send(JSON.stringify({ type: 'command', id: `t${i}`, data: { name: 'task.run', args: { name } } })); });
        if (m.type === 'command_response' && m.data.success === false) reject(new Error(`task.run failed: ${JSON.stringify(m.data.error)}`));
        if (m.type === 'stream_end' && ++ended === names.length) resolve();
      });
    });
  } finally { ws.close(); }
}

/** Turns notifications on from a chat and waits for the confirmation. */
async function notifyOn(r: Rig, from: string, text = 'notify on', label = 'ws1'): Promise<void> {
  const before = textsTo(r, from).length;
  r.wa.inject({ from, text });
  await r.wa.waitSent((s) => s.filter(to(from)).length > before, 5000, 'notify on confirmation');
  assert.equal(textsTo(r, from)[before], notifyOnText(label));
}

/** Waits until the bridge's subscription has been confirmed by the helper. */
async function subscribed(r: Rig, n = 1): Promise<void> {
  const deadline = Date.now() + 5000;
  while (r.reporter.logs.filter((l) => /subscribing to task\.finished, notify/.test(l.message)).length < n) {
    if (Date.now() > deadline) throw new Error(`no subscription: ${JSON.stringify(r.reporter.logs)}`);
    await sleep(20);
  }
  await sleep(200); // the helper's "subscribed" answer
}

after(() => { cleanupAll(); });

describe('notification texts', () => {
  test('task.finished and notify events as short messages', () => {
    const fin = (p: Record<string, unknown>) => formatEvent({ event: 'task.finished', seq: 1, payload: { name: 'test', id: 't1', userId: 'u', signal: null, truncated: false, timedOut: false, cancelled: false, tail: '', ...p } });
    assert.deepEqual(fin({ exitCode: 0, durationMs: 42000 }), { text: '✔ test finished: exit 0 in 42 s', detail: '' });
    const failed = fin({ exitCode: 2, durationMs: 3100, tail: 'a\nb\nc\nd\ne\nf\ng\n' })!;
    assert.equal(failed.text, '✘ test failed: exit 2 in 3.1 s');
    assert.equal(failed.detail, '\n```\nc\nd\ne\nf\ng\n```');
    assert.equal(fin({ exitCode: null, signal: 'KILL', durationMs: 500 })!.text, '✘ test killed by SIGKILL in 0.5 s');
    assert.equal(fin({ exitCode: null, signal: 'TERM', timedOut: true, durationMs: 600000 })!.text, '⏱ test timed out in 10 min (killed by SIGTERM)');
    assert.deepEqual(fin({ exitCode: null, signal: 'TERM', cancelled: true, durationMs: 1500, tail: 'x\n' }), { text: '⏹ test cancelled in 1.5 s', detail: '' });
    assert.equal(formatEvent({ event: 'notify', seq: 2, payload: { title: 'Deploy', message: 'done', level: 'info' } })!.text, '🔔 Deploy: done');
    assert.equal(formatEvent({ event: 'git.changed', seq: 3, payload: {} }), null);
    const items = Array.from({ length: 13 }, (_, i) => ({ text: `e${i}`, detail: '' }));
    assert.equal(formatBatch(items), `${items.slice(0, 10).map((i) => i.text).join('\n')}\nand 3 more`);
    assert.equal(formatBatch(items.slice(0, 2), 5), 'e0\ne1\nand 5 more');
  });
});

describe('helper client', () => {
  test('an unsolicited chat_reply carrying an event (the helper\'s own chat notify) is ignored; other notices pass', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => { wss.once('listening', () => { r(); }); });
    wss.on('connection', (sock) => {
      sock.on('message', () => {
        sock.send(JSON.stringify({ type: 'auth_response', id: 'auth', data: { success: true, heartbeatIntervalMs: 25000 } }));
        sock.send(JSON.stringify({ type: 'chat_reply', data: { text: '✘ test failed: exit 2', part: 1, parts: 1, event: 7 } }));
        sock.send(JSON.stringify({ type: 'chat_reply', data: { text: 'a notice', part: 1, parts: 1 } }));
      });
    });
    const reporter = new MemoryReporter();
    const c = new HelperClient({ name: 'x', url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`, token: 't', reporter });
    const notices: string[] = [];
    c.on('notice', (t) => { notices.push(t); });
    try {
      c.start();
      const deadline = Date.now() + 5000;
      while (notices.length === 0 && Date.now() < deadline) await sleep(20);
      await sleep(100);
      assert.deepEqual(notices, ['a notice']);
      assert.ok(reporter.logs.some((l) => /ignored an unsolicited chat notification \(event 7\)/.test(l.message)));
    } finally {
      await c.stop();
      await new Promise<void>((r) => { wss.close(() => { r(); }); });
    }
  });
});

describe('notifications with the real helper', () => {
  test('notify on: one message per task end (exit code, last lines on failure); no duplicate for a chat run; notify off stops them', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const stateDir = tempDir('cw-state-');
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], stateDir), { coalesceMs: 500 });
    try {
      await ready(r);
      await notifyOn(r, ALICE, 'Notify ON');
      await subscribed(r);
      const file = notifyStateFile(config([{ h, tokenFile: '' }], stateDir));
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { workspaces: Record<string, { chats: string[] }> }).workspaces.ws1!.chats, [e164ToJid(ALICE)]);

      await runTasks(h, ['ok']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 2, 5000, 'ok notification');
      assert.match(textsTo(r, ALICE)[1]!, /^✔ ok finished: exit 0 in \d+\.\d s$/);

      await runTasks(h, ['bad']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 3, 5000, 'bad notification');
      const bad = textsTo(r, ALICE)[2]!;
      assert.match(bad, /^✘ bad failed: exit 2 in /);
      assert.match(bad, /```\nline3\nline4\nline5\nline6\nline7\n```$/);
      assert.doesNotMatch(bad, /line2/);

      // A task run from the chat itself: its end is answered by the run, not notified again.
      r.wa.inject({ from: ALICE, text: 'run ok' });
      await r.wa.waitSent((s) => s.filter(to(ALICE)).slice(3).some((x) => /ok finished: exit 0/.test(x.text)), 10000, 'run reply');
      await sleep(1500);
      const afterRun = textsTo(r, ALICE).slice(3);
      assert.equal(afterRun.filter((t) => /ok finished/.test(t)).length, 1, JSON.stringify(afterRun));
      assert.equal(afterRun.length, 2, `started + finished only: ${JSON.stringify(afterRun)}`);

      // The helper's own chat notifications never reach the chat (the bridge never asks for them).
      assert.ok(!r.wa.sent.some((s) => /Notifications on: you will hear/.test(s.text)));

      r.wa.inject({ from: ALICE, text: 'notify off' });
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 6, 5000, 'notify off confirmation');
      assert.equal(textsTo(r, ALICE)[5], NOTIFY_OFF);
      await sleep(300);
      await runTasks(h, ['ok']);
      await sleep(1500);
      assert.equal(textsTo(r, ALICE).length, 6, `nothing after notify off: ${JSON.stringify(textsTo(r, ALICE))}`);
      assert.equal(r.wa.sent.length, 6, 'nobody else was told');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a burst of 5 task ends is one message', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], tempDir('cw-state-'))); // default 2 s window
    try {
      await ready(r);
      await notifyOn(r, ALICE);
      await notifyOn(r, BOB);
      await subscribed(r);
      await runTasks(h, ['quick', 'quick', 'quick', 'quick', 'quick']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 2 && s.filter(to(BOB)).length >= 2, 8000, 'coalesced notifications');
      await sleep(2500);
      for (const who of [ALICE, BOB]) {
        const texts = textsTo(r, who);
        assert.equal(texts.length, 2, JSON.stringify(texts));
        const lines = texts[1]!.split('\n');
        assert.equal(lines.length, 5, texts[1]);
        for (const l of lines) assert.match(l, /^✔ quick finished: exit 0 in /);
      }
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('bridge restart: an event that happened meanwhile is delivered exactly once; another restart delivers nothing', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const stateDir = tempDir('cw-state-');
    const cfg = config([{ h, tokenFile: h.tokenFile() }], stateDir);
    let r = await rig(cfg, { coalesceMs: 300 });
    try {
      await ready(r);
      await notifyOn(r, ALICE);
      await subscribed(r);
      await r.bridge.stop();
      const seqBefore = (JSON.parse(readFileSync(notifyStateFile(cfg), 'utf8')) as { workspaces: { ws1: { lastSeq: number } } }).workspaces.ws1.lastSeq;
      assert.equal(typeof seqBefore, 'number');

      await runTasks(h, ['bad']); // the bridge is not running

      r = await rig(cfg, { coalesceMs: 300 });
      await ready(r);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 1, 5000, 'missed event');
      await sleep(1000);
      assert.equal(textsTo(r, ALICE).length, 1, JSON.stringify(textsTo(r, ALICE)));
      assert.match(textsTo(r, ALICE)[0]!, /^✘ bad failed: exit 2/);
      await r.bridge.stop();

      r = await rig(cfg, { coalesceMs: 300 });
      await ready(r);
      await subscribed(r);
      await sleep(1000);
      assert.deepEqual(textsTo(r, ALICE), [], 'nothing twice');
      // Still on after two restarts.
      await runTasks(h, ['ok']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 1, 5000, 'new event');
      assert.match(textsTo(r, ALICE)[0]!, /^✔ ok finished/);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('helper restart (new numbering): "missed" once, then new events are delivered', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], tempDir('cw-state-')), { coalesceMs: 300 });
    try {
      await ready(r);
      await notifyOn(r, ALICE);
      await subscribed(r);
      await runTasks(h, ['ok']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 2, 5000, 'first event');
      const port = h.port;
      await h.stop();
      await sleep(300);
      await h.start(port);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === MISSED), 10000, 'resync message');
      await ready(r);
      await runTasks(h, ['bad']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => /bad failed/.test(x.text)), 5000, 'event after the restart');
      await sleep(800);
      const texts = textsTo(r, ALICE);
      assert.equal(texts.filter((t) => t === MISSED).length, 1, JSON.stringify(texts));
      assert.equal(texts.length, 4, JSON.stringify(texts));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('WhatsApp down: events are held and sent when it is back', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], tempDir('cw-state-')), { coalesceMs: 300 });
    try {
      await ready(r);
      await notifyOn(r, ALICE);
      await subscribed(r);
      r.wa.drop('other');
      await runTasks(h, ['ok', 'bad']);
      await sleep(800);
      assert.equal(textsTo(r, ALICE).length, 1);
      await r.wa.start();
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 2, 5000, 'held events');
      await sleep(800);
      const texts = textsTo(r, ALICE);
      assert.equal(texts.length, 2, JSON.stringify(texts));
      assert.match(texts[1]!, /ok finished: exit 0/);
      assert.match(texts[1]!, /bad failed: exit 2/);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('two workspaces: only the one with notifications on is heard, with its name', async () => {
    const a = new ServedHelper(gitRepo('main'), TASKS);
    const b = new ServedHelper(gitRepo('main'), TASKS);
    await a.start();
    await b.start();
    const r = await rig(config([{ h: a, tokenFile: a.tokenFile(), name: 'app' }, { h: b, tokenFile: b.tokenFile(), name: 'lib' }], tempDir('cw-state-')), { coalesceMs: 300 });
    try {
      await ready(r);
      await notifyOn(r, ALICE, '@lib notify on', 'lib');
      await subscribed(r);
      await runTasks(a, ['ok']);
      await runTasks(b, ['bad']);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 2, 5000, 'lib notification');
      await sleep(1000);
      const texts = textsTo(r, ALICE);
      assert.equal(texts.length, 2, JSON.stringify(texts));
      assert.match(texts[1]!, /^\[lib\] ✘ bad failed: exit 2/);
      // "@lib notify off" turns off lib only; then nothing is heard from either.
      r.wa.inject({ from: ALICE, text: '@lib notify off' });
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 3, 5000, 'off');
      assert.equal(textsTo(r, ALICE)[2], NOTIFY_OFF);
      await sleep(300);
      await runTasks(b, ['ok']);
      await sleep(1000);
      assert.equal(textsTo(r, ALICE).length, 3);
    } finally {
      await r.bridge.stop();
      await a.stop();
      await b.stop();
    }
  });
});
