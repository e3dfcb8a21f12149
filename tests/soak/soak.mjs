// Soak: many clients for a while, mixing authentication, ping, commands,
// chat, task runs, subscriptions and disconnects against one helper. Prints
// the helper's memory curve; fails on any protocol error, on RSS growth
// after warm-up beyond the bound, on a task process left behind, or on a
// sanitizer report at exit.
//   node tests/soak/soak.mjs [--clients 1000] [--seconds 600] [--bin PATH]
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const CLIENTS = Number(arg('clients', 1000));
const SECONDS = Number(arg('seconds', 600));
const GROWTH_KB = Number(arg('growth-kb', 20 * 1024));
// Before the harness is imported: it reads HELPER_BIN once.
if (arg('bin')) process.env.HELPER_BIN = path.resolve(arg('bin'));

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = path.join(here, '../integration/lib/harness.mjs');
const { Editor } = await import(lib);
const { baseRepo, write } = await import(path.join(here, '../integration/lib/gitfix.mjs'));
const marker = `companion-soak-${process.pid}`;

const repo = baseRepo();
for (let i = 0; i < 200; i++) write(repo, `src/f${i}.txt`, `${i}\n`);
const ed = new Editor();
await ed.startServer({
  folders: [repo],
  settings: {
    limits: { maxConnections: CLIENTS + 100, maxUnauthenticated: CLIENTS + 100, commandsPerSecond: 1000, maxConcurrentTasks: 8 },
    heartbeat: { intervalSeconds: 5, timeoutSeconds: 30 },
    tasks: { short: { command: 'sh', args: ['-c', 'echo soak; sleep 0.2; echo done', marker] } },
  },
});
const rss = () => Number((execFileSync('cat', [`/proc/${ed.child.pid}/status`], { encoding: 'utf8' }).match(/VmRSS:\s+(\d+)/) || [])[1]);

const stats = { sessions: 0, requests: 0, errors: [], disconnects: 0 };
const deadline = Date.now() + SECONDS * 1000;
const fail = (what) => { if (stats.errors.length < 20) stats.errors.push(what); };

/* One simulated device: connects, authenticates, does a random mix of
 * work, sometimes vanishes without closing, and starts over. */
async function device(n) {
  const { connect } = await import(lib);
  while (Date.now() < deadline) {
    let c;
    try {
      c = await connect(ed.url);
      const a = await c.auth(ed.token({ sub: `dev${n}`, scope: 'read run' }), ed.workspaceId);
      if (!a.data.success) { fail(`auth: ${JSON.stringify(a.data)}`); return; }
      stats.sessions++;
      const rounds = 3 + (n % 7);
      for (let r = 0; r < rounds && Date.now() < deadline; r++) {
        const kind = (n + r) % 6;
        const id = `${n}-${r}`;
        let m;
        if (kind === 0) m = await c.request({ type: 'ping', id });
        else if (kind === 1) m = await c.command('workspace.info', undefined, id);
        else if (kind === 2) m = await c.command('git.status', undefined, id);
        else if (kind === 3) { c.send({ type: 'chat', id, data: { text: 'status' } }); m = await c.next((x) => x.id === id, 30000); }
        else if (kind === 4) { c.send({ type: 'subscribe', id, data: { events: ['task.finished'] } }); m = await c.next((x) => x.id === id, 30000); }
        else {
          c.send({ type: 'command', id, data: { name: 'task.run', args: { name: 'short' } } });
          m = await c.next((x) => x.id === id, 30000);
          if (m.type === 'stream_start') m = await c.next((x) => x.id === id && x.type === 'stream_end', 30000);
          else if (m.data?.error?.code === 'BUSY') m = { type: 'ok' };
        }
        stats.requests++;
        if (m.type === 'error' || (m.type === 'command_response' && !m.data.success)) fail(`${kind}: ${JSON.stringify(m.data)}`);
        await sleep(50 + (n * 13 + r * 7) % 400);
      }
      if (n % 5 === 0) { c.terminate(); stats.disconnects++; } else c.close();
    } catch (e) {
      fail(`device ${n}: ${e.message}`);
      if (c) c.terminate();
      await sleep(500);
    }
  }
}

console.log(`soak: ${CLIENTS} clients for ${SECONDS} s against ${process.env.HELPER_BIN || 'build/companion-helper'}`);
const curve = [];
const sampler = (async () => {
  while (Date.now() < deadline) {
    curve.push({ t: Math.round((SECONDS * 1000 - (deadline - Date.now())) / 1000), rssKb: rss() });
    await sleep(Math.max(1000, SECONDS * 50));
  }
})();
// Connect devices gradually: the storm itself is the auth benchmark's job.
const devices = [];
for (let i = 0; i < CLIENTS; i++) {
  devices.push(device(i));
  if (i % 50 === 49) await sleep(100);
}
await Promise.all(devices);
await sampler;
curve.push({ t: SECONDS, rssKb: rss() });
console.log('soak: memory curve (s: RSS kB): ' + curve.map((p) => `${p.t}:${p.rssKb}`).join(' '));
const warm = curve[Math.min(curve.length - 1, Math.floor(curve.length / 4))].rssKb;
const end = curve[curve.length - 1].rssKb;
const st = await ed.request('server/status', {});
const status = await ed.stop().then(() => 'stopped cleanly', (e) => `exit check failed: ${e.message}`);
let left = '';
try { left = execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim(); } catch { /* none */ }
console.log(`soak: ${stats.sessions} sessions, ${stats.requests} requests, ${stats.disconnects} abrupt disconnects, ${st.counters.commands} commands counted by the helper`);
const problems = [...stats.errors];
if (end - warm > GROWTH_KB) problems.push(`RSS grew ${end - warm} kB after warm-up (bound ${GROWTH_KB})`);
if (left) problems.push(`task processes left: ${left}`);
if (status !== 'stopped cleanly') problems.push(status);
if (stats.sessions === 0) problems.push('no session ran');
for (const p of problems) console.log(`soak: problem: ${p}`);
console.log(`soak: ${problems.length ? 0 : 1} passed, ${problems.length ? 1 : 0} failed`);
process.exit(problems.length ? 1 : 0);
