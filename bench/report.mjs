// Turns bench/run.sh's results.jsonl into the table of medians printed at the
// end of the run (and pasted into docs/performance.md).
// usage: node bench/report.mjs RESULTS.jsonl STORM_N IDLE_N IDLE_S
// env: BENCH_HELPER_DESC (git describe and hash of the binary), BENCH_LOAD,
// BENCH_MODE (fresh processes or long-running)
import { readFileSync } from 'node:fs';
import os from 'node:os';

const [file, stormN, idleN, idleS] = process.argv.slice(2);
const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const pick = (label, pred) => rows.filter((r) => r.label === label && pred(r));
const vals = (label, pred, key) => pick(label, pred).map((r) => r[key]).filter(Number.isFinite);

const fmt = (x) => {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toLocaleString('en-US');
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
};
const range = (xs) => (xs.length > 1 ? `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}` : '');

const table = [];
// The servers, in column order: the helper in serve mode, the helper in
// editor mode (--stdio, the stand-in reading its notifications), the Node
// peer, the floor (bench/floor.c).
const SERVERS = ['helper', 'editor', 'peer', 'floor'];
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN);
const fmtRatio = (r) => (Number.isFinite(r) ? `${fmt(r)}x` : 'n/a');
// One figure: medians over rounds of `key` for each server's runs matching
// pred; agg 'sum' adds instead. check(v) -> met?, where v has h, e, p, f
// (helper, editor, peer, floor) and hp, hf (helper/peer, helper/floor).
function fig(figure, pred, key, target = '', check = null, { agg = 'median', gen = true } = {}) {
  const a = agg === 'sum' ? (xs) => (xs.length ? xs.reduce((x, y) => x + y, 0) : NaN) : median;
  const per = Object.fromEntries(SERVERS.map((s) => [s, vals(s, pred, key)]));
  const [h, e, p, f] = SERVERS.map((s) => a(per[s]));
  const v = { h, e, p, f, hp: ratio(h, p), hf: ratio(h, f) };
  const slash = (xs) => xs.join(' / ');
  const genCol = gen ? slash(SERVERS.map((s) => fmt(median(vals(s, pred, 'gen_cpu_us_per_op'))))) : '';
  const noise = gen ? slash(SERVERS.map((s) => fmt(median(vals(s, pred, 'others_cores'))))) : '';
  const spread = agg === 'sum' ? '' : slash(SERVERS.map((s) => range(per[s]) || '-'));
  // A target whose figures were not measured (a server left out with
  // --servers) is n/a, not missed.
  let missing = false;
  if (check) check(new Proxy(v, { get: (o, k) => { if (!Number.isFinite(o[k])) missing = true; return o[k]; } }));
  const met = check ? (missing ? 'n/a' : check(v) ? 'yes' : '**NO**') : '';
  table.push([figure, fmt(h), fmt(e), fmt(p), fmt(f), fmtRatio(v.hp), fmtRatio(v.hf),
    fmtRatio(ratio(e, h)), spread, genCol, noise, target, met]);
  return v;
}

const storm = (r) => r.mode === 'auth-storm';
const ping16 = (r) => r.mode === 'ping' && r.c === 16 && !r.while_idle;
const pingIdle = (r) => r.mode === 'ping' && r.c === 16 && r.while_idle;
const unread = (r) => r.mode === 'stdio-unread';
const ping256 = (r) => r.mode === 'ping' && r.c === 256;
const cmd16 = (r) => r.mode === 'command' && r.c === 16;
const idle = (r) => r.mode === 'idle';
const start = (r) => r.mode === 'startup';
const git = (r) => r.mode === 'gitstatus';
const noGen = { gen: false };

// Targets: issue 20 (server CPU per ping and per command <= 1.3x the floor,
// ping p99 at c=256 <= 0.33x the peer, round trips/s >= 2x the peer at c=16
// and >= 2.5x at c=256, <= 1 KiB per idle authenticated connection); the
// others from the first round.
fig(`auth storm ${stormN}: connections/s`, storm, 'conn_per_s', '>= 8x peer', (v) => v.hp >= 8);
fig(`auth storm ${stormN}: time to all authenticated (ms)`, storm, 'time_to_all_ms');
fig('auth storm: failed connections (all rounds)', storm, 'failed', 'none failed',
  (v) => v.h === 0 && !(v.e > 0), { agg: 'sum', gen: false });
fig('server CPU per authenticated connection (us)', storm, 'srv_cpu_us_per_op', '<= 0.1x peer',
  (v) => v.hp <= 0.1);
for (const [c, pred, rtMin] of [[16, ping16, 2], [256, ping256, 2.5]]) {
  fig(`ping c=${c}: round trips/s`, pred, 'rt_per_s', `>= ${rtMin}x peer`, (v) => v.hp >= rtMin);
  fig(`ping c=${c}: server CPU per round trip (us)`, pred, 'srv_cpu_us_per_op', '<= 1.3x floor',
    (v) => v.hf <= 1.3);
  fig(`ping c=${c}: p50 latency (us)`, pred, 'p50_us', '', null, noGen);
  fig(`ping c=${c}: p99 latency (us)`, pred, 'p99_us', c === 256 ? '<= 0.33x peer' : '',
    c === 256 ? (v) => v.hp <= 1 / 3 : null, noGen);
  fig(`ping c=${c}: max latency (us)`, pred, 'max_us', '', null, noGen);
}
fig('command workspace.info c=16: round trips/s', cmd16, 'rt_per_s');
fig('command workspace.info c=16: server CPU per command (us)', cmd16, 'srv_cpu_us_per_op',
  '<= 1.3x floor', (v) => v.hf <= 1.3);
fig('command workspace.info c=16: p99 latency (us)', cmd16, 'p99_us', '', null, noGen);
fig(`idle: server RSS per authenticated connection (bytes, ${idleN} held)`, idle,
  'rss_per_conn_bytes', '<= 1 KiB', (v) => v.h <= 1024, noGen);
fig(`idle: RSS growth while held ${idleS} s (KiB)`, idle, 'rss_growth_kb',
  'no growth (< 64 B per held connection)', (v) => v.h * 1024 < 64 * Number(idleN), noGen);
fig(`idle: server CPU while holding them ${idleS} s, the c=16 ping run below included (ms)`, idle,
  'hold_srv_cpu_ms', '', null, noGen);
fig(`ping c=16 while the ${idleN} idle ones are held: round trips/s`, pingIdle, 'rt_per_s');
fig(`ping c=16 while the ${idleN} idle ones are held: server CPU per round trip (us)`, pingIdle,
  'srv_cpu_us_per_op');
fig(`ping c=16 while the ${idleN} idle ones are held: p99 latency (us)`, pingIdle, 'p99_us', '', null,
  noGen);
fig('idle: connections closed while held', idle, 'closed_while_idle', 'held', (v) => v.h === 0, noGen);
fig('idle: fewest WebSocket PINGs seen by one connection', idle, 'pings_per_conn_min',
  `>= ${Math.floor(idleS / 25)} (25 s interval)`, (v) => v.h >= Math.floor(idleS / 25), noGen);
fig('start-up: spawn to ready (ms) [editor: initialize reply; others: port open]', start, 'ready_ms',
  '<= 10 ms', (v) => v.h <= 10 && !(v.e > 10), noGen);
fig('start-up: idle RSS (KiB)', start, 'idle_rss_kb', '<= 5 MiB', (v) => v.h <= 5120, noGen);
fig('start-up: idle RSS, anonymous only (KiB)', start, 'idle_rss_anon_kb', '', null, noGen);
fig('editor not reading stdout (--stdio), command c=16: round trips/s [editor only]', unread,
  'rt_per_s', 'never stalls', (v) => v.e > 0);
fig('editor not reading stdout: helper RSS after the run (KiB)', unread, 'rss_kb', 'bounded', null,
  noGen);
const gitCli = (k) => median(SERVERS.flatMap((s) => vals(s, git, k)));
const cli = gitCli('cli_changed_ms');
const cliHot = gitCli('cli_hot_ms');
const g = fig('git.status 50,000 files, after a one-file change (ms) [no floor: it has no git]', git,
  'changed_ms', `<= 0.5x git CLI (${fmt(cli)} ms)`, (v) => v.h <= cli / 2, noGen);
table[table.length - 1][11] += `: ${fmt(g.h / cli)}x`;
fig('git.status: server CPU per call, background work included (ms)', git, 'srv_cpu_ms_per_status',
  'peer: without its git child', null, noGen);
fig('git.status, nothing changed since the last call (ms)', git, 'hot_ms',
  `<= 5 ms (git CLI ${fmt(cliHot)} ms)`, (v) => v.h <= 5, noGen);

// What editor mode costs: the helper's extra CPU against serve, the
// stand-in's CPU (an editor reading and parsing every notification), and
// the notifications themselves (companion/commandExecuted: the audit trail).
function editorCost() {
  const lines = [];
  const sum = (xs) => xs.reduce((x, y) => x + y, 0);
  const methods = (r) => (r.standin && r.standin.by_method) || {};
  const standins = rows.filter((r) => r.label === 'editor' && r.standin);
  for (const [what, pred, unit] of [['command workspace.info c=16', cmd16, 'command'],
    ['ping c=16', ping16, 'ping'], ['authenticated connection (auth storm)', storm, 'connection']]) {
    const h = median(vals('helper', pred, 'srv_cpu_us_per_op'));
    const e = median(vals('editor', pred, 'srv_cpu_us_per_op'));
    const x = median(vals('editor', pred, 'extra_cpu_us_per_op'));
    if (!Number.isFinite(e)) continue;
    lines.push(`- ${what}: helper ${fmt(e)} us per ${unit} in editor mode, ${fmt(h)} us in serve ` +
      `mode (${Number.isFinite(h) ? `${e - h >= 0 ? '+' : ''}${fmt(e - h)} us, ${fmtRatio(e / h)}` : 'n/a'}); ` +
      `the stand-in ${fmt(x)} us per ${unit} reading what the helper sent.`);
  }
  const done = sum(pick('editor', cmd16).map((r) => r.rt_all).filter(Number.isFinite));
  const ce = standins.map((r) => methods(r)['companion/commandExecuted']).filter(Boolean);
  const n = sum(ce.map((m) => m.n));
  const bytes = sum(ce.map((m) => m.bytes));
  if (done > 0 && n > 0) {
    lines.push(`- companion/commandExecuted: ${fmt(n / done)} notification per command answered, ` +
      `${fmt(bytes / n)} bytes each with its framing.`);
  }
  const all = {};
  for (const r of standins) {
    for (const [m, c] of Object.entries(methods(r))) {
      all[m] = all[m] || { n: 0, bytes: 0 };
      all[m].n += c.n;
      all[m].bytes += c.bytes;
    }
  }
  const list = Object.entries(all).map(([m, c]) => `${m} ${c.n.toLocaleString('en-US')} ` +
    `(${fmt(c.bytes / 1024)} KiB)`);
  if (list.length) lines.push(`- every notification the stand-in read: ${list.join(', ')}.`);
  return lines;
}

const cpu = (os.cpus()[0] || {}).model || 'unknown';
const out = [];
out.push(`Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
  `Linux ${os.release()}, node ${process.version}; helper ${process.env.BENCH_HELPER_DESC || 'unknown'}`);
const nRounds = Math.max(0, ...SERVERS.map((s) => pick(s, storm).length));
out.push(`Mode: ${process.env.BENCH_MODE || 'unknown'}.`);
out.push(`Rounds: ${nRounds}, order rotating; medians. Load average over the run: ` +
  `${process.env.BENCH_LOAD || '?'}.`);
out.push('helper: `companion-helper serve`; editor: `companion-helper --stdio` with the editor stand-in ' +
  '(bench/editor.c) reading every notification; peer: the Node peer; floor: bench/floor.c.');
out.push('');
out.push('| figure | helper | editor | peer | floor | helper/peer | helper/floor | editor/helper | range over rounds (helper / editor / peer / floor) | generator CPU us/op (helper / editor / peer / floor run) | others\' CPU, cores (helper / editor / peer / floor run) | target | met |');
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|');
for (const r of table) out.push(`| ${r.join(' | ')} |`);
const ec = editorCost();
if (ec.length) {
  out.push('');
  out.push('What editor mode costs (helper --stdio, every notification read by the stand-in):');
  out.push(...ec);
}
console.log(out.join('\n'));
