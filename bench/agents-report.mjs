// Turns bench/agent-relay.mjs's results (JSON lines) into the table that
// bench/agents.sh prints at the end (and docs/performance.md shows).
// usage: node bench/agents-report.mjs RESULTS.jsonl
// env: BENCH_HELPER_DESC (git describe and hash of the binary), BENCH_LOAD
import { readFileSync } from 'node:fs';
import os from 'node:os';

const rows = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const fmt = (x) => {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toLocaleString('en-US');
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
};
const vals = (label, mode, key) => rows.filter((r) => r.label === label && r.mode === mode).map((r) => r[key]).filter(Number.isFinite);
const range = (xs) => (xs.length > 1 ? `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}` : '');

const table = [];
/* One figure: medians over rounds of key in mode, helper and plain relay. */
function fig(figure, mode, key, { target = '', check = null, plain = true, diff = true } = {}) {
  const hv = vals('helper', mode, key);
  const pv = plain ? vals('plain', mode, key) : [];
  const h = median(hv);
  const p = plain ? median(pv) : NaN;
  const spread = [range(hv), range(pv)].filter(Boolean).join(' / ');
  const others = `${fmt(median(vals('helper', mode, 'others_cores')))}${plain ? ` / ${fmt(median(vals('plain', mode, 'others_cores')))}` : ''}`;
  const met = check ? (check(h, p) ? 'yes' : '**NO**') : '';
  table.push([figure, fmt(h), plain ? fmt(p) : 'n/a', plain && diff ? fmt(h - p) : '', spread,
    mode.startsWith('conv') ? '' : others, target, met]);
}

const rate = rows.find((r) => r.mode === 'rate');
const burst = rows.find((r) => r.mode === 'burst');
const flood = rows.find((r) => r.mode === 'flood');
const conv = rows.find((r) => r.mode === 'conv-new');
if (rate) {
  const what = `${rate.rate} chunks/s × ${rate.chunks}`;
  fig(`${what}: p50 latency, agent write → client receive (us)`, 'rate', 'p50_us');
  fig(`${what}: p90 latency (us)`, 'rate', 'p90_us');
  fig(`${what}: p99 latency (us)`, 'rate', 'p99_us', { target: '<= 1,000 (helper)', check: (h) => h <= 1000 });
  fig(`${what}: max latency (us)`, 'rate', 'max_us');
  fig(`${what}: server CPU per chunk (us, schedstat)`, 'rate', 'srv_cpu_us_per_chunk');
  fig(`${what}: server CPU per chunk (us, utime+stime)`, 'rate', 'srv_ticks_us_per_chunk');
  fig(`${what}: agent CPU per chunk (us)`, 'rate', 'agent_cpu_us_per_chunk', { diff: false });
  fig(`${what}: client CPU per chunk (us)`, 'rate', 'client_cpu_us_per_chunk', { diff: false });
}
if (burst) {
  const what = `burst × ${burst.chunks}`;
  fig(`${what}: chunks/s at the client`, 'burst', 'chunks_per_s');
  fig(`${what}: p50 latency (us)`, 'burst', 'p50_us');
  fig(`${what}: p99 latency (us)`, 'burst', 'p99_us');
  fig(`${what}: max latency (us)`, 'burst', 'max_us');
  fig(`${what}: server CPU per chunk (us, schedstat)`, 'burst', 'srv_cpu_us_per_chunk');
  fig(`server RSS growth after the warm-up, ${rate ? `${rate.chunks} + ` : ''}${burst.chunks} small chunks in one conversation (KiB)`, 'burst', 'rss_kept_kb', { diff: false });
  fig(`${what}: agent CPU per chunk (us)`, 'burst', 'agent_cpu_us_per_chunk', { diff: false });
  fig(`${what}: client CPU per chunk (us)`, 'burst', 'client_cpu_us_per_chunk', { diff: false });
}
if (flood) {
  const what = `${fmt(flood.bytes / 1048576)} MiB answer`;
  const complete = rows.filter((r) => r.mode === 'flood').every((r) => r.complete && r.stop === 'end_turn');
  fig(`${what}: MiB/s at the client`, 'flood', 'mb_per_s');
  fig(`${what}: server RSS before (KiB)`, 'flood', 'rss_before_kb', { diff: false });
  fig(`${what}: server RSS peak (KiB; VmHWM, reset before, and samples every 50 ms)`, 'flood', 'rss_peak_kb', { diff: false });
  fig(`${what}: server RSS at the end (KiB)`, 'flood', 'rss_end_kb', { diff: false });
  fig(`${what}: server RSS growth, peak − before (KiB)`, 'flood', 'rss_growth_peak_kb',
    { target: 'flat (helper)', check: (h) => h <= 1024, diff: false });
  fig(`${what}: server CPU per 4 KiB chunk (us)`, 'flood', 'srv_cpu_us_per_chunk');
  table.push([`${what}: every byte read by the client, end_turn (all rounds)`, complete ? 'yes' : '**NO**',
    '', '', '', '', 'all', complete ? 'yes' : '**NO**']);
}
if (conv) {
  const n = conv.n;
  fig(`helper RSS per idle conversation (bytes; ${n} agent.new)`, 'conv-new', 'rss_per_conv_bytes', { plain: false });
  fig(`helper PSS per idle conversation (bytes; ${n} agent.new)`, 'conv-new', 'pss_per_conv_bytes', { plain: false });
  fig(`helper RSS per conversation after one short turn (bytes; ${n} turns)`, 'conv-turn', 'rss_per_conv_bytes', { plain: false });
  fig(`helper PSS per conversation after one short turn (bytes; ${n} turns)`, 'conv-turn', 'pss_per_conv_bytes', { plain: false });
  fig('helper RSS with no conversation, agent started (KiB)', 'conv-new', 'rss0_kb', { plain: false });
}

const cpu = (os.cpus()[0] || {}).model || 'unknown';
const out = [];
out.push(`Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
  `Linux ${os.release()}, node ${process.version}; helper ${process.env.BENCH_HELPER_DESC || 'unknown'}`);
out.push(`Rounds: ${vals('helper', 'conv-new', 'n').length || vals('helper', 'rate', 'chunks').length}, ` +
  `alternating; medians. Load average over the run: ${process.env.BENCH_LOAD || '?'}.`);
out.push('');
out.push('| figure | helper | plain relay | helper − plain | range over rounds (helper / plain) | others\' CPU, cores (helper / plain) | target | met |');
out.push('|---|---:|---:|---:|---|---:|---|---|');
for (const r of table) out.push(`| ${r.join(' | ')} |`);
console.log(out.join('\n'));
