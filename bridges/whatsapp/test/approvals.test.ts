/**
 * Approving from WhatsApp (issue 15, items 4 and 5), against the REAL
 * companion-helper binary: a task marked `confirm` waits for an approval,
 * chats with `notify on` hear of it with the exact answers, and only the
 * helper turns chat words into a decision. WhatsApp's servers are stood in
 * by InMemoryWhatsAppTransport; "phones" that ask over the WebSocket API are
 * plain `ws` clients.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startBridge } from '../src/bridge.js';
import type { Bridge, BridgeTuning } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import type { FakeSent } from '../src/memoryTransport.js';
import { clean, formatBatch, formatEvent } from '../src/notify.js';
import type { HelperEvent } from '../src/notify.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, gitRepo, ServedHelper, sleep, tempDir } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';
const BOB = '+15550000003';
const MALLORY = '+15550000004'; // not in allow: speaks only in a listed group
const GROUP = '120363000000000001@g.us';

const SETTINGS = {
  tasks: {
    deploy: { command: 'echo', args: ['deployed'], confirm: true },
    ok: { command: 'sh', args: ['-c', 'echo all good'] },
  },
  approvals: { timeoutSeconds: 300 },
  limits: { commandsPerSecond: 1000, maxConcurrentTasks: 16 },
};

const APPROVE = 'read,run,approve';

function config(h: ServedHelper, tokenFile: string, stateDir: string, url = h.url, more: Config['workspaces'] = [], groups: string[] = []): Config {
  return {
    workspaces: [{ name: 'ws1', url, tokenFile, workspaceId: h.workspaceId }, ...more],
    allow: [ALICE, BOB],
    groups,
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
  const bridge = await startBridge(cfg, wa, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100, coalesceMs: 300, ...tuning });
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

/** The message a phone sees for approval n asked by `by` (300 s to answer). */
const announcement = (n: number, by: string): string =>
  `🔐 Approval ${n}: Run task "deploy" (echo deployed)\nAsked by ${by}, 5 min left.\nReply yes ${n} · always ${n} · no ${n}`;

/** The same, with whatever time is left (an announcement delivered late counts it from its delivery). */
const announced = (n: number, by: string) => (t: string): boolean =>
  new RegExp(`^🔐 Approval ${n}: Run task "deploy" \\(echo deployed\\)\nAsked by ${by}, [1-5] min left\\.\nReply yes ${n} · always ${n} · no ${n}$`).test(t);

/** Sends text from a phone and returns the first message the bridge sends back to it after that. */
async function say(r: Rig, from: string, text: string, match: RegExp = /[\s\S]/): Promise<string> {
  const before = textsTo(r, from).length;
  r.wa.inject({ from, text });
  const sent = await r.wa.waitSent((s) => s.filter(to(from)).slice(before).some((x) => match.test(x.text)), 10000, `answer to "${text}"`);
  return sent.filter(to(from)).slice(before).find((x) => match.test(x.text))!.text;
}

/** Waits for the bridge's subscription (n times), including the approval kinds when withApprovals. */
async function subscribed(r: Rig, n = 1, withApprovals = true): Promise<void> {
  const want = withApprovals ? /subscribing to task\.finished, notify, approval\.requested, approval\.resolved/ : /subscribing to task\.finished, notify(?!, approval)/;
  const deadline = Date.now() + 5000;
  while (r.reporter.logs.filter((l) => want.test(l.message)).length < n) {
    if (Date.now() > deadline) throw new Error(`no subscription: ${JSON.stringify(r.reporter.logs.map((l) => l.message))}`);
    await sleep(20);
  }
  await sleep(200); // the helper's "subscribed" answer
}

interface WsMessage { type: string; id?: string; data: Record<string, unknown> & { event?: unknown; seq?: number; payload?: Record<string, unknown>; text?: string }; timestamp?: number }

/** A plain WebSocket client of the helper (a phone or CI using the JSON API). */
class Phone {
  readonly received: WsMessage[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.received.push(JSON.parse(d.toString()) as WsMessage);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(h: ServedHelper, scope: string, user: string): Promise<Phone> {
    const ws = new WebSocket(h.url);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve(); }); ws.once('error', reject); });
    const p = new Phone(ws);
    p.send({ type: 'auth', id: 'auth', data: { token: h.token(scope, user), workspaceId: h.workspaceId } });
    const a = await p.next((m) => m.type === 'auth_response');
    assert.equal(a.data.success, true, JSON.stringify(a));
    return p;
  }

  send(m: unknown): void { this.ws.send(JSON.stringify(m)); }

  async next(pred: (m: WsMessage) => boolean, timeoutMs = 10000, what = 'a message'): Promise<WsMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${what}: ${JSON.stringify(this.received)}`);
      await new Promise<void>((r) => { const t = setTimeout(r, 100); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Runs tasks that need no approval and waits for all of them to end. */
  async run(names: string[]): Promise<void> {
    const ids = names.map((name, i) => {
      const id = `run${Math.random().toString(36).slice(2)}-${i}`;
      this.send({ type: 'command', id, data: { name: 'task.run', args: { name } } });
      return id;
    });
    for (const id of ids) await this.next((x) => x.id === id && x.type === 'stream_end', 10000, `end of ${id}`);
  }

  /** task.run of a confirm task: returns the approval's id. */
  async ask(id: string, name = 'deploy'): Promise<number> {
    this.send({ type: 'command', id, data: { name: 'task.run', args: { name } } });
    const m = await this.next((x) => x.id === id, 10000, `answer to ${id}`);
    assert.equal(m.type, 'approval_pending', JSON.stringify(m));
    return m.data.approvalId as number;
  }

  /** The task's output once it ran, or throws if it was refused. */
  async output(id: string): Promise<string> {
    const end = await this.next((x) => x.id === id && (x.type === 'stream_end' || x.type === 'command_response'), 10000, `end of ${id}`);
    if (end.type === 'command_response') throw new Error(`refused: ${JSON.stringify(end.data)}`);
    return this.received.filter((x) => x.id === id && x.type === 'stream_chunk').map((x) => x.data.text as string).join('');
  }

  close(): void { this.ws.close(); }
}

/** A TCP relay in front of the helper whose link can be cut (and held down) to make the bridge reconnect. */
class Cable {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private down = false;
  port = 0;
  constructor(private readonly target: number) {
    this.server = net.createServer((c) => {
      if (this.down) { c.destroy(); return; }
      const u = net.connect(this.target, '127.0.0.1');
      for (const s of [c, u]) { this.sockets.add(s); s.on('close', () => { this.sockets.delete(s); }); s.on('error', () => { c.destroy(); u.destroy(); }); }
      // The helper checks the Host header of the upgrade (it must name the helper's own port).
      let first = true;
      c.on('data', (d: Buffer) => {
        u.write(first ? Buffer.from(d.toString('latin1').replace(`Host: 127.0.0.1:${this.port}`, `Host: 127.0.0.1:${this.target}`), 'latin1') : d);
        first = false;
      });
      u.pipe(c);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => { this.server.listen(0, '127.0.0.1', () => { r(); }); });
    this.port = (this.server.address() as net.AddressInfo).port;
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Cuts every connection and refuses new ones until mend(). */
  cut(): void { this.down = true; for (const s of this.sockets) s.destroy(); }
  mend(): void { this.down = false; }
  close(): Promise<void> { this.cut(); return new Promise((r) => { this.server.close(() => { r(); }); }); }
}

after(() => { cleanupAll(); });

describe('approval texts', () => {
  const requested = (p: Record<string, unknown> = {}): HelperEvent => ({
    event: 'approval.requested',
    seq: 5,
    payload: {
      approvalId: 7, kind: 'task', title: 'Run task "deploy"',
      action: { task: 'deploy', command: 'make', args: ['deploy'], cwd: '.', folder: 'app' },
      requestedBy: { userId: 'phone', sessionId: 's' }, createdAt: 1_000_000, expiresAt: 1_300_000,
      options: ['allow_once', 'allow_always', 'deny'], ...p,
    },
  });

  test('an approval reads as the helper writes it: what, who asked, time left, the exact answers', () => {
    assert.deepEqual(formatEvent(requested(), { nowMs: 1_000_000 }), {
      text: '🔐 Approval 7: Run task "deploy" (make deploy)\nAsked by phone, 5 min left.\nReply yes 7 · always 7 · no 7',
      detail: '',
    });
    assert.match(formatEvent(requested(), { nowMs: 1_000_004 })!.text, /5 min left/, 'a few ms late is still 5 min');
    assert.match(formatEvent(requested(), { nowMs: 1_250_000 })!.text, /50 s left/);
    assert.match(formatEvent(requested(), { nowMs: 1_400_000 })!.text, /expiring now/);
    // Only the decisions it offers, in the order yes, always, no.
    assert.match(formatEvent(requested({ options: ['deny', 'allow_once'] }), { nowMs: 1_000_000 })!.text, /\nReply yes 7 · no 7$/);
    // With several workspaces the answers name this one (plain words go to the first).
    assert.match(formatEvent(requested(), { nowMs: 1_000_000, route: '@lib ' })!.text, /\nReply @lib yes 7 · @lib always 7 · @lib no 7$/);
    // Untrusted text stays on its line.
    assert.match(formatEvent(requested({ requestedBy: { userId: 'eve\nReply yes 1\u202e' } }), { nowMs: 1_000_000 })!.text, /\nAsked by eve Reply yes 1\?, 5 min left\.\n/);
    assert.equal(clean('x'.repeat(70)), `${'x'.repeat(59)}…`);
    const resolved = (decision: unknown, decidedBy = 'whatsapp') => formatEvent({ event: 'approval.resolved', seq: 6, payload: { approvalId: 7, decision, decidedBy, decidedAt: 1 } })!.text;
    assert.equal(resolved('allow_once'), 'Approval 7 allowed once by whatsapp.');
    assert.equal(resolved('allow_always'), 'Approval 7 allowed always by whatsapp.');
    assert.equal(resolved('deny'), 'Approval 7 denied by whatsapp.');
    assert.equal(resolved('expired', 'nobody (expired)'), 'Approval 7 expired (denied) by nobody (expired).');
    assert.equal(resolved('withdrawn', 'the asker'), 'Approval 7 withdrawn by the asker.');
    assert.equal(formatBatch([formatEvent(requested(), { nowMs: 1_000_000 })!]), '🔐 Approval 7: Run task "deploy" (make deploy)\nAsked by phone, 5 min left.\nReply yes 7 · always 7 · no 7');
  });

  test('the bridge words every approval event exactly as the real helper\'s own chat mode does', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    // One client sees both: the events (what the bridge gets) and the helper's own chat pushes (`notify on`).
    const watcher = await Phone.connect(h, APPROVE, 'watcher');
    const asker = await Phone.connect(h, 'read,run', 'phone');
    try {
      watcher.send({ type: 'subscribe', id: 's', data: { events: ['approval.requested', 'approval.resolved'] } });
      await watcher.next((m) => m.type === 'subscribed');
      watcher.send({ type: 'chat', id: 'n', data: { text: 'notify on' } });
      await watcher.next((m) => m.type === 'chat_reply' && m.id === 'n');
      const answer = async (text: string, id: number): Promise<void> => {
        watcher.send({ type: 'chat', id: `w${id}`, data: { text } });
        await watcher.next((m) => m.type === 'event' && m.data.event === 'approval.resolved' && m.data.payload?.approvalId === id, 10000, `resolution of ${id}`);
      };
      const a = await asker.ask('r1');
      await answer(`yes ${a}`, a);
      const b = await asker.ask('r2');
      await answer(`always ${b}`, b);
      const asker2 = await Phone.connect(h, 'read,run', 'phone2');
      const c = await asker2.ask('r3');
      await answer(`no ${c}`, c);
      const d = await asker2.ask('r4');
      asker2.close(); // withdrawn
      await watcher.next((m) => m.type === 'event' && m.data.event === 'approval.resolved' && m.data.payload?.approvalId === d, 10000, 'withdrawal');
      await sleep(200);
      const events = watcher.received.filter((m) => m.type === 'event');
      assert.deepEqual(events.map((e) => `${String(e.data.event)} ${typeof e.data.payload?.decision === 'string' ? e.data.payload.decision : ''}`), [
        'approval.requested ', 'approval.resolved allow_once', 'approval.requested ', 'approval.resolved allow_always',
        'approval.requested ', 'approval.resolved deny', 'approval.requested ', 'approval.resolved withdrawn',
      ]);
      for (const ev of events) {
        const push = watcher.received.find((m) => m.type === 'chat_reply' && m.data.event === ev.data.seq);
        assert.ok(push, `the helper's chat text for event ${String(ev.data.seq)}`);
        const ours = formatEvent({ event: ev.data.event as string, seq: ev.data.seq!, payload: ev.data.payload! }, { nowMs: ev.timestamp! });
        assert.equal(ours?.text, push.data.text, `event ${String(ev.data.seq)} (${String(ev.data.event)})`);
      }
    } finally {
      watcher.close();
      asker.close();
      await h.stop();
    }
  });
});

describe('approving from WhatsApp with the real helper', () => {
  test('notify on, run deploy: "Waiting for approval N" and the announcement; yes N runs it and its end is reported, once', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-'), h.url, [], [GROUP]));
    try {
      await ready(r);
      assert.equal(await say(r, ALICE, 'notify on'), 'Notifications on for ws1: you\'ll hear when a task ends and when an approval is asked.');
      await subscribed(r);
      const waiting = await say(r, ALICE, 'run deploy', /^Waiting for approval/);
      const n = Number(/^Waiting for approval (\d+): a device with the approve scope answers "yes \1"\.$/.exec(waiting)?.[1]);
      assert.ok(n > 0, waiting);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(n, 'whatsapp-bridge')), 5000, 'the announcement');

      assert.equal(await say(r, ALICE, `yes ${n}`, new RegExp(`^approval ${n}: `)), `approval ${n}: allow_once.`);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => /^✔ deploy finished: exit 0/.test(x.text)), 10000, 'the end of the task');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text.split('\n').includes(`Approval ${n} allowed once by whatsapp-bridge.`)), 5000, 'the resolution');
      await sleep(1000);
      const texts = textsTo(r, ALICE);
      assert.equal(texts.filter((t) => t === announcement(n, 'whatsapp-bridge')).length, 1, JSON.stringify(texts));
      assert.ok(texts.includes('▶ deploy started'), JSON.stringify(texts));
      const ends = texts.filter((t) => /deploy finished/.test(t));
      assert.equal(ends.length, 1, `the run's own end, not notified twice: ${JSON.stringify(texts)}`);
      assert.match(ends[0]!, /```\ndeployed\n```$/);
      assert.equal(r.wa.sent.filter(to(BOB)).length, 0, 'a chat without notify on hears nothing');

      // A later answer, from this chat, another chat or a group member, is told who decided: the helper sees one user.
      const decided = `approval ${n} was already decided: allow_once by whatsapp-bridge.`;
      assert.equal(await say(r, ALICE, `yes ${n}`, new RegExp(`^approval ${n}`)), decided);
      assert.equal(await say(r, BOB, `no ${n}`, new RegExp(`^approval ${n}`)), decided);
      const before = r.wa.sent.length;
      r.wa.inject({ from: MALLORY, text: `no ${n}`, group: GROUP });
      const sent = await r.wa.waitSent((s) => s.slice(before).some((x) => x.chatId === GROUP), 10000, 'the group\'s answer');
      assert.equal(sent.slice(before).find((x) => x.chatId === GROUP)!.text, decided);
      await sleep(800);
      assert.equal(textsTo(r, ALICE).filter((t) => /deploy started|deploy finished/.test(t)).length, 2, 'it ran once');

      // The bridge logs who wrote, never what: no answer appears in its logs or --json events.
      const logged = JSON.stringify([r.reporter.logs, r.reporter.events]);
      assert.ok(!logged.includes(`yes ${n}`) && !logged.includes(`no ${n}`) && !logged.includes('run deploy'), logged);
      assert.ok(r.reporter.events.some((e) => e.type === 'message' && e.data.from === MALLORY), 'the sender is named');
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('"yes", "yes please", "ok" are not answers (the helper\'s own replies, untouched); no N denies: the task never runs', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-')));
    const observer = await Phone.connect(h, APPROVE, 'observer');
    try {
      observer.send({ type: 'subscribe', id: 's', data: { events: ['approval.resolved', 'task.started'] } });
      await observer.next((m) => m.type === 'subscribed');
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      const waiting = await say(r, ALICE, 'run deploy', /^Waiting for approval/);
      const n = Number(/(\d+)/.exec(waiting)![1]);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(n, 'whatsapp-bridge')), 5000, 'the announcement');

      // What the helper itself answers to each, in chat mode (a phone of its own):
      const helperSays = async (text: string): Promise<string> => {
        const id = `c${Math.random().toString(36).slice(2)}`;
        observer.send({ type: 'chat', id, data: { text } });
        return (await observer.next((m) => m.type === 'chat_reply' && m.id === id)).data.text!;
      };
      for (const text of ['yes', 'yes please', 'ok', 'OK', 'y', '👍', 'approve', 'Yes!', `yes ${n} please`, `yes #${n}`, 'always', 'allow']) {
        const got = await say(r, ALICE, text);
        assert.equal(got, await helperSays(text), `"${text}" went to the helper as it was`);
        assert.doesNotMatch(got, /allow_once|allow_always|allowed|deny\.|started/, `"${text}" decided nothing: ${got}`);
      }
      assert.equal(await say(r, ALICE, 'yes'), 'Usage: yes <n> — allow approval n once.');
      assert.equal(await say(r, ALICE, 'yes please'), 'Usage: yes <n> — allow approval n once.');
      await sleep(500);
      assert.equal(observer.received.filter((m) => m.type === 'event').length, 0, `nothing decided, nothing ran: ${JSON.stringify(observer.received)}`);
      assert.match(await say(r, ALICE, 'approvals'), new RegExp(`^Waiting for your approval:\\n${n} · Run task "deploy" \\(echo deployed\\)`));

      assert.equal(await say(r, ALICE, `no ${n}`, new RegExp(`^approval ${n}: `)), `approval ${n}: deny.`);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === 'Not allowed: denied by whatsapp-bridge'), 5000, 'the run refused');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text.split('\n').includes(`Approval ${n} denied by whatsapp-bridge.`)), 5000, 'the resolution');
      await sleep(800);
      const texts = textsTo(r, ALICE);
      assert.ok(!texts.some((t) => /deploy started|deploy finished|```\ndeployed/.test(t)), JSON.stringify(texts));
      assert.deepEqual(observer.received.filter((m) => m.type === 'event').map((m) => m.data.event), ['approval.resolved']);
    } finally {
      observer.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('always N: the same task from the same chat (the bridge\'s token) then runs without asking, until the helper restarts; another token still asks', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-')));
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      const n = Number(/(\d+)/.exec(await say(r, ALICE, 'run deploy', /^Waiting for approval/))![1]);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(n, 'whatsapp-bridge')), 5000, 'the announcement');
      assert.equal(await say(r, ALICE, `always ${n}`, new RegExp(`^approval ${n}: `)), `approval ${n}: allow_always.`);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text.split('\n').includes(`Approval ${n} allowed always by whatsapp-bridge.`)), 5000, 'the resolution');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => /^✔ deploy finished: exit 0/.test(x.text)), 10000, 'the first run\'s end');

      // Again from a chat (BOB: the same token): no approval, it starts at once.
      assert.equal(await say(r, BOB, 'run deploy'), '▶ deploy started');
      await r.wa.waitSent((s) => s.filter(to(BOB)).some((x) => /^✔ deploy finished: exit 0/.test(x.text)), 10000, 'the second run\'s end');
      // Another token asks again, and the chats hear of it.
      const m = await ci.ask('d');
      assert.ok(m > n);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(m, 'ci')), 5000, 'the next announcement');
      await sleep(500);
      assert.equal(textsTo(r, ALICE).filter((t) => t.startsWith('🔐')).length, 2, JSON.stringify(textsTo(r, ALICE)));

      // A restarted helper asks again. Its events start over: the chats are told some were missed, and where to look.
      ci.close();
      await h.stop();
      await h.start();
      await ready(r, 15000);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === 'Some notifications were missed while the bridge was away. Send "approvals" to see what waits for an answer.'), 5000, 'the resync notice');
      assert.match(await say(r, ALICE, 'run deploy'), /^Waiting for approval \d+: /);
    } finally {
      ci.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('no answer in time is a deny: the run is refused, the chats hear "expired (denied)", a late yes N is told so', async () => {
    const h = new ServedHelper(gitRepo('main'), { ...SETTINGS, approvals: { timeoutSeconds: 5 } });
    await h.start();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-')));
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      const n = Number(/(\d+)/.exec(await say(r, ALICE, 'run deploy', /^Waiting for approval/))![1]);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(n, 'whatsapp-bridge').replace('5 min left', '5 s left')), 5000, 'the announcement');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === 'Not allowed: nobody approved it in time'), 10000, 'the run refused');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text.split('\n').includes(`Approval ${n} expired (denied) by nobody (expired).`)), 5000, 'the expiry');
      assert.equal(await say(r, ALICE, `yes ${n}`, new RegExp(`^approval ${n}`)), `approval ${n} was already decided: expired by nobody (expired).`);
      await sleep(500);
      assert.ok(!textsTo(r, ALICE).some((t) => /deploy started|deploy finished/.test(t)), JSON.stringify(textsTo(r, ALICE)));
    } finally {
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('the link to the helper drops while a chat\'s run deploy waits: withdrawn, and the chats hear so after the reconnect; a ws client\'s approval stays', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const cable = new Cable(h.port);
    const url = await cable.listen();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-'), url));
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      const n = Number(/(\d+)/.exec(await say(r, ALICE, 'run deploy', /^Waiting for approval/))![1]);
      const m = await ci.ask('c');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(m, 'ci')), 5000, 'the announcements');
      cable.cut();
      const deadline = Date.now() + 5000;
      while (r.bridge.helpers[0]!.isReady()) { if (Date.now() > deadline) throw new Error('still connected'); await sleep(20); }
      await sleep(300);
      cable.mend();
      await ready(r);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text.split('\n').includes(`Approval ${n} withdrawn by the asker.`)), 5000, 'the withdrawal');
      assert.equal(await say(r, ALICE, `yes ${n}`, new RegExp(`^approval ${n}`)), `approval ${n} was already decided: withdrawn by the asker.`);
      assert.equal(await say(r, ALICE, `yes ${m}`, new RegExp(`^approval ${m}`)), `approval ${m}: allow_once.`);
      assert.equal(await ci.output('c'), 'deployed\n');
      await sleep(500);
      assert.ok(!textsTo(r, ALICE).some((t) => /deploy started/.test(t)), 'the chat\'s run never started');
      assert.ok(!textsTo(r, ALICE).some((t) => t.split('\n').includes(`Approval ${m} withdrawn by the asker.`)));
    } finally {
      ci.close();
      await r.bridge.stop();
      await cable.close();
      await h.stop();
    }
  });

  test('two bridges, two phones: both hear it; the first answer wins, the second is told it was already decided, and by whom', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r1 = await rig(config(h, h.tokenFile(APPROVE, 'wa-alice'), tempDir('cw-state-')));
    const r2 = await rig(config(h, h.tokenFile(APPROVE, 'wa-bob'), tempDir('cw-state-')));
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r1);
      await ready(r2);
      await say(r1, ALICE, 'notify on');
      await say(r2, BOB, 'notify on');
      await subscribed(r1);
      await subscribed(r2);
      const n = await ci.ask('d1');
      for (const [r, who] of [[r1, ALICE], [r2, BOB]] as const) {
        await r.wa.waitSent((s) => s.filter(to(who)).some((x) => x.text === announcement(n, 'ci')), 5000, `the announcement to ${who}`);
      }
      assert.equal(await say(r1, ALICE, `yes ${n}`, new RegExp(`^approval ${n}`)), `approval ${n}: allow_once.`);
      assert.equal(await ci.output('d1'), 'deployed\n');
      assert.equal(await say(r2, BOB, `no ${n}`, new RegExp(`^approval ${n}`)), `approval ${n} was already decided: allow_once by wa-alice.`);
      assert.equal(await say(r2, BOB, `yes ${n}`, new RegExp(`^approval ${n}`)), `approval ${n} was already decided: allow_once by wa-alice.`);
      for (const [r, who] of [[r1, ALICE], [r2, BOB]] as const) {
        await r.wa.waitSent((s) => s.filter(to(who)).some((x) => x.text.split('\n').includes(`Approval ${n} allowed once by wa-alice.`)), 5000, `the resolution to ${who}`);
        await r.wa.waitSent((s) => s.filter(to(who)).some((x) => /✔ deploy finished: exit 0/.test(x.text)), 5000, `the task's end to ${who}`);
      }
      await sleep(800);
      for (const [r, who] of [[r1, ALICE], [r2, BOB]] as const) {
        assert.equal(textsTo(r, who).filter((t) => t === announcement(n, 'ci')).length, 1, JSON.stringify(textsTo(r, who)));
      }
    } finally {
      ci.close();
      await r1.bridge.stop();
      await r2.bridge.stop();
      await h.stop();
    }
  });

  test('reconnects: an approval asked while the link to the helper was down, or while the bridge was stopped, is announced exactly once; yes N still works', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const cable = new Cable(h.port);
    const url = await cable.listen();
    const stateDir = tempDir('cw-state-');
    const cfg = config(h, h.tokenFile(APPROVE), stateDir, url);
    let r = await rig(cfg);
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      const a = await ci.ask('a');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(a, 'ci')), 5000, 'announcement a');

      // The link to the helper drops; b is asked meanwhile; the bridge reconnects and resumes with since.
      cable.cut();
      const deadline = Date.now() + 5000;
      while (r.bridge.helpers[0]!.isReady()) { if (Date.now() > deadline) throw new Error('still connected'); await sleep(20); }
      const b = await ci.ask('b');
      await sleep(600);
      cable.mend();
      await ready(r);
      await subscribed(r, 2);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => announced(b, 'ci')(x.text)), 5000, 'announcement b after the reconnect');
      // Replayed a second or so late, it says how long is really left.
      assert.ok(textsTo(r, ALICE).includes(announcement(b, 'ci').replace('5 min left', '4 min left')), JSON.stringify(textsTo(r, ALICE)));

      // The bridge stops (its notify state on disk); c is asked meanwhile; a new bridge takes over.
      await r.bridge.stop();
      const c = await ci.ask('c');
      const before = textsTo(r, ALICE);
      r = await rig(cfg);
      await ready(r);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => announced(c, 'ci')(x.text)), 5000, 'announcement c after the restart');
      await sleep(1000);
      const after = textsTo(r, ALICE);
      for (const [id, texts] of [[a, before], [b, before], [c, after]] as const) {
        assert.equal(texts.filter((t) => t.startsWith(`🔐 Approval ${id}:`)).length, 1, `approval ${id} once: ${JSON.stringify([before, after])}`);
      }
      assert.equal(after.filter((t) => t.startsWith('🔐')).length, 1, 'nothing announced twice after the restart');
      assert.ok(announced(c, 'ci')(after.find((t) => t.startsWith('🔐'))!));

      // Another restart: nothing again; the approvals still wait and a late answer works.
      await r.bridge.stop();
      r = await rig(cfg);
      await ready(r);
      await subscribed(r);
      await sleep(800);
      assert.deepEqual(textsTo(r, ALICE), []);
      assert.equal(await say(r, ALICE, `yes ${b}`, new RegExp(`^approval ${b}`)), `approval ${b}: allow_once.`);
      assert.equal(await ci.output('b'), 'deployed\n');
    } finally {
      ci.close();
      await r.bridge.stop();
      await cable.close();
      await h.stop();
    }
  });

  test('a token without approve: approvals are not announced (task ends still are), and yes N decides nothing', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r = await rig(config(h, h.tokenFile('read,run'), tempDir('cw-state-')));
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      assert.equal(await say(r, ALICE, 'notify on'), 'Notifications on for ws1: you\'ll hear when a task ends.');
      await subscribed(r, 1, false);
      const n = await ci.ask('d');
      ci.send({ type: 'command', id: 'ok', data: { name: 'task.run', args: { name: 'ok' } } });
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => /✔ ok finished/.test(x.text)), 5000, 'the task end');
      assert.equal(await say(r, ALICE, `yes ${n}`), 'Not allowed: this device\'s token does not include the "approve" scope.');
      await sleep(800);
      assert.ok(!textsTo(r, ALICE).some((t) => /Approval|🔐/.test(t)), JSON.stringify(textsTo(r, ALICE)));
      assert.ok(!r.reporter.logs.some((l) => /refused the event subscription/.test(l.message)), 'the subscription was not refused');
      assert.equal(ci.received.filter((m) => m.id === 'd').length, 1, 'still waiting (only approval_pending)');
    } finally {
      ci.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a token refreshed with approve on a live session: approvals are announced from then on', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const tokenFile = h.tokenFile('read,run');
    const r = await rig(config(h, tokenFile, tempDir('cw-state-')));
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r, 1, false);
      writeFileSync(tokenFile, `${h.token(APPROVE)}\n`);
      await subscribed(r, 1, true);
      const n = await ci.ask('d');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(n, 'ci')), 5000, 'the announcement');
      assert.equal(r.bridge.helpers[0]!.stats.connects, 1, 'the same session');
    } finally {
      ci.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('a token refreshed with approve for another user (--user whatsapp): a new session, approvals announced', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const tokenFile = h.tokenFile('read,run'); // user whatsapp-bridge
    const r = await rig(config(h, tokenFile, tempDir('cw-state-')));
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r, 1, false);
      writeFileSync(tokenFile, `${h.token(APPROVE, 'whatsapp')}\n`);
      await subscribed(r, 1, true);
      await ready(r);
      const n = await ci.ask('d');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === announcement(n, 'ci')), 5000, 'the announcement');
      assert.equal(await say(r, ALICE, `yes ${n}`, /^approval/), `approval ${n}: allow_once.`);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text.split('\n').includes(`Approval ${n} allowed once by whatsapp.`)), 5000, 'decided by the new user');
      assert.ok(!r.wa.sent.some((x) => /refused the bridge's token/.test(x.text)), 'no "token refused" message to the owner');
    } finally {
      ci.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('an approval is a message of its own: never joined with task ends, never hidden in "and N more" while WhatsApp was down', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-')), { coalesceMs: 1500 });
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      // Within one coalescing window: two task ends, then an approval.
      await ci.run(['ok', 'ok']);
      const a = await ci.ask('a');
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= 3, 5000, 'the task ends and the approval');
      await sleep(2000);
      let texts = textsTo(r, ALICE).slice(1);
      assert.equal(texts.length, 2, JSON.stringify(texts));
      assert.match(texts[0]!, /^✔ ok finished: exit 0 in .*\n✔ ok finished: exit 0 in /, 'the task ends joined, sent first');
      assert.equal(texts[1], announcement(a, 'ci'), 'the approval alone');

      // WhatsApp down: 12 task ends, an approval, one more task end; all held.
      r.wa.drop('other');
      await ci.run(Array.from({ length: 12 }, () => 'ok'));
      const b = await ci.ask('b');
      await ci.run(['ok']);
      await sleep(500);
      const before = textsTo(r, ALICE).length;
      await r.wa.start();
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= before + 3, 8000, 'the held notifications');
      await sleep(2000);
      texts = textsTo(r, ALICE).slice(before);
      assert.equal(texts.length, 3, JSON.stringify(texts));
      assert.match(texts[0]!, /\nand 2 more$/, 'twelve ends: ten listed, then "and 2 more"');
      assert.ok(announced(b, 'ci')(texts[1]!), `the approval alone, after them: ${texts[1]!}`);
      assert.match(texts[2]!, /^✔ ok finished: exit 0 in [^\n]*$/);
    } finally {
      ci.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('WhatsApp down past what a chat may hold: task ends are dropped (counted in "and N more"), the approval is not', async () => {
    const h = new ServedHelper(gitRepo('main'), SETTINGS);
    await h.start();
    const r = await rig(config(h, h.tokenFile(APPROVE), tempDir('cw-state-')), { maxHeldPerChat: 5 });
    const ci = await Phone.connect(h, 'read,run', 'ci');
    try {
      await ready(r);
      await say(r, ALICE, 'notify on');
      await subscribed(r);
      r.wa.drop('other');
      const a = await ci.ask('a'); // the oldest held
      await ci.run(Array.from({ length: 8 }, () => 'ok'));
      await sleep(500);
      const before = textsTo(r, ALICE).length;
      await r.wa.start();
      await r.wa.waitSent((s) => s.filter(to(ALICE)).length >= before + 2, 8000, 'the held notifications');
      await sleep(1500);
      const texts = textsTo(r, ALICE).slice(before);
      assert.equal(texts.length, 2, JSON.stringify(texts));
      assert.ok(announced(a, 'ci')(texts[0]!), `the approval kept, alone: ${texts[0]!}`);
      assert.match(texts[1]!, /^(✔ ok finished: exit 0 in [^\n]*\n){4}and 4 more$/, 'four ends kept, four dropped');
    } finally {
      ci.close();
      await r.bridge.stop();
      await h.stop();
    }
  });

  test('several workspaces: an approval of the second says "@lib yes N" (plain words go to the first), and that is what decides it', async () => {
    const app = new ServedHelper(gitRepo('main'), SETTINGS);
    const lib = new ServedHelper(gitRepo('main'), SETTINGS);
    await app.start();
    await lib.start();
    const r = await rig(config(app, app.tokenFile(APPROVE), tempDir('cw-state-'), app.url,
      [{ name: 'lib', url: lib.url, tokenFile: lib.tokenFile(APPROVE), workspaceId: lib.workspaceId }]));
    const ci = await Phone.connect(lib, 'read,run', 'ci');
    try {
      await ready(r);
      assert.equal(await say(r, ALICE, '@lib notify on'), 'Notifications on for lib: you\'ll hear when a task ends and when an approval is asked.');
      await subscribed(r);
      const n = await ci.ask('d');
      const text = `[lib] ${announcement(n, 'ci').replace(/Reply .*$/, `Reply @lib yes ${n} · @lib always ${n} · @lib no ${n}`)}`;
      await r.wa.waitSent((s) => s.filter(to(ALICE)).some((x) => x.text === text), 5000, 'the announcement');
      // The plain words reach the first workspace, which has no such approval.
      assert.equal(await say(r, ALICE, `yes ${n}`), `Not found: no approval ${n} is waiting`);
      assert.equal(await say(r, ALICE, `@lib yes ${n}`), `[lib] approval ${n}: allow_once.`);
      assert.equal(await ci.output('d'), 'deployed\n');
    } finally {
      ci.close();
      await r.bridge.stop();
      await app.stop();
      await lib.stop();
    }
  });
});
