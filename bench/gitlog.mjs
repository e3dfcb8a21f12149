#!/usr/bin/env node
// git.log with a path filter on a long history (bench/figures.sh): the real
// helper (`serve`, a fresh process, its own config and state homes) answering
// `git.log` over its WebSocket, against the git CLI (`git log`, a fresh
// process per call, as a user runs it) without and with a commit-graph
// carrying changed-path Bloom filters (`git commit-graph write --reachable
// --changed-paths`), which git uses and libgit2 does not.
//
//   node bench/gitlog.mjs --helper BIN --repo DIR [--runs 5] [--out FILE]
//
// DIR is bench/mklogrepo.sh's repository (20,000 commits; src/d07/hot.txt
// changed by 200 of them, docs/rare.txt by 20). Each figure is the median of
// --runs; for the helper, each run is a fresh `serve` (after its start-up
// work settled): its first call (cold: pack index and objects not yet read,
// what a phone's first look costs) and, warm, the median of calls 3 to 6
// (the second call runs cold again on the helper's other worker thread,
// which keeps its own repository and libgit2 object cache). The cases:
//   hot, first 50    limit 50 on src/d07/hot.txt (walks ~5,000 commits)
//   hot, first 100   limit 100, the protocol's largest page (~10,000)
//   rare, full walk  limit 50 on docs/rare.txt: 21 commits, so the whole
//                    history is walked (20,000)
//   no path, 50      the plain first page, for scale
// Helper: wall time from send to the command_response (ms), and its CPU for
// the call (schedstat, all threads), and its RSS growth over the six calls
// (VmRSS; libgit2 keeps what it read in its object cache). CLI: wall time of `git log -n N
// --format=%H%x00%h%x00%s%x00%an%x00%ae%x00%at -- PATH` (the same fields),
// after one untimed call (page cache warm for both).
// One JSON line per figure to --out (if given); a table on stdout.
import { spawn, execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const WebSocket = require('ws');

const opt = { helper: '', repo: '', runs: 5, out: '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option ${process.argv[i]}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opt.helper || !opt.repo) throw new Error('--helper BIN and --repo DIR are required');
if (!existsSync(path.join(opt.repo, '.bench-complete'))) throw new Error(`${opt.repo} is not bench/mklogrepo.sh's repository`);

const log = (...a) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
const median = (xs) => { const v = [...xs].sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2; };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (t) => new Promise((r) => { setTimeout(r, t); });
function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  return ns;
}

const CASES = [
  { name: 'src/d07/hot.txt (200 of 20,000 commits), first 50', path: 'src/d07/hot.txt', limit: 50 },
  { name: 'src/d07/hot.txt, first 100 (the largest page)', path: 'src/d07/hot.txt', limit: 100 },
  { name: 'docs/rare.txt (21 commits): full walk of 20,000', path: 'docs/rare.txt', limit: 50 },
  { name: 'no path, first 50', path: null, limit: 50 },
];

// ---- the helper: a fresh `serve` per run, so its first call is cold ----
const work = mkdtempSync(path.join(tmpdir(), 'companion-gitlog-'));
const children = new Set();
process.on('exit', () => {
  for (const c of children) try { c.kill('SIGKILL'); } catch { /* gone */ }
  rmSync(work, { recursive: true, force: true });
});
const home = path.join(work, 'home');
mkdirSync(path.join(home, 'config'), { recursive: true });
mkdirSync(path.join(home, 'state'), { recursive: true });
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), XDG_STATE_HOME: path.join(home, 'state') };

async function startHelper() {
  const child = spawn(opt.helper, ['serve', '--workspace', opt.repo, '--host', '127.0.0.1', '--port', '0', '--scope', 'read'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
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
  const token = readFileSync(field('Token file'), 'utf8').trim();
  const ws = new WebSocket(field('URL'));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const waiting = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    const w = waiting.get(m.id);
    if (w) { waiting.delete(m.id); w(m); }
  });
  let nextId = 0;
  const request = (type, data) => new Promise((resolve) => {
    const id = `r${++nextId}`;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ type, id, data }));
  });
  const auth = await request('auth', { token, workspaceId: field('Workspace id') });
  if (!auth.data.success) throw new Error(`auth failed: ${JSON.stringify(auth)}`);
  // Let the start-up work (the watcher's first walk) finish first.
  for (let last = -1, now = cpuNs(child.pid); now !== last; last = now, now = cpuNs(child.pid)) await sleep(200);
  return {
    async call(c) {
      const args = { limit: c.limit, ...(c.path ? { path: c.path } : {}) };
      const cpu0 = cpuNs(child.pid);
      const t0 = process.hrtime.bigint();
      const r = await request('command', { name: 'git.log', args });
      const wall = ms(t0);
      if (!r.data?.success) throw new Error(`git.log failed: ${JSON.stringify(r)}`);
      return { wall, cpu: (cpuNs(child.pid) - cpu0) / 1e6, n: r.data.result.commits.length, incomplete: !!r.data.result.incomplete };
    },
    rssKb() {
      return Number(readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
    },
    async stop() {
      ws.close();
      child.kill('SIGTERM');
      await new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); });
      children.delete(child);
    },
  };
}

function cliCall(repo, c, extra = []) {
  const args = [...extra, 'log', `-n${c.limit}`, '--format=%H%x00%h%x00%s%x00%an%x00%ae%x00%at', ...(c.path ? ['--', c.path] : [])];
  const t0 = process.hrtime.bigint();
  const out = execFileSync('git', args, { cwd: repo, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: home }, maxBuffer: 64 << 20 });
  const wall = ms(t0);
  return { wall, n: out.toString().split('\n').filter(Boolean).length };
}

// The CLI's two repositories: the one given (no commit-graph; checked), and
// a copy with a commit-graph holding Bloom filters.
const cgRepo = path.join(work, 'repo-cg');
cpSync(opt.repo, cgRepo, { recursive: true });
execFileSync('git', ['commit-graph', 'write', '--reachable', '--changed-paths'], { cwd: cgRepo, stdio: 'ignore' });
const noCg = ['-c', 'core.commitGraph=false'];

const rows = [];
for (const c of CASES) {
  log(`git.log ${c.path ?? '(no path)'} limit ${c.limit}`);
  const cold = [];
  const warm = [];
  const rss = [];
  for (let i = 0; i < opt.runs; i++) {
    const h = await startHelper();
    const rss0 = h.rssKb();
    cold.push(await h.call(c));
    // The helper's two worker threads each keep their own repository (and
    // libgit2 object cache): the second call is cold again on the other
    // thread. Warm: the median of calls 3 to 6.
    await h.call(c);
    const w = [];
    for (let k = 0; k < 4; k++) w.push(await h.call(c));
    warm.push({ wall: median(w.map((x) => x.wall)), cpu: median(w.map((x) => x.cpu)), n: w[0].n });
    rss.push(h.rssKb() - rss0);
    await h.stop();
  }
  cliCall(opt.repo, c, noCg);
  const plain = [];
  for (let i = 0; i < opt.runs; i++) plain.push(cliCall(opt.repo, c, noCg));
  cliCall(cgRepo, c);
  const cg = [];
  for (let i = 0; i < opt.runs; i++) cg.push(cliCall(cgRepo, c));
  if (plain[0].n !== cold[0].n || cg[0].n !== cold[0].n || warm[0].n !== cold[0].n) {
    throw new Error(`${c.name}: helper ${cold[0].n} commits, git ${plain[0].n} / ${cg[0].n}`);
  }
  const row = {
    figure: c.name, commits: cold[0].n,
    helper_ms: median(cold.map((x) => x.wall)), helper_cpu_ms: median(cold.map((x) => x.cpu)),
    helper_warm_ms: median(warm.map((x) => x.wall)), helper_warm_cpu_ms: median(warm.map((x) => x.cpu)),
    helper_rss_growth_kb: median(rss),
    git_ms: median(plain.map((x) => x.wall)), git_cg_ms: median(cg.map((x) => x.wall)),
    helper_range: [Math.min(...cold.map((x) => x.wall)), Math.max(...cold.map((x) => x.wall))],
    git_range: [Math.min(...plain.map((x) => x.wall)), Math.max(...plain.map((x) => x.wall))],
  };
  rows.push(row);
  if (opt.out) appendFileSync(opt.out, `${JSON.stringify({ kind: 'gitlog', ...row })}\n`);
}

const f = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(1) : x.toFixed(2));
console.log(`| git.log, medians of ${opt.runs} (ms) | commits | helper, first call (fresh helper) | its CPU | helper, warm (calls 3-6) | its CPU | helper RSS growth after the calls (MiB) | git log | git log, commit-graph with Bloom filters | helper first / git log | helper first / git log with Bloom |`);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.figure} | ${r.commits} | ${f(r.helper_ms)} | ${f(r.helper_cpu_ms)} | ${f(r.helper_warm_ms)} | ${f(r.helper_warm_cpu_ms)} | ${f(r.helper_rss_growth_kb / 1024)} | ${f(r.git_ms)} | ${f(r.git_cg_ms)} | ${(r.helper_ms / r.git_ms).toFixed(2)}x | ${(r.helper_ms / r.git_cg_ms).toFixed(2)}x |`);
}
