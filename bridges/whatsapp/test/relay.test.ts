/**
 * The relay against the REAL companion-helper binary over real WebSockets.
 * Only WhatsApp is stubbed, by InMemoryWhatsAppTransport.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startBridge } from '../src/bridge.js';
import type { Bridge, BridgeTuning } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import type { FakeSent } from '../src/memoryTransport.js';
import { OFFLINE, SLOW_DOWN, TEXT_ONLY } from '../src/relay.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, commit, gitRepo, ServedHelper, sleep } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';
const MALLORY = '+15550000099';

const TASKS = {
  tasks: {
    hi: { command: 'sh', args: ['-c', 'echo hello from task'] },
  },
};

// Each bridge keeps its state (pairing.json, notify.json) in its own temp folder.
const stateDirs: string[] = [];
after(() => { for (const d of stateDirs) rmSync(d, { recursive: true, force: true }); });

function config(helpers: { h: ServedHelper; tokenFile: string; name?: string }[], extra: Partial<Config> = {}): Config {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'cw-relay-'));
  stateDirs.push(stateDir);
  return {
    workspaces: helpers.map(({ h, tokenFile, name }, i) => ({ name: name ?? `ws${i + 1}`, url: h.url, tokenFile, workspaceId: h.workspaceId })),
    allow: [ALICE],
    groups: [],
    authDir: '/nonexistent',
    stateDir,
    json: false,
    relink: false,
    perSenderPerMinute: 10,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
    ...extra,
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

/** The chat-mode answer to text, straight from the helper (for comparison). */
async function direct(h: ServedHelper, text: string): Promise<string[]> {
  const ws = new WebSocket(h.url);
  const parts: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('open', () => { ws.send(JSON.stringify({ type: 'auth', id: 'a', data: { token: h.token(), workspaceId: h.workspaceId } })); });
      ws.on('message', (d: Buffer) => {
        const m = JSON.parse(d.toString()) as { type: string; id: string; data: { text: string; part: number; parts: number } };
        if (m.type === 'auth_response') ws.send(JSON.stringify({ type: 'chat', id: 'x', data: { text } }));
        if (m.type === 'chat_reply' && m.id === 'x') {
          parts[m.data.part - 1] = m.data.text;
          if (Object.keys(parts).length === m.data.parts) resolve();
        }
      });
    });
  } finally { ws.close(); }
  return parts;
}

after(() => { cleanupAll(); });

describe('relay with the real helper', () => {
  test('allowlist: an allowed sender gets the answer; others, unlisted groups and status updates are ignored', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      r.wa.inject({ from: MALLORY, text: 'status' });
      r.wa.inject({ from: ALICE, text: 'status', group: '12036304@g.us' });
      r.wa.inject({ from: ALICE, text: 'status', statusBroadcast: true });
      r.wa.inject({ from: OWNER, text: 'status', group: '12036304@g.us' });
      // Sent ten minutes ago (delivered late, e.g. after an outage): not run.
      r.wa.inject({ from: ALICE, text: 'run hi', timestamp: Math.floor(Date.now() / 1000) - 600 });
      r.wa.inject({ from: ALICE, text: 'status' });
      const sent = await r.wa.waitSent((s) => s.some(to(ALICE)), 10000, 'answer to Alice');
      assert.match(sent.find(to(ALICE))!.text, /^main/);
      await sleep(1500);
      // Mallory (a stranger) gets one pairing code, nothing else; the others nothing.
      assert.deepEqual(r.wa.sent.map((s) => s.chatId).sort(), [e164ToJid(MALLORY), e164ToJid(ALICE)].sort(), `only Alice answered: ${JSON.stringify(r.wa.sent)}`);
      assert.match(r.wa.sent.find(to(MALLORY))!.text, /pair [A-Z2-9]{6}/);
      const ignored = r.reporter.logs.filter((l) => l.message.startsWith('ignored message'));
      assert.ok(ignored.some((l) => l.message.includes(MALLORY) && l.message.includes('not in allowlist')));
      assert.ok(ignored.some((l) => l.message.includes('group not listed')));
      assert.ok(ignored.some((l) => l.message.includes('status broadcast')));
      assert.ok(r.reporter.logs.some((l) => l.message.startsWith('ignored stale message')));
      // The owner's "message yourself" chat commands by default.
      r.wa.inject({ selfChat: true, text: 'log 1' });
      await r.wa.waitSent((s) => s.some((x) => x.chatId === r.wa.selfChatId() && /first commit/.test(x.text)), 10000, 'self chat answer');
      // The bridge's own reply echoes back into the self chat: it must not be run as a command.
      await sleep(800);
      assert.equal(r.wa.sent.filter((x) => x.chatId === r.wa.selfChatId()).length, 1);
      // The owner's own messages in other chats are not commands.
      r.wa.inject({ from: OWNER, to: MALLORY, text: 'status' });
      await sleep(500);
      assert.equal(r.wa.sent.length, 3);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('strangers, unlisted groups and status updates are logged at debug only, with the chat id to copy', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      const group = '120363025246125486@g.us';
      r.wa.inject({ from: MALLORY, text: 'status' });
      r.wa.inject({ from: ALICE, text: 'status', group });
      r.wa.inject({ from: ALICE, text: 'status', statusBroadcast: true });
      await sleep(300);
      const ignored = r.reporter.logs.filter((l) => /^ignored message/.test(l.message));
      assert.equal(ignored.length, 3, JSON.stringify(r.reporter.logs));
      for (const l of ignored) assert.equal(l.level, 'debug', l.message);
      assert.ok(ignored.some((l) => l.message.includes(`in ${group}`) && l.message.includes('group not listed')), JSON.stringify(ignored));
      assert.ok(ignored.some((l) => l.message.includes(`in ${e164ToJid(MALLORY)}`) && l.message.includes(MALLORY)), JSON.stringify(ignored));
      assert.ok(!r.reporter.logs.some((l) => l.level !== 'debug' && (l.message.includes(MALLORY.slice(1)) || l.message.includes('status@broadcast'))));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a listed group is relayed', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const group = '120363000000000001@g.us';
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], { groups: [group] }));
    try {
      await ready(r);
      r.wa.inject({ from: MALLORY, text: 'tasks', group });
      const sent = await r.wa.waitSent((s) => s.length === 1, 10000, 'group answer');
      assert.equal(sent[0]!.chatId, group);
      assert.match(sent[0]!.text, /hi/);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('in a listed group, photos, stickers and voice notes are never answered ("Text commands only." is for direct chats)', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const group = '120363000000000001@g.us';
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], { groups: [group] }));
    try {
      await ready(r);
      r.wa.inject({ from: MALLORY, kind: 'image', text: null, group });
      r.wa.inject({ from: ALICE, kind: 'sticker', text: null, group });
      r.wa.inject({ from: ALICE, kind: 'audio', text: null, group });
      r.wa.inject({ from: ALICE, text: 'tasks', group });
      const sent = await r.wa.waitSent((s) => s.length >= 1, 10000, 'group answer');
      await sleep(800);
      assert.deepEqual(sent.map((s) => [s.chatId, s.text]), [[group, 'Tasks: hi']]);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('multi-part replies arrive complete and in order; replies keep the order of the messages', async () => {
    const repo = gitRepo('main');
    // 60 commits with long summaries: "log 60" needs several 4096-character parts.
    for (let i = 0; i < 60; i++) commit(repo, `change ${i}: ${'a rather long commit summary that goes on and on '.repeat(3)}`);
    const h = new ServedHelper(repo, TASKS);
    await h.start();
    const expected = await direct(h, 'log 60');
    assert.ok(expected.length > 1, `log 60 should need several parts, got ${expected.length}`);
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      r.wa.sendDelayMs = 15;
      r.wa.inject({ from: ALICE, text: 'log 60' });
      r.wa.inject({ from: ALICE, text: 'log 1' });
      r.wa.inject({ from: ALICE, text: 'tasks' });
      r.wa.inject({ from: ALICE, text: 'run hi' });
      r.wa.inject({ from: ALICE, text: 'help' });
      const n = expected.length;
      const sent = await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= n + 5, 20000, 'all replies');
      const texts = sent.filter(to(ALICE)).map((s) => s.text);
      // Numbered "(i/n)" from the helper's part/parts (a prefix; the helper's parts are at most 4096 characters).
      assert.deepEqual(texts.slice(0, n), expected.map((p, i) => `(${i + 1}/${n})${p.startsWith('```') ? '\n' : ' '}${p}`), 'log parts in order, numbered, each one WhatsApp message');
      for (const t of texts) assert.ok(Array.from(t.replace(/^\(\d+\/\d+\)[ \n]/, '')).length <= 4096);
      assert.match(texts[n]!, /change 59/);
      assert.doesNotMatch(texts[n]!, /change 58/);
      assert.match(texts[n + 1]!, /Tasks: hi/);
      assert.match(texts[n + 2]!, /hi started/);
      // The task's end is a second reply group with the same id: it comes after its start.
      const finished = texts.findIndex((t) => /hi finished: exit 0/.test(t));
      assert.ok(finished > n + 2, `finish after start: ${JSON.stringify(texts.slice(n))}`);
      assert.match(texts[finished]!, /hello from task/);
      assert.ok(texts.slice(n + 3).some((t) => /status/.test(t) && /help|log/.test(t)), 'help answered');
      await sleep(500);
      assert.equal(r.wa.sent.filter(to(ALICE)).length, n + 5, 'nothing extra');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('per-sender rate limit: "Slow down" once, then silence', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], { perSenderPerMinute: 3 }));
    try {
      await ready(r);
      for (let i = 0; i < 7; i++) r.wa.inject({ from: ALICE, text: `xyzzy${i}` });
      r.wa.inject({ from: OWNER, selfChat: true, text: 'xyzzy-owner' });
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 4, 10000, 'three answers and a warning');
      await sleep(800);
      const texts = r.wa.sent.filter(to(ALICE)).map((s) => s.text);
      assert.equal(texts.length, 4, JSON.stringify(texts));
      for (let i = 0; i < 3; i++) assert.match(texts[i]!, new RegExp(`xyzzy${i}`));
      assert.equal(texts[3], SLOW_DOWN);
      // Another sender has its own budget.
      assert.ok(r.wa.sent.some((s) => s.chatId === r.wa.selfChatId() && /xyzzy-owner/.test(s.text)));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('non-text messages get "Text commands only."', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      r.wa.inject({ from: ALICE, kind: 'image', text: null });
      r.wa.inject({ from: ALICE, kind: 'image', text: 'status' });
      r.wa.inject({ from: ALICE, kind: 'sticker', text: null });
      r.wa.inject({ from: ALICE, kind: 'audio', text: null });
      r.wa.inject({ from: MALLORY, kind: 'image', text: null });
      await r.wa.waitSent((s) => s.length >= 5, 10000, 'four answers and a pairing code');
      await sleep(500);
      // The stranger gets a pairing code (not "Text commands only.").
      assert.deepEqual(r.wa.sent.filter(to(ALICE)).map((s) => [s.chatId, s.text]), Array(4).fill([e164ToJid(ALICE), TEXT_ONLY]));
      assert.match(r.wa.sent.find(to(MALLORY))!.text, /pair [A-Z2-9]{6}/);
      assert.equal(r.wa.sent.length, 5);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('helper restart: "Workspace offline." meanwhile, reconnect, nothing replayed', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      const port = h.port;
      await h.stop();
      const deadline = Date.now() + 5000;
      while (r.bridge.helpers[0]!.isReady() && Date.now() < deadline) await sleep(20);
      r.wa.inject({ from: ALICE, text: 'log 1' });
      await r.wa.waitSent((s) => s.length === 1, 5000, 'offline answer');
      assert.equal(r.wa.sent[0]!.text, OFFLINE);
      await sleep(600); // a reconnect attempt or two fail
      await h.start(port);
      await ready(r);
      r.wa.inject({ from: ALICE, text: 'tasks' });
      await r.wa.waitSent((s) => s.length >= 2, 10000, 'answer after restart');
      await sleep(1000);
      assert.deepEqual(r.wa.sent.map((s) => s.text), [OFFLINE, 'Tasks: hi'], 'the offline message is not replayed');
      assert.ok(r.reporter.logs.some((l) => /helper connection closed \(1001/.test(l.message)), 'close 1001 logged');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('token rejected: one clear log line, a message to the owner, recovery when the token file changes', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const other = new ServedHelper(gitRepo('main'), TASKS); // another secret
    await other.start();
    const tokenFile = other.tokenFile();
    await other.stop();
    const r = await rig(config([{ h, tokenFile }]));
    try {
      await r.wa.waitSent((s) => s.length >= 1, 10000, 'owner message');
      assert.equal(r.wa.sent[0]!.chatId, r.wa.selfChatId());
      assert.match(r.wa.sent[0]!.text, /refused the bridge's token \((AUTH_INVALID|WORKSPACE_MISMATCH)\)/);
      r.wa.inject({ from: ALICE, text: 'status' });
      await r.wa.waitSent((s) => s.length >= 2, 5000, 'offline answer');
      assert.equal(r.wa.sent[1]!.text, OFFLINE);
      await sleep(1000);
      const lines = r.reporter.logs.filter((l) => l.level === 'error' && /refused the token/.test(l.message));
      assert.equal(lines.length, 1, JSON.stringify(r.reporter.logs));
      assert.equal(r.wa.sent.length, 2, 'the owner is told once');
      assert.ok(r.reporter.events.some((e) => e.type === 'error' && e.data.code !== undefined));
      // A fresh token in the file: the bridge authenticates again on its own.
      writeFileSync(tokenFile, h.token());
      await ready(r);
      r.wa.inject({ from: ALICE, text: 'tasks' });
      await r.wa.waitSent((s) => s.length >= 3, 10000, 'answer with the new token');
      assert.equal(r.wa.sent[2]!.text, 'Tasks: hi');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('token refreshed on a live session (re-auth without reconnecting)', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const tokenFile = h.tokenFile();
    const r = await rig(config([{ h, tokenFile }]));
    try {
      await ready(r);
      const connects = r.bridge.helpers[0]!.stats.connects;
      await sleep(1100); // a token with another iat
      writeFileSync(tokenFile, h.token());
      const deadline = Date.now() + 5000;
      while (!r.reporter.logs.some((l) => /session token refreshed/.test(l.message))) {
        if (Date.now() > deadline) throw new Error(`no refresh: ${JSON.stringify(r.reporter.logs)}`);
        await sleep(20);
      }
      assert.equal(r.bridge.helpers[0]!.stats.connects, connects);
      r.wa.inject({ from: ALICE, text: 'tasks' });
      await r.wa.waitSent((s) => s.length === 1, 5000, 'answer');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('heartbeat: an idle bridge answers the helper\'s PINGs and is not closed 4002', async () => {
    const h = new ServedHelper(gitRepo('main'), { ...TASKS, heartbeat: { intervalSeconds: 1, timeoutSeconds: 2 } });
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      await sleep(5000); // several heartbeat timeouts' worth of idling
      assert.equal(r.bridge.helpers[0]!.stats.connects, 1, `reconnected: ${JSON.stringify(r.reporter.logs)}`);
      assert.ok(r.bridge.helpers[0]!.isReady());
      r.wa.inject({ from: ALICE, text: 'tasks' });
      await r.wa.waitSent((s) => s.length === 1, 5000, 'answer');
      assert.equal(r.wa.sent[0]!.text, 'Tasks: hi');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a burst of 100 messages: each answered exactly once, in order, despite the helper\'s RATE_LIMITED', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS); // commandsPerSecond: the default 20
    await h.start();
    // Unpaced sends, so the helper refuses some with RATE_LIMITED and the bridge must retry.
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], { perSenderPerMinute: 1000, helperSendsPerSecond: 0 }));
    try {
      await ready(r);
      for (let i = 0; i < 100; i++) r.wa.inject({ from: ALICE, text: `xyzzy${i}` });
      await r.wa.waitSent((s) => s.length >= 100, 60000, '100 answers');
      await sleep(1000);
      const texts = r.wa.sent.map((s) => s.text);
      assert.equal(texts.length, 100);
      texts.forEach((t, i) => { assert.match(t, new RegExp(`"xyzzy${i}"`), `answer ${i}: ${t}`); });
      assert.ok(r.bridge.helpers[0]!.stats.rateLimited > 0, 'the helper did refuse some (RATE_LIMITED path exercised)');
      assert.equal(r.bridge.helpers[0]!.stats.connects, 1, 'never closed for abuse');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a burst of 100 with default pacing: no RATE_LIMITED at all', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }], { perSenderPerMinute: 1000 }));
    try {
      await ready(r);
      for (let i = 0; i < 100; i++) r.wa.inject({ from: ALICE, text: `xyzzy${i}` });
      await r.wa.waitSent((s) => s.length >= 100, 30000, '100 answers');
      await sleep(500);
      assert.deepEqual(r.wa.sent.map((s) => /"(xyzzy\d+)"/.exec(s.text)?.[1]), Array.from({ length: 100 }, (_, i) => `xyzzy${i}`));
      assert.equal(r.bridge.helpers[0]!.stats.rateLimited, 0);
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('@name picks a workspace among two helpers; plain commands go to the first', async () => {
    const a = new ServedHelper(gitRepo('main'), TASKS);
    const b = new ServedHelper(gitRepo('feature'), { tasks: { lint: { command: 'true', args: [] } } });
    await a.start();
    await b.start();
    const r = await rig(config([{ h: a, tokenFile: a.tokenFile(), name: 'app' }, { h: b, tokenFile: b.tokenFile(), name: 'lib' }]));
    try {
      await ready(r);
      r.wa.inject({ from: ALICE, text: 'status' });
      r.wa.inject({ from: ALICE, text: '@lib status' });
      r.wa.inject({ from: ALICE, text: '@LIB tasks' });
      r.wa.inject({ from: ALICE, text: '@app tasks' });
      r.wa.inject({ from: ALICE, text: '@nope status' });
      await r.wa.waitSent((s) => s.length >= 5, 10000, 'five answers');
      const texts = r.wa.sent.map((s) => s.text);
      assert.match(texts[0]!, /^main/);
      assert.match(texts[1]!, /^\[lib\] feature/);
      assert.equal(texts[2], '[lib] Tasks: lint');
      assert.equal(texts[3], 'Tasks: hi');
      assert.match(texts[4]!, /Unknown workspace "nope"\. Workspaces: @app, @lib/);
      // One workspace offline does not take the other down.
      await b.stop();
      const deadline = Date.now() + 5000;
      while (r.bridge.helpers[1]!.isReady() && Date.now() < deadline) await sleep(20);
      r.wa.inject({ from: ALICE, text: '@lib tasks' });
      r.wa.inject({ from: ALICE, text: 'tasks' });
      await r.wa.waitSent((s) => s.length >= 7, 10000, 'two more');
      assert.deepEqual(r.wa.sent.slice(5).map((s) => s.text), [OFFLINE, 'Tasks: hi']);
    } finally {
      await r.bridge.stop();
      await a.stop();
      await b.stop();
    }
  });

  test('replies held while WhatsApp is away are bounded per chat and dropped when too old', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]), { maxQueuedRepliesPerChat: 2, replyHoldMs: 1500 });
    try {
      await ready(r);
      r.wa.drop('other');
      for (let i = 0; i < 3; i++) r.wa.inject({ from: ALICE, text: `xyzzy${i}` });
      await sleep(600);
      await r.wa.start(); // back within the hold: the two held replies go out, the third was over the bound
      await r.wa.waitSent((s) => s.length >= 2, 5000, 'two held replies');
      await sleep(300);
      assert.deepEqual(r.wa.sent.map((s) => /"(xyzzy\d)"/.exec(s.text)?.[1]), ['xyzzy0', 'xyzzy1']);
      assert.ok(r.reporter.logs.some((l) => /2 replies already wait for .*: one more dropped/.test(l.message)));
      r.wa.drop('other');
      r.wa.inject({ from: ALICE, text: 'xyzzy3' });
      await sleep(2000); // longer than the hold
      await r.wa.start();
      await sleep(500);
      assert.equal(r.wa.sent.length, 2, 'the old reply was dropped');
      assert.ok(r.reporter.logs.some((l) => /was not sent: WhatsApp was not connected for 2 s/.test(l.message)), JSON.stringify(r.reporter.logs));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('graceful stop sends the queued replies first', async () => {
    const h = new ServedHelper(gitRepo('main'), TASKS);
    await h.start();
    const r = await rig(config([{ h, tokenFile: h.tokenFile() }]));
    try {
      await ready(r);
      r.wa.sendDelayMs = 50;
      for (let i = 0; i < 5; i++) r.wa.inject({ from: ALICE, text: `xyzzy${i}` });
      await r.bridge.stop(5000);
      assert.equal(r.wa.sent.length, 5);
      // After stopping, nothing is taken any more.
      r.wa.inject({ from: ALICE, text: 'status' });
      await sleep(300);
      assert.equal(r.wa.sent.length, 5);
      assert.equal(r.bridge.helpers[0]!.state, 'stopped');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });
});
