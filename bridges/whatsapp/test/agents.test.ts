/**
 * Agents from WhatsApp (issue 16), against the REAL companion-helper binary
 * and a real ACP agent process (tests/integration/agents/scripted-agent.mjs,
 * the official ACP SDK; the prompt's first word picks its script). WhatsApp's
 * servers are stood in by InMemoryWhatsAppTransport: each test asserts what
 * a phone sees, message by message, with the time each was sent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { startBridge } from '../src/bridge.js';
import type { Bridge, BridgeTuning } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import type { FakeSent } from '../src/memoryTransport.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, gitRepo, ServedHelper, sleep, tempDir, writeFile } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';
const BOB = '+15550000003';

const INTEGRATION = path.resolve(import.meta.dirname, '../../../../tests/integration');
const SCRIPTED = path.join(INTEGRATION, 'agents/scripted-agent.mjs');

const SETTINGS = {
  agents: { scripted: { command: process.execPath, args: [SCRIPTED] } },
  defaultAgent: 'scripted',
  limits: { commandsPerSecond: 1000 },
};

/** The bridge's token: `agent` is as strong as `run`; `approve` lets the chat answer the agent's permission requests. */
const AGENT = 'read,run,agent';
const AGENT_APPROVE = 'read,run,agent,approve';

/** The last line of the last message of a turn: how it ended. */
const END = /(?:^|\n)(Done\.|Cancelled\.|The agent failed[.:][^\n]*|Stopped: [^\n]*|Ended \([^\n]*)$/;

function config(h: ServedHelper, tokenFile: string, stateDir: string): Config {
  return {
    workspaces: [{ name: 'ws1', url: h.url, tokenFile, workspaceId: h.workspaceId }],
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

interface Rig { bridge: Bridge; wa: InMemoryWhatsAppTransport; reporter: MemoryReporter; h: ServedHelper }

async function rig(scope: string, settings: Record<string, unknown> = SETTINGS, tuning: BridgeTuning = {}): Promise<Rig> {
  const repo = gitRepo('main');
  writeFile(repo, 'src/main.c', 'int main(void) { return 0; }\n');
  const h = new ServedHelper(repo, settings);
  await h.start();
  const wa = new InMemoryWhatsAppTransport(OWNER);
  const reporter = new MemoryReporter();
  const bridge = await startBridge(config(h, h.tokenFile(scope), tempDir('cw-state-')), wa, reporter,
    { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100, coalesceMs: 300, ...tuning });
  const deadline = Date.now() + 10000;
  while (!bridge.helpers.every((x) => x.isReady())) {
    if (Date.now() > deadline) throw new Error(`helper not ready: ${JSON.stringify(reporter.logs)}`);
    await sleep(20);
  }
  return { bridge, wa, reporter, h };
}

async function teardown(r: Rig): Promise<void> {
  await r.bridge.stop();
  await r.h.stop();
}

const to = (n: string) => (s: FakeSent) => s.chatId === e164ToJid(n);
const sentTo = (r: Rig, n: string): FakeSent[] => r.wa.sent.filter(to(n));

/** Sends text from ALICE; resolves with every message the chat got after it until one matches `until` (default: a turn's end). */
async function say(r: Rig, text: string, until: RegExp = END, timeoutMs = 30000): Promise<FakeSent[]> {
  const from = sentTo(r, ALICE).length;
  r.wa.inject({ from: ALICE, text });
  await r.wa.waitSent((s) => s.filter(to(ALICE)).slice(from).some((x) => until.test(x.text)), timeoutMs, `"${until.source}" after "${text}"`);
  const got = sentTo(r, ALICE).slice(from);
  return got.slice(0, got.findIndex((x) => until.test(x.text)) + 1);
}

/** What a phone saw, for the logs: one message a paragraph, with the time since the first. */
function transcript(said: string, got: FakeSent[], t0 = got[0]?.at ?? 0): string {
  return [`> ${said}`, ...got.map((m) => `< [+${((m.at - t0) / 1000).toFixed(1)} s] ${m.text.length > 300 ? `${m.text.slice(0, 300)}… (${m.text.length} chars)` : m.text}`)].join('\n');
}

function show(said: string, got: FakeSent[], t0?: number): void {
  if (process.env.SHOW_TRANSCRIPTS) process.stderr.write(`${transcript(said, got, t0)}\n\n`);
}

/** A plain WebSocket client of the helper with the agent scope (another device of the owner's). */
class Device {
  private readonly received: { type: string; id?: string; data: Record<string, unknown> }[] = [];
  private n = 0;
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => { this.received.push(JSON.parse(d.toString()) as { type: string; data: Record<string, unknown> }); });
  }

  static async connect(h: ServedHelper): Promise<Device> {
    const ws = new WebSocket(h.url);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve(); }); ws.once('error', reject); });
    const d = new Device(ws);
    const a = await d.request({ type: 'auth', data: { token: h.token('read,agent', 'laptop'), workspaceId: h.workspaceId } });
    assert.equal(a.data.success, true, JSON.stringify(a));
    return d;
  }

  async request(m: { type: string; data: unknown }): Promise<{ type: string; data: Record<string, unknown> }> {
    const id = `d${++this.n}`;
    this.ws.send(JSON.stringify({ ...m, id }));
    const deadline = Date.now() + 10000;
    for (;;) {
      const found = this.received.find((x) => x.id === id);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no answer to ${JSON.stringify(m)}`);
      await sleep(20);
    }
  }

  async conversations(): Promise<{ id: string; state: string; turns: number }[]> {
    const m = await this.request({ type: 'command', data: { name: 'agent.conversations', args: {} } });
    return (m.data.result as { conversations: { id: string; state: string; turns: number }[] }).conversations;
  }

  close(): void { this.ws.close(); }
}

before(() => {
  if (!existsSync(path.join(INTEGRATION, 'node_modules/@agentclientprotocol/sdk'))) {
    throw new Error(`the scripted agent needs its SDK: run "npm ci" in ${INTEGRATION}`);
  }
});

after(() => { cleanupAll(); });

describe('agents from WhatsApp, through the real helper and a real ACP agent', () => {
  test('a question reaches the agent (not "Unknown command"): one message, the last line "Done."', async () => {
    const r = await rig(AGENT);
    try {
      const q = 'can you explain what src/main.c does?';
      const got = await say(r, q);
      show(q, got);
      assert.ok(got.length <= 2, `few messages: ${JSON.stringify(got.map((m) => m.text))}`);
      assert.ok(!got.some((m) => /Unknown command/.test(m.text)), JSON.stringify(got));
      assert.equal(got.map((m) => m.text).join('\n\n'), `${q}\n\nDone.`);
    } finally {
      await teardown(r);
    }
  });

  test('an answer with fenced code blocks: every fence whole in one message, paragraphs in order, nothing lost', async () => {
    const r = await rig(AGENT);
    try {
      const code1 = ['```c', 'int main(void)', '{', '    int n = 0;', '', '    /* a blank line above: inside the fence, not a paragraph end */', '', ...Array.from({ length: 12 }, (_, i) => `    n += ${i}; /* step ${i} of the loop that sums the numbers */`), '    return n;', '}', '```'].join('\n');
      const code2 = ['```sh', 'make test', '', ...Array.from({ length: 10 }, (_, i) => `./build/run --case ${i} --verbose   # case ${i}`), '', 'echo done', '```'].join('\n');
      const para = (i: number): string => `Paragraph ${i}: ${'the helper merges streamed text and sends it at paragraph boundaries, '.repeat(3).trim()}`;
      const text = [para(1), code1, para(2), para(3), code2, para(4), 'That is all.'].join('\n\n');
      const check = (got: FakeSent[], label: string): void => {
        const texts = got.map((m) => m.text);
        for (const t of texts) {
          assert.ok(t.length <= 4096, `${label}: a message of ${t.length} characters`);
          assert.equal((t.match(/^```/gm) ?? []).length % 2, 0, `${label}: a fence cut between messages: ${JSON.stringify(texts)}`);
        }
        assert.equal(texts.filter((t) => t.includes(code1)).length, 1, `${label}: the first block whole in one message`);
        assert.equal(texts.filter((t) => t.includes(code2)).length, 1, `${label}: the second block whole in one message`);
        assert.equal(texts.join('\n\n'), `${text}\n\nDone.`, `${label}: in order, nothing lost, nothing added`);
      };
      // echo: the agent streams it in 4 chunks at once (cut anywhere, also inside the fences).
      const echoed = await say(r, `echo ${text}`);
      show(`echo <${text.length} characters>`, echoed);
      check(echoed, 'echo');
      // drip: 12 chunks 600 ms apart, so the helper sends while a fence is still open.
      const dripped = await say(r, `drip 600 ${text}`);
      show(`drip 600 <${text.length} characters>`, dripped);
      check(dripped, 'drip');
      assert.ok(dripped.length >= 2 && dripped.length <= 5, `a few messages, sent as the text came: ${dripped.length}`);
    } finally {
      await teardown(r);
    }
  });

  test('"log 5" and "status" stay commands; "log in page is broken" and "no, use the other file" go to the agent', async () => {
    const r = await rig(AGENT);
    try {
      const log = await say(r, 'log 5', /[\s\S]/);
      show('log 5', log);
      assert.match(log[0]!.text, /first commit/);
      const status = await say(r, 'status', /[\s\S]/);
      show('status', status);
      assert.match(status[0]!.text, /^main\b/);
      for (const q of ['log in page is broken', 'no, use the other file', 'status of the build?', 'run the tests and tell me what fails']) {
        const got = await say(r, q);
        show(q, got);
        assert.deepEqual(got.map((m) => m.text), [`${q}\n\nDone.`], q);
      }
      // The agent's own words: "ask" sends even a command to the agent.
      assert.deepEqual((await say(r, 'ask status')).map((m) => m.text), ['status\n\nDone.']);
      await sleep(300);
      assert.ok(!sentTo(r, ALICE).some((m) => /Unknown command|Usage:/.test(m.text)), JSON.stringify(sentTo(r, ALICE).map((m) => m.text)));
    } finally {
      await teardown(r);
    }
  });

  test('a tool call asks permission: "Running: npm test" and "Approval N"; yes N from the same chat runs it, no N rejects it', async () => {
    const r = await rig(AGENT_APPROVE);
    try {
      const asked = await say(r, 'tool', /Reply yes \d+/);
      show('tool', asked);
      const n = Number(/Approval (\d+): /.exec(asked.at(-1)!.text)?.[1]);
      assert.ok(n > 0, JSON.stringify(asked));
      assert.deepEqual(asked.map((m) => m.text), [`Running: npm test\n\nApproval ${n}: Agent "scripted": Running: npm test\nReply yes ${n}, always ${n} or no ${n}.`]);
      const ran = await say(r, `yes ${n}`);
      show(`yes ${n}`, ran);
      assert.deepEqual(ran.map((m) => m.text), [`approval ${n}: allow_once.`, 'tool ran\n\nDone.']);

      const asked2 = await say(r, 'tool', /Reply yes \d+/);
      const m = Number(/Approval (\d+): /.exec(asked2.at(-1)!.text)?.[1]);
      assert.ok(m > n);
      const rejected = await say(r, `no ${m}`);
      show(`no ${m}`, rejected);
      assert.deepEqual(rejected.map((x) => x.text), [`approval ${m}: deny.`, 'Failed: Running: npm test\n\ntool rejected\n\nDone.']);
    } finally {
      await teardown(r);
    }
  });

  test('stop cancels the answer ("Cancelled."); new starts a fresh conversation', async () => {
    const r = await rig(AGENT);
    const laptop = await Device.connect(r.h);
    try {
      const first = await say(r, 'hello there');
      assert.deepEqual(first.map((m) => m.text), ['hello there\n\nDone.']);
      // slow: ticks with no paragraph end, so nothing is sent before the turn ends.
      let t0 = Date.now();
      let from = sentTo(r, ALICE).length;
      r.wa.inject({ from: ALICE, text: 'slow 20000' });
      await sleep(1500);
      assert.equal(sentTo(r, ALICE).length, from, 'nothing yet: no paragraph has ended');
      await say(r, 'stop', /^Stopping the agent…$/);
      await r.wa.waitSent((s) => s.filter(to(ALICE)).slice(from).some((x) => END.test(x.text)), 10000, 'the end of the turn');
      await sleep(300);
      let all = sentTo(r, ALICE).slice(from);
      show('slow 20000 … stop', all, t0);
      assert.ok(Date.now() - t0 < 8000, 'stopped early');
      assert.deepEqual(all.map((m) => m.text.replace(/^tick 0 (tick \d+ )*tick \d+\n\n/, 'tick 0 … ')), ['Stopping the agent…', 'tick 0 … Cancelled.']);
      // paras: a paragraph is out before "stop".
      t0 = Date.now();
      from = sentTo(r, ALICE).length;
      r.wa.inject({ from: ALICE, text: 'paras 100 300' });
      await r.wa.waitSent((s) => s.filter(to(ALICE)).slice(from).some((x) => x.text.startsWith('Paragraph 1 of 100.')), 10000, 'the first paragraph');
      await say(r, 'stop', END);
      all = sentTo(r, ALICE).slice(from);
      show('paras 100 300 … stop', all, t0);
      assert.ok(Date.now() - t0 < 8000, 'stopped early');
      assert.equal(all.at(-1)!.text.split('\n').at(-1), 'Cancelled.');
      assert.equal(all.filter((m) => m.text === 'Stopping the agent…').length, 1, JSON.stringify(all.map((m) => m.text)));
      let convs = await laptop.conversations();
      assert.equal(convs.length, 1, JSON.stringify(convs));
      assert.equal(convs[0]!.turns, 3);

      assert.deepEqual((await say(r, 'stop', /[\s\S]/)).map((m) => m.text), ['The agent is not answering anything now.']);
      assert.deepEqual((await say(r, 'new', /[\s\S]/)).map((m) => m.text), ['New conversation with scripted. Your next message goes to it.']);
      assert.deepEqual((await say(r, 'and now?')).map((m) => m.text), ['and now?\n\nDone.']);
      convs = await laptop.conversations();
      assert.equal(convs.length, 2, JSON.stringify(convs));
      const newest = convs.find((c) => c.id !== convs.find((x) => x.turns === 3)?.id);
      assert.equal(newest?.turns, 1, `the new conversation has only the new question: ${JSON.stringify(convs)}`);
      // new <text> asks too, in yet another conversation.
      assert.deepEqual((await say(r, 'new echo fresh start')).map((m) => m.text), ['fresh start\n\nDone.']);
      assert.equal((await laptop.conversations()).length, 3);
    } finally {
      laptop.close();
      await teardown(r);
    }
  });

  test('a long answer (flood 20000) comes in parts of at most 4096 characters, in order, nothing lost', async () => {
    // Also with the chat's queue let go at once (an answer slower than orderHoldMs): the parts come in one burst.
    for (const tuning of [{}, { orderHoldMs: 1 }]) {
      const r = await rig(AGENT, SETTINGS, tuning);
      try {
        const got = await say(r, 'flood 20000');
        show(`flood 20000 ${JSON.stringify(tuning)}`, got);
        for (const m of got) assert.ok(m.text.length <= 4096, `${m.text.length} characters`);
        const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
        const want = Array.from({ length: 20000 }, (_, i) => alphabet[i % 36]).join('');
        const texts = got.map((m) => m.text);
        assert.ok(texts.join('').replace(/\n\nDone\.$/, '') === want, `in order, nothing lost (${JSON.stringify(tuning)}): ${JSON.stringify(texts.map((t) => `${t.slice(0, 12)}…(${t.length})`))}`);
        assert.ok(got.length >= 5 && got.length <= 7, `${got.length} messages`);
      } finally {
        await teardown(r);
      }
    }
  });

  test('pacing: an answer that comes over 8 s arrives as whole messages at least 3 s apart', async () => {
    const r = await rig(AGENT);
    try {
      const t0 = Date.now();
      const got = await say(r, 'paras 9 1000');
      show('paras 9 1000', got, t0);
      const gaps = got.slice(1).map((m, i) => m.at - got[i]!.at);
      // Every message but the turn's last (sent as soon as the turn ends) waits 3 s after the one before (timer jitter allowed).
      for (const g of gaps.slice(0, -1)) assert.ok(g >= 2900, `gaps ${JSON.stringify(gaps)}`);
      assert.ok(got.length >= 3 && got.length <= 5, `${got.length} messages`);
      assert.equal(got.map((m) => m.text).join('\n\n'), `${Array.from({ length: 9 }, (_, i) => `Paragraph ${i + 1} of 9.`).join('\n\n')}\n\nDone.`);
    } finally {
      await teardown(r);
    }
  });

  test('a silent agent holds nothing back: "status" is answered at once; an answer later than the reply timeout still comes', async () => {
    const r = await rig(AGENT, SETTINGS, { replyTimeoutMs: 2500 });
    try {
      const t0 = Date.now();
      const from = sentTo(r, ALICE).length;
      r.wa.inject({ from: ALICE, text: 'slow 4000' }); // ticks, no paragraph end: nothing until the turn ends
      await sleep(300);
      const status = await say(r, 'status', /^main\b/);
      assert.ok(Date.now() - t0 < 2500, `status answered while the agent works (${Date.now() - t0} ms)`);
      assert.equal(status.length, 1, JSON.stringify(status));
      await r.wa.waitSent((s) => s.filter(to(ALICE)).slice(from).some((x) => END.test(x.text)), 10000, 'the end of the turn');
      const all = sentTo(r, ALICE).slice(from);
      show('slow 4000, then status (reply timeout 2.5 s)', all, t0);
      assert.deepEqual(all.map((m) => m.text.replace(/^tick 0 [\s\S]*\n\n/, 'tick 0 … ')), [status[0]!.text, 'No answer from the workspace yet.', 'tick 0 … Done.']);
    } finally {
      await teardown(r);
    }
  });

  test('each chat of the bridge has its own conversation (data.chat); with notify on an approval is also announced', async () => {
    const r = await rig(AGENT_APPROVE);
    const laptop = await Device.connect(r.h);
    try {
      assert.deepEqual((await say(r, 'echo from alice')).map((m) => m.text), ['from alice\n\nDone.']);
      const before = sentTo(r, ALICE).length;
      r.wa.inject({ from: BOB, text: 'echo from bob' });
      await r.wa.waitSent((s) => s.filter(to(BOB)).some((x) => END.test(x.text)), 10000, 'the answer to bob');
      assert.deepEqual(sentTo(r, BOB).map((m) => m.text), ['from bob\n\nDone.']);
      await sleep(300);
      assert.equal(sentTo(r, ALICE).length, before, 'the answer goes only to the chat that asked');
      const convs = await laptop.conversations();
      assert.deepEqual(convs.map((c) => c.turns), [1, 1], JSON.stringify(convs));

      assert.match((await say(r, 'notify on', /[\s\S]/))[0]!.text, /^Notifications on/);
      await sleep(500);
      const asked = await say(r, 'tool', /Reply yes \d+, always/);
      await sleep(800);
      const n = Number(/Approval (\d+): /.exec(asked.at(-1)!.text)?.[1]);
      const seen = sentTo(r, ALICE).slice(-3).map((m) => m.text);
      show('notify on; tool', sentTo(r, ALICE).slice(-3));
      assert.equal(seen.filter((t) => t.startsWith(`🔐 Approval ${n}: `)).length, 1, JSON.stringify(seen));
      assert.equal(seen.filter((t) => t.includes(`Approval ${n}: Agent "scripted": Running: npm test`)).length, 2, JSON.stringify(seen));
      assert.deepEqual((await say(r, `yes ${n}`)).map((m) => m.text).filter((t) => !t.startsWith(`Approval ${n} allowed`)), [`approval ${n}: allow_once.`, 'tool ran\n\nDone.']);
    } finally {
      laptop.close();
      await teardown(r);
    }
  });
});
