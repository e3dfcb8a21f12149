// Turns bench/run.sh's results.jsonl into the table of medians printed at the
// end of the run (and pasted into docs/performance.md).
// usage: node bench/report.mjs RESULTS.jsonl STORM_N IDLE_N IDLE_S
// env: BENCH_HELPER_DESC (git describe and hash of the binary), BENCH_LOAD
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
// One figure: medians over rounds of `key` for helper and peer runs matching
// pred; agg 'sum' adds instead. check(h, p, ratio) -> met?
function fig(figure, pred, key, target = '', check = null, { agg = 'median', gen = true } = {}) {
  const hv = vals('helper', pred, key);
  const pv = vals('peer', pred, key);
  const a = agg === 'sum' ? (xs) => (xs.length ? xs.reduce((x, y) => x + y, 0) : NaN) : median;
  const h = a(hv);
  const p = a(pv);
  const r = Number.isFinite(h) && Number.isFinite(p) && p !== 0 ? h / p : NaN;
  const genCol = gen
    ? `${fmt(median(vals('helper', pred, 'gen_cpu_us_per_op')))} / ${fmt(median(vals('peer', pred, 'gen_cpu_us_per_op')))}`
    : '';
  const noise = gen
    ? `${fmt(median(vals('helper', pred, 'others_cores')))} / ${fmt(median(vals('peer', pred, 'others_cores')))}`
    : '';
  const spread = agg === 'sum' ? '' : [range(hv), range(pv)].filter(Boolean).join(' / ');
  const met = check ? (check(h, p, r) ? 'yes' : '**NO**') : '';
  table.push([figure, fmt(h), fmt(p), Number.isFinite(r) ? `${fmt(r)}x` : 'n/a', spread, genCol, noise, target, met]);
  return { h, p, r };
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

fig(`auth storm ${stormN}: connections/s`, storm, 'conn_per_s', '>= 8x', (h, p, r) => r >= 8);
fig(`auth storm ${stormN}: time to all authenticated (ms)`, storm, 'time_to_all_ms');
fig('auth storm: failed connections (all rounds)', storm, 'failed', 'none failed', (h) => h === 0,
  { agg: 'sum', gen: false });
fig('server CPU per authenticated connection (us)', storm, 'srv_cpu_us_per_op', '<= 0.1x',
  (h, p, r) => r <= 0.1);
for (const [c, pred, rtTarget, rtMin] of [[16, ping16, '>= 1.7x', 1.7], [256, ping256, '>= 2.5x', 2.5]]) {
  fig(`ping c=${c}: round trips/s`, pred, 'rt_per_s', rtTarget, (h, p, r) => r >= rtMin);
  fig(`ping c=${c}: server CPU per round trip (us)`, pred, 'srv_cpu_us_per_op', '<= 0.6x',
    (h, p, r) => r <= 0.6);
  fig(`ping c=${c}: p50 latency (us)`, pred, 'p50_us', '', null, noGen);
  fig(`ping c=${c}: p99 latency (us)`, pred, 'p99_us', c === 256 ? '<= 0.33x' : '',
    c === 256 ? (h, p, r) => r <= 1 / 3 : null, noGen);
  fig(`ping c=${c}: max latency (us)`, pred, 'max_us', '', null, noGen);
}
fig('command workspace.info c=16: round trips/s', cmd16, 'rt_per_s');
fig('command workspace.info c=16: server CPU per command (us)', cmd16, 'srv_cpu_us_per_op',
  '<= 0.6x', (h, p, r) => r <= 0.6);
fig('command workspace.info c=16: p99 latency (us)', cmd16, 'p99_us', '', null, noGen);
fig(`idle: server RSS per authenticated connection (bytes, ${idleN} held)`, idle,
  'rss_per_conn_bytes', '<= 0.25x', (h, p, r) => r <= 0.25, noGen);
fig(`idle: RSS growth while held ${idleS} s (KiB)`, idle, 'rss_growth_kb',
  'no growth (< 64 B per held connection)', (h) => h * 1024 < 64 * Number(idleN), noGen);
fig(`idle: server CPU while holding them ${idleS} s, the c=16 ping run below included (ms)`, idle,
  'hold_srv_cpu_ms', '', null, noGen);
fig(`ping c=16 while the ${idleN} idle ones are held: round trips/s`, pingIdle, 'rt_per_s');
fig(`ping c=16 while the ${idleN} idle ones are held: server CPU per round trip (us)`, pingIdle,
  'srv_cpu_us_per_op');
fig(`ping c=16 while the ${idleN} idle ones are held: p99 latency (us)`, pingIdle, 'p99_us', '', null,
  noGen);
fig('idle: connections closed while held', idle, 'closed_while_idle', 'held', (h) => h === 0, noGen);
fig('idle: fewest WebSocket PINGs seen by one connection', idle, 'pings_per_conn_min',
  `>= ${Math.floor(idleS / 25)} (25 s interval)`, (h) => h >= Math.floor(idleS / 25), noGen);
fig('start-up: spawn to ready (ms) [helper: initialize reply; peer: port open]', start, 'ready_ms',
  '<= 10 ms', (h) => h <= 10, noGen);
fig('start-up: idle RSS (KiB)', start, 'idle_rss_kb', '<= 5 MiB', (h) => h <= 5120, noGen);
fig('start-up: idle RSS, anonymous only (KiB)', start, 'idle_rss_anon_kb', '', null, noGen);
fig('editor not reading stdout (--stdio), command c=16: round trips/s [helper only]', unread,
  'rt_per_s', 'never stalls', (h) => h > 0);
fig('editor not reading stdout: helper RSS after the run (KiB)', unread, 'rss_kb', 'bounded', null,
  noGen);
const cli = median([...vals('helper', git, 'cli_changed_ms'), ...vals('peer', git, 'cli_changed_ms')]);
const cliHot = median([...vals('helper', git, 'cli_hot_ms'), ...vals('peer', git, 'cli_hot_ms')]);
const g = fig('git.status 50,000 files, after a one-file change (ms)', git, 'changed_ms',
  `<= 0.5x git CLI (${fmt(cli)} ms)`, (h) => h <= cli / 2, noGen);
table[table.length - 1][7] += `: ${fmt(g.h / cli)}x`;
fig('git.status: server CPU per call, background work included (ms)', git, 'srv_cpu_ms_per_status',
  'peer: without its git child', null, noGen);
fig('git.status, nothing changed since the last call (ms)', git, 'hot_ms',
  `<= 5 ms (git CLI ${fmt(cliHot)} ms)`, (h) => h <= 5, noGen);

const cpu = (os.cpus()[0] || {}).model || 'unknown';
const out = [];
out.push(`Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
  `Linux ${os.release()}, node ${process.version}; helper ${process.env.BENCH_HELPER_DESC || 'unknown'}`);
out.push(`Rounds: ${pick('helper', storm).length}, alternating; medians. Load average over the run: ` +
  `${process.env.BENCH_LOAD || '?'}.`);
out.push('');
out.push('| figure | helper | peer | helper/peer | range over rounds (helper / peer) | generator CPU us/op (helper run / peer run) | others\' CPU, cores (helper run / peer run) | target | met |');
out.push('|---|---:|---:|---:|---|---:|---:|---|---|');
for (const r of table) out.push(`| ${r.join(' | ')} |`);
console.log(out.join('\n'));
