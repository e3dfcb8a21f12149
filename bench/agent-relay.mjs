#!/usr/bin/env node
// The measurements behind bench/agents.sh (issue 16): what the helper adds
// between an ACP agent and a WebSocket client. One JSON line per
// measurement goes to --out; bench/agents-report.mjs turns them into a table.
//
//   node bench/agent-relay.mjs --helper BIN --out FILE [--rounds 3]
//        [--rate 100] [--rate-seconds 30] [--burst 20000] [--convs 500]
//        [--flood-bytes 10485760] [--flood-chunk 4096] [--pids FILE]
//
// Two paths, same agent (bench/relay-agent.mjs), same client (`ws`):
//   helper  the real helper (`--stdio`, the test harness's Editor: settings
//           through initialize, server/start on 127.0.0.1, a minted token
//           with the agent scope); the client sends agent.prompt and reads
//           stream_chunk messages;
//   plain   bench/plain-relay.mjs, which only copies the agent's lines to
//           the socket; the client speaks ACP itself through it.
// Latency of a chunk = the client's process.hrtime.bigint() when `ws` hands
// it the message minus the agent's, read just before its write(2) and
// carried in the chunk's text (CLOCK_MONOTONIC in both processes).
// Server CPU = sum_exec_runtime over /proc/PID/task/*/schedstat, with
// utime+stime from /proc/PID/stat (10 ms ticks) beside it.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const WebSocket = require('ws');
const { Editor, tempDir, sleep } = await import('../tests/integration/lib/harness.mjs');

const AGENT = path.join(here, 'relay-agent.mjs');
const PLAIN = path.join(here, 'plain-relay.mjs');

const opt = {
  rounds: 3, rate: 100, 'rate-seconds': 30, burst: 20000, convs: 500,
  'flood-bytes': 10 * 1024 * 1024, 'flood-chunk': 4096, helper: '', out: '', pids: '',
  only: '',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option ${process.argv[i]}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opt.helper || !opt.out) throw new Error('--helper BIN and --out FILE are required');
const only = opt.only ? new Set(opt.only.split(',')) : null;
const want = (what) => !only || only.has(what);

const log = (...a) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
const record = (obj) => appendFileSync(opt.out, `${JSON.stringify(obj)}\n`);
const notePid = (pid) => { if (opt.pids) appendFileSync(opt.pids, `${pid}\n`); };

// ---- /proc ----

function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  return ns;
}
function cpuTicks(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}
/* The agent process under pid (bench/relay-agent.mjs), or 0. */
function agentOf(pid) {
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    let kids = '';
    try { kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8'); } catch { continue; }
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) {
      try { if (readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('relay-agent.mjs')) return Number(k); } catch { /* gone */ }
    }
  }
  return 0;
}
/* Busy time of the whole machine (ns), from /proc/stat (USER_HZ 100). */
function machineBusyNs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3] - f[4]) * 1e7;
}
const selfNs = () => { const u = process.cpuUsage(); return (u.user + u.system) * 1000; };
/* CPU of the server, the agent, this client and the machine. */
function cpu(pid, agent = 0) {
  return { ns: cpuNs(pid), ticks: cpuTicks(pid), agent: agent ? cpuNs(agent) : 0, self: selfNs(), busy: machineBusyNs(), t: process.hrtime.bigint() };
}
function cpuDelta(c0, c1, n) {
  const wall = Number(c1.t - c0.t);
  const srv = c1.ns - c0.ns, ag = c1.agent - c0.agent, me = c1.self - c0.self;
  return {
    srv_cpu_us_per_chunk: srv / 1000 / n,
    srv_ticks_us_per_chunk: ((c1.ticks - c0.ticks) * 10000) / n,
    srv_cpu_ms: srv / 1e6,
    agent_cpu_us_per_chunk: ag / 1000 / n,
    client_cpu_us_per_chunk: me / 1000 / n,
    others_cores: Math.max(0, (c1.busy - c0.busy - srv - ag - me) / wall),
  };
}
function mem(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1]);
  let pss = NaN;
  try {
    pss = Number((readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m) || [])[1]);
  } catch { /* no smaps_rollup */ }
  return { rss_kb: kb('VmRSS'), anon_kb: kb('RssAnon'), pss_kb: pss };
}

const vmHwm = (pid) => Number((readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)/m) || [])[1]);

// ---- the two paths ----

/* A client connection through path `who`: prompt(text) -> {chunks: [{t, text}], end}. */
class HelperPath {
  static async start() {
    const p = new HelperPath();
    p.dir = tempDir('companion-agbench-');
    p.ed = new Editor({ bin: opt.helper });
    notePid(p.ed.child.pid);
    p.pid = p.ed.child.pid;
    await p.ed.startServer({
      folders: [p.dir],
      settings: {
        log: { level: 'warn' },
        limits: { commandsPerSecond: 10000, maxConversations: 1000 },
        agents: { relay: { command: process.execPath, args: [AGENT] } },
        defaultAgent: 'relay',
      },
    });
    p.ws = await open(p.ed.url);
    const auth = await p.request({ type: 'auth', id: 'a', data: { token: p.ed.token({ sub: 'bench', scope: 'agent' }), workspaceId: p.ed.workspaceId } });
    if (!auth.data.success) throw new Error(`auth: ${JSON.stringify(auth)}`);
    p.n = 0;
    return p;
  }

  request(msg) {
    return new Promise((resolve) => {
      this.ws.on('message', function h(d) {
        const m = JSON.parse(d);
        if (m.id === msg.id) { this.off('message', h); resolve(m); }
      });
      this.ws.send(JSON.stringify(msg));
    });
  }

  command(name, args) { return this.request({ type: 'command', id: `c${++this.n}`, data: { name, args } }); }

  /* One turn; conversation: the one to continue (undefined: a new one). */
  prompt(text, conversation, onChunk) {
    const id = `p${++this.n}`;
    return new Promise((resolve, reject) => {
      const ws = this.ws;
      let conv;
      const h = (d) => {
        const t = process.hrtime.bigint();
        const m = JSON.parse(d);
        if (m.id !== id) return;
        if (m.type === 'stream_chunk') onChunk(t, m.data.text);
        else if (m.type === 'stream_start') conv = m.data.conversation;
        else if (m.type === 'stream_end') { ws.off('message', h); resolve({ end: m.data, conversation: conv }); }
        else { ws.off('message', h); reject(new Error(`prompt: ${d}`)); }
      };
      ws.on('message', h);
      ws.send(JSON.stringify({ type: 'command', id, data: { name: 'agent.prompt', args: { text, ...(conversation ? { conversation } : {}) } } }));
    });
  }

  async stop() {
    this.ws.terminate();
    await this.ed.stop();
  }
}

class PlainPath {
  static async start() {
    const p = new PlainPath();
    p.child = spawn(process.execPath, [PLAIN, '--', process.execPath, AGENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    notePid(p.child.pid);
    p.pid = p.child.pid;
    const port = await new Promise((resolve, reject) => {
      let out = '';
      p.child.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/PORT (\d+)/);
        if (m) resolve(Number(m[1]));
      });
      p.child.on('exit', () => reject(new Error('plain relay exited')));
    });
    p.ws = await open(`ws://127.0.0.1:${port}`);
    p.n = 0;
    const init = await p.rpc('initialize', { protocolVersion: 1, clientCapabilities: {} });
    if (init.result?.protocolVersion !== 1) throw new Error(`initialize: ${JSON.stringify(init)}`);
    return p;
  }

  rpc(method, params) {
    const id = ++this.n;
    return new Promise((resolve) => {
      this.ws.on('message', function h(d) {
        const m = JSON.parse(d);
        if (m.id === id) { this.off('message', h); resolve(m); }
      });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  async prompt(text, conversation, onChunk) {
    if (!conversation) conversation = (await this.rpc('session/new', { cwd: here, mcpServers: [] })).result.sessionId;
    const id = ++this.n;
    return new Promise((resolve) => {
      const ws = this.ws;
      const h = (d) => {
        const t = process.hrtime.bigint();
        const m = JSON.parse(d);
        if (m.method === 'session/update') onChunk(t, m.params.update.content.text);
        else if (m.id === id) { ws.off('message', h); resolve({ end: m.result, conversation }); }
      };
      ws.on('message', h);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'session/prompt', params: { sessionId: conversation, prompt: [{ type: 'text', text }] } }));
    });
  }

  async stop() {
    this.ws.terminate();
    this.child.kill('SIGTERM');
    await new Promise((r) => (this.child.exitCode !== null ? r() : this.child.on('exit', r)));
  }
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// ---- measurements ----

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

/* stream N chunks at rate (0: burst) through path p: latency and CPU. */
async function streamRun(p, conv, n, rate) {
  const lat = new Float64Array(n);
  let k = 0;
  const c0 = cpu(p.pid, p.agent);
  const t0 = process.hrtime.bigint();
  const r = await p.prompt(`stream ${n} ${rate}`, conv, (t, text) => {
    if (k < n) lat[k] = Number(t - BigInt(text)) / 1000;
    k++;
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = cpu(p.pid, p.agent);
  const s = Array.from(lat.subarray(0, Math.min(k, n))).sort((a, b) => a - b);
  return {
    chunks: n, received: k, stop: r.end?.stopReason, wall_s: wall, chunks_per_s: k / wall,
    p50_us: pct(s, 50), p90_us: pct(s, 90), p99_us: pct(s, 99), max_us: s[s.length - 1],
    ...cpuDelta(c0, c1, n),
  };
}

/* RSS of pid every 50 ms on a worker thread (independent of this loop's load). */
function sampler(pid) {
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const { readFileSync } = require('node:fs');
    const out = [];
    const t0 = Date.now();
    const read = () => {
      try {
        const m = readFileSync('/proc/${pid}/status', 'utf8').match(/^VmRSS:\\s+(\\d+)/m);
        out.push([Date.now() - t0, Number(m[1])]);
      } catch {}
    };
    read();
    const iv = setInterval(read, 50);
    parentPort.on('message', () => { clearInterval(iv); read(); parentPort.postMessage(out); });
  `, { eval: true });
  return { stop: () => new Promise((r) => { w.once('message', (m) => { w.terminate(); r(m); }); w.postMessage('stop'); }) };
}

async function floodRun(p, conv) {
  const bytes = opt['flood-bytes'];
  const before = mem(p.pid);
  // Reset the peak RSS (VmHWM): the stream may be shorter than a few
  // samples, VmHWM misses nothing.
  let hwm = true;
  try { writeFileSync(`/proc/${p.pid}/clear_refs`, '5'); } catch { hwm = false; }
  let got = 0;
  let chunks = 0;
  const s = sampler(p.pid);
  const t0 = process.hrtime.bigint();
  const c0 = cpu(p.pid, p.agent);
  const r = await p.prompt(`flood ${bytes} ${opt['flood-chunk']}`, conv, (t, text) => { got += text.length; chunks++; });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = cpu(p.pid, p.agent);
  const samples = await s.stop();
  await sleep(300);
  const after = mem(p.pid);
  const hwmKb = hwm ? vmHwm(p.pid) : NaN;
  const peak = Math.max(...samples.map((x) => x[1]), Number.isFinite(hwmKb) ? hwmKb : 0);
  return {
    bytes, received_bytes: got, chunks, complete: got === bytes, stop: r.end?.stopReason,
    wall_s: wall, mb_per_s: bytes / 1048576 / wall, samples: samples.length,
    rss_before_kb: before.rss_kb, rss_peak_kb: peak, rss_hwm_kb: hwmKb,
    rss_peak_sampled_kb: Math.max(...samples.map((x) => x[1])), rss_end_kb: after.rss_kb,
    rss_growth_peak_kb: peak - before.rss_kb, rss_growth_end_kb: after.rss_kb - before.rss_kb,
    ...cpuDelta(c0, c1, chunks),
  };
}

async function settle(pid) {
  // until the process used no CPU for 200 ms (at most 5 s)
  let last = -1;
  for (let i = 0; i < 25; i++) {
    const now = cpuNs(pid);
    if (now === last) return;
    last = now;
    await sleep(200);
  }
}

async function streams(round, who) {
  const P = who === 'helper' ? HelperPath : PlainPath;
  const p = await P.start();
  try {
    // Start the agent and warm both sides' JIT and buffers.
    const w = await p.prompt('hello', undefined, () => {});
    const conv = w.conversation;
    p.agent = agentOf(p.pid);
    if (!p.agent) throw new Error(`no agent process under ${p.pid}`);
    await settle(p.pid);
    const m0 = mem(p.pid);
    await streamRun(p, conv, 2000, 0);
    await settle(p.pid);
    const n = Math.round(opt.rate * opt['rate-seconds']);
    if (want('rate')) {
      log(`round ${round}: ${who}: ${n} chunks at ${opt.rate}/s`);
      record({ round, label: who, mode: 'rate', rate: opt.rate, ...await streamRun(p, conv, n, opt.rate) });
    }
    if (want('burst')) {
      await settle(p.pid);
      log(`round ${round}: ${who}: burst of ${opt.burst} chunks`);
      const r = await streamRun(p, conv, opt.burst, 0);
      await settle(p.pid);
      const m1 = mem(p.pid);
      // What one conversation keeps after tens of thousands of small chunks
      // (the helper keeps each conversation's last updates for followers).
      record({ round, label: who, mode: 'burst', ...r, rss_start_kb: m0.rss_kb, rss_after_burst_kb: m1.rss_kb, rss_kept_kb: m1.rss_kb - m0.rss_kb });
    }
    if (want('flood')) {
      await settle(p.pid);
      log(`round ${round}: ${who}: ${opt['flood-bytes']} bytes in ${opt['flood-chunk']}-byte chunks`);
      record({ round, label: who, mode: 'flood', ...await floodRun(p, conv) });
    }
  } finally {
    await p.stop();
  }
}

/* Helper RSS per conversation: idle (agent.new) and after one short turn each. */
async function conversations(round) {
  const N = opt.convs;
  for (const kind of ['new', 'turn']) {
    const p = await HelperPath.start();
    try {
      // The agent started and one turn done, so that what follows counts
      // conversations only.
      await p.prompt('hello', undefined, () => {});
      await settle(p.pid);
      await sleep(200);
      const m0 = mem(p.pid);
      for (let i = 0; i < N; i++) {
        if (kind === 'new') {
          const r = await p.command('agent.new', {});
          if (!r.data.success) throw new Error(`agent.new: ${JSON.stringify(r)}`);
        } else {
          const r = await p.prompt(`short ${i}`, undefined, () => {});
          if (r.end.stopReason !== 'end_turn') throw new Error(`turn: ${JSON.stringify(r)}`);
        }
      }
      await settle(p.pid);
      await sleep(200);
      const m1 = mem(p.pid);
      const list = await p.command('agent.conversations', {});
      const n = list.data.result.conversations.length;
      record({
        round, label: 'helper', mode: `conv-${kind}`, n: N, kept: n,
        rss0_kb: m0.rss_kb, rss1_kb: m1.rss_kb, pss0_kb: m0.pss_kb, pss1_kb: m1.pss_kb,
        anon0_kb: m0.anon_kb, anon1_kb: m1.anon_kb,
        rss_per_conv_bytes: ((m1.rss_kb - m0.rss_kb) * 1024) / N,
        pss_per_conv_bytes: ((m1.pss_kb - m0.pss_kb) * 1024) / N,
        anon_per_conv_bytes: ((m1.anon_kb - m0.anon_kb) * 1024) / N,
      });
      log(`round ${round}: ${N} conversations (${kind === 'new' ? 'agent.new' : 'one short turn each'}): RSS ${m0.rss_kb} -> ${m1.rss_kb} KiB`);
    } finally {
      await p.stop();
    }
  }
}

for (let round = 1; round <= opt.rounds; round++) {
  const order = round % 2 ? ['helper', 'plain'] : ['plain', 'helper'];
  if (want('rate') || want('burst') || want('flood')) {
    for (const who of order) await streams(round, who);
  }
  if (want('conv')) await conversations(round);
}
