#!/usr/bin/env node
// WhatsApp relay latency and throughput through the bridge (bench/figures.sh):
// the REAL bridge (bridges/whatsapp, compiled to out/ by `tsc`) with the
// IN-MEMORY WhatsApp transport (InMemoryWhatsAppTransport: WhatsApp's
// servers cannot run here, so messages are injected in-process and the
// bridge's replies are read where it hands them to "WhatsApp") against the
// REAL helper (`serve`, a fresh process, its own config and state homes),
// and, for comparison, the same chat command straight over the helper's
// WebSocket (`{"type":"chat"}` answered by `chat_reply`), so the bridge's
// own cost shows.
//
//   node bench/whatsapp-relay.mjs --helper BIN [--n 300] [--burst 500]
//        [--senders 20] [--text status] [--out FILE]
//
// Latency: --n messages one at a time (after 20 unmeasured), from inject()
// (the message as Baileys would hand it to the bridge) to the bridge's
// sendText() of the reply; direct: from ws.send() to the last chat_reply
// part. Throughput: --burst messages injected at once from --senders
// allowed numbers (at most 50 per chat: the bridge's per-chat reply queue),
// until the last reply; direct: --burst chat messages written at once on one
// connection (the bridge, too, has one connection per helper).
// Limits raised for the throughput figures (both paths): the helper's
// limits.commandsPerSecond 10000 (default 20 per session), the bridge's
// perSenderPerMinute and helperSendsPerSecond 1,000,000 (defaults 10 and
// 10): with the defaults both paths are held at 20 and 10 commands/s by
// design. The bridge logs at `info`, its lines counted, not written.
// CPU: the helper's from /proc/PID/task/*/schedstat; the bench process's
// (the bridge, the stand-in and the injecting code; or the ws client) from
// process.cpuUsage().
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const BRIDGE = path.join(here, '../bridges/whatsapp');
const require = createRequire(path.join(BRIDGE, 'package.json'));
const WebSocket = require('ws');
if (!existsSync(path.join(BRIDGE, 'out/src/bridge.js'))) {
  throw new Error('bridges/whatsapp/out/ is missing: run `npx tsc -p .` in bridges/whatsapp (bench/figures.sh does)');
}
const { startBridge } = await import(path.join(BRIDGE, 'out/src/bridge.js'));
const { InMemoryWhatsAppTransport } = await import(path.join(BRIDGE, 'out/src/memoryTransport.js'));
const { ConsoleReporter } = await import(path.join(BRIDGE, 'out/src/log.js'));
const { e164ToJid } = await import(path.join(BRIDGE, 'out/src/transport.js'));

const opt = { helper: '', n: 300, burst: 500, senders: 20, text: 'status', out: '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option ${process.argv[i]}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opt.helper) throw new Error('--helper BIN is required');
if (opt.burst > opt.senders * 50) throw new Error('--burst is at most 50 per sender (the bridge queues 50 replies per chat)');

const log = (...a) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
const sleep = (t) => new Promise((r) => { setTimeout(r, t); });
const now = () => process.hrtime.bigint();
const us = (t0, t1 = now()) => Number(t1 - t0) / 1e3;
const pct = (xs, p) => { const v = [...xs].sort((a, b) => a - b); return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]; };
function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  return ns;
}
const selfCpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };

// ---- a workspace and the helper ----
const work = mkdtempSync(path.join(tmpdir(), 'companion-wabench-'));
let child = null;
process.on('exit', () => {
  try { child?.kill('SIGKILL'); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
});
const home = path.join(work, 'home');
for (const d of ['config', 'state']) mkdirSync(path.join(home, d), { recursive: true });
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), XDG_STATE_HOME: path.join(home, 'state') };
const repo = path.join(work, 'repo');
mkdirSync(repo);
const git = (...a) => execFileSync('git', a, { cwd: repo, stdio: 'ignore', env: { ...env, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'B', GIT_AUTHOR_EMAIL: 'b@example.invalid', GIT_COMMITTER_NAME: 'B', GIT_COMMITTER_EMAIL: 'b@example.invalid' } });
git('init', '-q', '-b', 'main');
writeFileSync(path.join(repo, 'a.txt'), 'a\n');
git('add', 'a.txt');
git('commit', '-q', '-m', 'first commit');
const configFile = path.join(work, 'companion.json');
writeFileSync(configFile, JSON.stringify({ limits: { commandsPerSecond: 10000 } }), { mode: 0o600 });

child = spawn(opt.helper, ['serve', '--workspace', repo, '--host', '127.0.0.1', '--port', '0', '--scope', 'read', '--config', configFile],
  { env, stdio: ['ignore', 'pipe', 'pipe'] });
let stdout = '';
let stderr = '';
child.stdout.on('data', (d) => { stdout += d; });
child.stderr.on('data', (d) => { stderr += d; });
for (const deadline = Date.now() + 15000; !stdout.includes('Press Ctrl+C');) {
  if (child.exitCode !== null) throw new Error(`serve exited: ${stderr}`);
  if (Date.now() > deadline) throw new Error(`no banner: ${stdout} ${stderr}`);
  await sleep(20);
}
const field = (name) => (stdout.match(new RegExp(`${name}:\\s+(\\S+)`)) || [])[1];
const url = field('URL');
const workspaceId = field('Workspace id');
const tokenFile = field('Token file');
const hpid = child.pid;

async function settle() {
  for (let last = -1, n = cpuNs(hpid); n !== last; last = n, n = cpuNs(hpid)) await sleep(200);
}

const rows = [];
const record = (obj) => { rows.push(obj); if (opt.out) appendFileSync(opt.out, `${JSON.stringify({ kind: 'whatsapp', ...obj })}\n`); };

// ---- direct: the same chat command over the helper's WebSocket ----
async function direct() {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const waiting = new Map();
  const parts = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.type === 'chat_reply') {
      const got = (parts.get(m.id) ?? 0) + 1;
      parts.set(m.id, got);
      if (got < m.data.parts) return;
      parts.delete(m.id);
    }
    const w = waiting.get(m.id);
    if (w) { waiting.delete(m.id); w(m); }
  });
  let id = 0;
  const request = (type, data) => new Promise((resolve) => {
    const i = `d${++id}`;
    waiting.set(i, resolve);
    ws.send(JSON.stringify({ type, id: i, data }));
  });
  const token = readFileSync(tokenFile, 'utf8').trim();
  const a = await request('auth', { token, workspaceId });
  if (!a.data.success) throw new Error(`auth: ${JSON.stringify(a)}`);
  const chat = async () => {
    const r = await request('chat', { text: opt.text });
    if (r.type !== 'chat_reply') throw new Error(`chat: ${JSON.stringify(r)}`);
  };
  for (let i = 0; i < 20; i++) await chat();
  await settle();
  const lat = [];
  let h0 = cpuNs(hpid);
  let c0 = selfCpuUs();
  for (let i = 0; i < opt.n; i++) {
    const t0 = now();
    await chat();
    lat.push(us(t0));
  }
  const seqHelperCpu = (cpuNs(hpid) - h0) / 1e3 / opt.n;
  const seqSelfCpu = (selfCpuUs() - c0) / opt.n;
  await settle();
  h0 = cpuNs(hpid);
  c0 = selfCpuUs();
  const t0 = now();
  await Promise.all(Array.from({ length: opt.burst }, () => chat()));
  const wall = us(t0);
  record({
    path: 'direct', p50_us: pct(lat, 50), p99_us: pct(lat, 99), max_us: Math.max(...lat),
    helper_cpu_us: seqHelperCpu, client_cpu_us: seqSelfCpu,
    burst_per_s: opt.burst / (wall / 1e6), burst_helper_cpu_us: (cpuNs(hpid) - h0) / 1e3 / opt.burst,
    burst_client_cpu_us: (selfCpuUs() - c0) / opt.burst,
  });
  ws.close();
}

// ---- through the bridge, WhatsApp in memory ----
async function bridged() {
  const OWNER = '+15550000001';
  const senders = Array.from({ length: opt.senders }, (_, i) => `+1555100${String(i).padStart(4, '0')}`);
  const wa = new InMemoryWhatsAppTransport(OWNER);
  let logLines = 0;
  const reporter = new ConsoleReporter({ json: false, level: 'info', stderr: () => { logLines++; }, stdout: () => {} });
  const config = {
    workspaces: [{ name: 'ws1', url, tokenFile, workspaceId }],
    allow: senders, groups: [], authDir: path.join(work, 'wa', 'auth'), json: false, relink: false,
    perSenderPerMinute: 1000000, helperSendsPerSecond: 1000000, logLevel: 'info',
  };
  mkdirSync(path.join(work, 'wa'), { recursive: true });
  const bridge = await startBridge(config, wa, reporter, {});
  for (const deadline = Date.now() + 15000; !bridge.helpers.every((h) => h.isReady());) {
    if (Date.now() > deadline) throw new Error('the bridge did not connect to the helper');
    await sleep(20);
  }
  // Replies, per chat, in order.
  const pending = new Map();
  wa.on('sentText', ({ chatId }) => {
    const q = pending.get(chatId);
    const w = q?.shift();
    if (w) w();
  });
  const ask = (sender) => new Promise((resolve) => {
    const chat = e164ToJid(sender);
    if (!pending.has(chat)) pending.set(chat, []);
    pending.get(chat).push(resolve);
    wa.inject({ from: sender, text: opt.text });
  });
  for (let i = 0; i < 20; i++) await ask(senders[0]);
  if (!/^main/.test(wa.sent.at(-1).text)) throw new Error(`unexpected reply: ${wa.sent.at(-1).text}`);
  await settle();
  const lat = [];
  let h0 = cpuNs(hpid);
  let c0 = selfCpuUs();
  for (let i = 0; i < opt.n; i++) {
    const t0 = now();
    await ask(senders[i % senders.length]);
    lat.push(us(t0));
  }
  const seqHelperCpu = (cpuNs(hpid) - h0) / 1e3 / opt.n;
  const seqSelfCpu = (selfCpuUs() - c0) / opt.n;
  await settle();
  const sentBefore = wa.sent.length;
  h0 = cpuNs(hpid);
  c0 = selfCpuUs();
  const t0 = now();
  await Promise.all(Array.from({ length: opt.burst }, (_, i) => ask(senders[i % senders.length])));
  const wall = us(t0);
  const answers = wa.sent.slice(sentBefore);
  const wrong = answers.filter((s) => !/^main/.test(s.text));
  if (wrong.length) throw new Error(`${wrong.length} replies were not the status: ${wrong[0].text}`);
  record({
    path: 'bridge', p50_us: pct(lat, 50), p99_us: pct(lat, 99), max_us: Math.max(...lat),
    helper_cpu_us: seqHelperCpu, client_cpu_us: seqSelfCpu,
    burst_per_s: opt.burst / (wall / 1e6), burst_helper_cpu_us: (cpuNs(hpid) - h0) / 1e3 / opt.burst,
    burst_client_cpu_us: (selfCpuUs() - c0) / opt.burst, log_lines: logLines,
  });
  await bridge.stop(2000);
}

log(`direct: ${opt.n} × "${opt.text}" one at a time, then ${opt.burst} at once`);
await direct();
log(`bridge (in-memory WhatsApp): ${opt.n} one at a time, then ${opt.burst} at once from ${opt.senders} senders`);
await bridged();
child.kill('SIGTERM');

const f = (x) => (!Number.isFinite(x) ? 'n/a' : Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
const d = rows.find((r) => r.path === 'direct');
const b = rows.find((r) => r.path === 'bridge');
const line = (name, key) => console.log(`| ${name} | ${f(b[key])} | ${f(d[key])} | ${f(b[key] - d[key])} |`);
console.log(`| chat "${opt.text}" (one run) | through the bridge, WhatsApp in memory | straight over the helper's WebSocket | bridge − direct |`);
console.log('|---|---:|---:|---:|');
line(`message in → reply out, p50 (us; ${opt.n} one at a time)`, 'p50_us');
line('p99 (us)', 'p99_us');
line('max (us)', 'max_us');
line('helper CPU per message (us)', 'helper_cpu_us');
line('bench process CPU per message (us): bridge + stand-in, or the ws client', 'client_cpu_us');
line(`${opt.burst} at once: replies/s`, 'burst_per_s');
line(`${opt.burst} at once: helper CPU per message (us)`, 'burst_helper_cpu_us');
line(`${opt.burst} at once: bench process CPU per message (us)`, 'burst_client_cpu_us');
