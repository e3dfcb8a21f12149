#!/usr/bin/env node
// Drives the real Claude Code ACP adapter (@zed-industries/claude-agent-acp)
// against a scripted Messages API on 127.0.0.1, so nothing leaves the machine.
// Not part of CI or scripts/test.sh: see README.md beside this file.
//
//   node tests/agents-real/claude-acp.mjs            # through companion-helper serve (agent.prompt)
//   node tests/agents-real/claude-acp.mjs --direct   # the adapter alone, with the official ACP SDK client
//
// Options: --timeout SECONDS (overall, default 240), --quiet (no per-message lines),
// --keep (keep the scratch folders and print where they are).
// Environment: HELPER_BIN (default build/companion-helper),
// CLAUDE_ACP_JS (the adapter's dist/index.js; default: installed on first use
// into $AGENTS_REAL_CACHE, ~/.cache/companion-agents-real by default).
//
// Exit status: 0 when every step passed, 1 when one failed (the summary says which).
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHmac, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startMessagesApi, describeRequests, TOOL_COMMAND } from './lib/messages-api.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const INTEGRATION = path.join(ROOT, 'tests/integration');
const HELPER_BIN = process.env.HELPER_BIN || path.join(ROOT, 'build/companion-helper');
const CACHE = process.env.AGENTS_REAL_CACHE || path.join(os.homedir(), '.cache/companion-agents-real');
const ADAPTER_PKG = '@zed-industries/claude-agent-acp';
const ADAPTER_RANGE = '0.23';

const argv = process.argv.slice(2);
const DIRECT = argv.includes('--direct');
const QUIET = argv.includes('--quiet');
const KEEP = argv.includes('--keep');
const TIMEOUT_S = Number(argv[argv.indexOf('--timeout') + 1]) || 240;

const PROMPT_PLAIN = 'Show me a hello world program in C.';
const PROMPT_TOOL = 'Write hi to hi.txt with echo hi, show the file, and tell me what it printed.';
const RUN_MARK = `companion-agents-real-${process.pid}-${randomBytes(4).toString('hex')}`;

// ---------------------------------------------------------------------------
// Output, steps, cleanup
// ---------------------------------------------------------------------------

const t0 = Date.now();
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(3)}s`.padStart(9);
const say = (...a) => console.log(stamp(), ...a);
const show = (...a) => { if (!QUIET) say(...a); };
const clip = (s, n = 300) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const steps = []; // {name, ok, detail}
function step(name, ok, detail = '') {
  steps.push({ name, ok, detail });
  say(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
  return ok;
}
class StepError extends Error {}
function fail(name, detail) {
  step(name, false, detail);
  const e = new StepError(`${name}: ${detail}`);
  e.recorded = true;
  throw e;
}

/* Rejects after ms with a message naming what was awaited. */
function within(ms, what, promise) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => { t = setTimeout(() => rej(new StepError(`${what}: nothing within ${ms / 1000} s`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

const children = []; // ChildProcess started here
const scratch = [];
let apiServer = null;

function mkScratch(prefix) {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  scratch.push(d);
  return d;
}

/* Every process whose environment carries this run's mark: the adapter, the
 * Claude CLI under it, and anything they started (also when the helper
 * started them in a process group of their own). */
function markedPids() {
  const pids = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/environ`, 'latin1').includes(`COMPANION_AGENTS_REAL_RUN=${RUN_MARK}`)) pids.push(Number(e));
    } catch { /* gone or not ours */ }
  }
  return pids;
}

let cleanedUp = false;
function killEverything() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    }
  }
  for (const pid of markedPids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  if (KEEP) {
    if (scratch.length) console.log(`kept: ${scratch.join(' ')}`);
  } else {
    for (const d of scratch) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* busy */ } }
  }
}
process.on('exit', killEverything);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { say(`${sig}: stopping`); killEverything(); process.exit(130); });
}

/* Spawns in its own process group (so the whole group can be killed) and
 * keeps stderr. */
function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...opts });
  children.push(child);
  child.stderrText = '';
  child.stderr.on('data', (d) => {
    child.stderrText += d.toString();
    if (child.stderrText.length > 200000) child.stderrText = child.stderrText.slice(-100000);
  });
  child.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  child.on('error', (e) => { child.spawnError = e; });
  return child;
}

/* SIGTERM the group (or the process alone), SIGKILL the group after graceMs. */
async function stopChild(child, graceMs = 5000, { group = true } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  try { process.kill(group ? -child.pid : child.pid, 'SIGTERM'); } catch { child.kill('SIGTERM'); }
  const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
  const s = await child.exited;
  clearTimeout(t);
  return s;
}

const tail = (text, lines = 25) => text.split('\n').slice(-lines).join('\n');

// ---------------------------------------------------------------------------
// Dependencies: ws, jsonwebtoken and the ACP SDK from tests/integration; the
// adapter from the cache folder (installed with npm on first use).
// ---------------------------------------------------------------------------

async function loadIntegrationDeps() {
  const req = createRequire(path.join(INTEGRATION, 'package.json'));
  const load = async (name) => {
    try {
      return await import(pathToFileURL(req.resolve(name)).href);
    } catch (e) {
      fail('dependencies', `${name} not found from ${INTEGRATION} (run \`npm ci\` there): ${e.message}`);
    }
  };
  const [ws, jwt, acp] = [await load('ws'), await load('jsonwebtoken'), await load('@agentclientprotocol/sdk')];
  return { WebSocket: ws.default || ws.WebSocket, jwt: jwt.default || jwt, acp };
}

function adapterPath() {
  if (process.env.CLAUDE_ACP_JS) {
    if (!fs.existsSync(process.env.CLAUDE_ACP_JS)) fail('adapter', `CLAUDE_ACP_JS=${process.env.CLAUDE_ACP_JS} does not exist`);
    return process.env.CLAUDE_ACP_JS;
  }
  const js = path.join(CACHE, 'node_modules', ADAPTER_PKG, 'dist/index.js');
  if (!fs.existsSync(js)) {
    say(`installing ${ADAPTER_PKG}@${ADAPTER_RANGE} into ${CACHE} (npm)`);
    fs.mkdirSync(CACHE, { recursive: true });
    const pj = path.join(CACHE, 'package.json');
    if (!fs.existsSync(pj)) fs.writeFileSync(pj, '{"name":"companion-agents-real","private":true}\n');
    try {
      execFileSync('npm', ['install', '--no-audit', '--no-fund', `${ADAPTER_PKG}@${ADAPTER_RANGE}`],
        { cwd: CACHE, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300000 });
    } catch (e) {
      fail('adapter', `npm install ${ADAPTER_PKG}@${ADAPTER_RANGE} in ${CACHE} failed: ${e.message}`);
    }
  }
  const version = JSON.parse(fs.readFileSync(path.join(path.dirname(js), '../package.json'), 'utf8')).version;
  step('adapter', true, `${ADAPTER_PKG} ${version} at ${js} (node ${process.version})`);
  return js;
}

/* The environment the adapter runs with: the scripted API, a scratch HOME
 * (no real Claude login or settings), no telemetry. */
function agentEnv(apiUrl, home) {
  const env = {
    ANTHROPIC_BASE_URL: apiUrl,
    ANTHROPIC_API_KEY: 'test',
    HOME: home,
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DEBUG_CLAUDE_AGENT_SDK: '1', // the CLI's debug log goes to $HOME/.claude/debug/
    COMPANION_AGENTS_REAL_RUN: RUN_MARK,
  };
  // As root: the adapter offers bypassPermissions, and passes the CLI
  // --allow-dangerously-skip-permissions, whenever IS_SANDBOX is set to
  // anything; the CLI then exits at start ("cannot be used with root/sudo",
  // seen as session/new -32603 "Query closed before response received")
  // unless IS_SANDBOX is exactly "1". The variable is inherited, so pin it.
  if (process.getuid?.() === 0) env.IS_SANDBOX = '1';
  return env;
}

function gitWorkspace() {
  const dir = mkScratch('agents-real-ws-');
  execFileSync('git', ['init', '-q', dir]);
  fs.writeFileSync(path.join(dir, 'README.md'), '# scratch workspace for agents-real\n');
  execFileSync('git', ['-C', dir, 'add', '.']);
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-qm', 'init']);
  return dir;
}

function claudeDebugLogs(home) {
  const d = path.join(home, '.claude/debug');
  try { return fs.readdirSync(d).map((f) => path.join(d, f)); } catch { return []; }
}

// ---------------------------------------------------------------------------
// --direct: the adapter with the official SDK client
// ---------------------------------------------------------------------------

function describeUpdate(u) {
  const k = u.sessionUpdate;
  switch (k) {
    case 'agent_message_chunk':
    case 'agent_thought_chunk':
    case 'user_message_chunk':
      return `${k} ${u.content?.type === 'text' ? JSON.stringify(u.content.text) : JSON.stringify(u.content)}`;
    case 'tool_call':
      return `${k} id=${u.toolCallId} title=${JSON.stringify(u.title)} kind=${u.kind} status=${u.status}`;
    case 'tool_call_update':
      return `${k} id=${u.toolCallId} status=${u.status ?? '-'}${u.title ? ` title=${JSON.stringify(u.title)}` : ''}${u.content ? ` content=${clip(JSON.stringify(u.content), 160)}` : ''}`;
    case 'plan':
      return `${k} ${u.entries?.length} entries`;
    case 'available_commands_update':
      return `${k} ${u.availableCommands?.length} commands`;
    case 'current_mode_update':
      return `${k} ${u.currentModeId}`;
    default:
      return `${k} ${clip(JSON.stringify(u), 200)}`;
  }
}

async function runDirect(deps, js, api) {
  const { acp } = deps;
  const home = mkScratch('agents-real-home-');
  const ws = gitWorkspace();
  const child = start(process.execPath, [js], { cwd: ws, env: { ...process.env, ...agentEnv(api.url, home) } });
  await sleep(50);
  if (child.spawnError) fail('spawn', child.spawnError.message);

  const updates = [];
  const permissions = [];
  let permissionAnswer = null;
  let policy = 'allow'; // 'allow' | 'reject' | 'hold' (answered "cancelled" after session/cancel)
  let released = null;
  let onUpdate = () => {};
  const app = acp.client({ name: 'agents-real' })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      updates.push({ at: Date.now(), params });
      show(`A>C session/update ${describeUpdate(params.update)}`);
      onUpdate(params);
    })
    .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
      const at = Date.now();
      permissions.push({ at, params });
      show(`A>C session/request_permission toolCall=${clip(JSON.stringify(params.toolCall), 400)}`);
      show(`    options: ${params.options.map((o) => `${o.optionId}(${o.kind}) "${o.name}"`).join(', ')}`);
      if (policy === 'hold') {
        await new Promise((r) => { released = r; });
        permissionAnswer = { optionId: null, tookMs: Date.now() - at };
        show('C>A permission answer: cancelled');
        return { outcome: { outcome: 'cancelled' } };
      }
      const kind = policy === 'reject' ? 'reject_once' : 'allow_once';
      const pick = params.options.find((o) => o.kind === kind) || params.options[0];
      permissionAnswer = { optionId: pick.optionId, tookMs: Date.now() - at };
      show(`C>A permission answer: selected ${pick.optionId}`);
      return { outcome: { outcome: 'selected', optionId: pick.optionId } };
    });
  const stream = acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
  const conn = app.connect(stream);
  const died = child.exited.then((s) => { throw new StepError(`adapter exited (${JSON.stringify(s)}); stderr:\n${tail(child.stderrText)}`); });
  const call = (what, ms, p) => within(ms, what, Promise.race([p, died]));

  let init;
  try {
    init = await call('initialize', 30000, conn.agent.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
      clientInfo: { name: 'agents-real', version: '1' },
    }));
  } catch (e) { fail('initialize', e.message); }
  const caps = init.agentCapabilities || {};
  step('initialize', true, `protocolVersion ${init.protocolVersion}, agent ${init.agentInfo?.name} ${init.agentInfo?.version}, loadSession ${caps.loadSession === true}, authMethods [${(init.authMethods || []).map((m) => m.id).join(', ')}]`);
  show(`    agentCapabilities ${JSON.stringify(caps)}`);

  let session;
  const tNew = Date.now();
  try {
    session = await call('session/new', 90000, conn.agent.request(acp.methods.agent.session.new, { cwd: ws, mcpServers: [] }));
  } catch (e) {
    const logs = claudeDebugLogs(home);
    fail('session/new', `${e.message}${e.data ? ` ${JSON.stringify(e.data)}` : ''}${logs.length ? `\n  CLI debug log: ${logs.join(' ')}` : ''}\n  adapter stderr:\n${tail(child.stderrText)}`);
  }
  step('session/new', true, `sessionId ${session.sessionId} in ${Date.now() - tNew} ms; modes [${(session.modes?.availableModes || []).map((m) => m.id).join(', ')}] current ${session.modes?.currentModeId}; models ${(session.models?.availableModels || []).length}`);

  const turn = async (name, text) => {
    const from = updates.length;
    const t = Date.now();
    let first = null;
    onUpdate = (p) => { if (first === null && p.update.sessionUpdate === 'agent_message_chunk') first = Date.now() - t; };
    let res;
    try {
      res = await call(`session/prompt (${name})`, 120000, conn.agent.request(acp.methods.agent.session.prompt, {
        sessionId: session.sessionId, prompt: [{ type: 'text', text }],
      }));
    } catch (e) {
      fail(`prompt ${name}`, `${e.message}\n  adapter stderr:\n${tail(child.stderrText)}`);
    }
    const got = updates.slice(from).map((u) => u.params.update);
    const kinds = {};
    for (const u of got) kinds[u.sessionUpdate] = (kinds[u.sessionUpdate] || 0) + 1;
    const textOut = got.filter((u) => u.sessionUpdate === 'agent_message_chunk' && u.content?.type === 'text').map((u) => u.content.text).join('');
    return { res, got, kinds, textOut, ms: Date.now() - t, firstChunkMs: first };
  };

  const a = await turn('plain', PROMPT_PLAIN);
  const fenced = /```c[\s\S]*```/.test(a.textOut);
  step('prompt plain', a.res.stopReason === 'end_turn' && fenced,
    `stopReason ${a.res.stopReason}, ${a.kinds.agent_message_chunk || 0} message chunks (first after ${a.firstChunkMs} ms), fenced block intact ${fenced}, ${a.ms} ms; updates ${JSON.stringify(a.kinds)}`);

  const b = await turn('tool', PROMPT_TOOL);
  const perm = permissions[0];
  const toolCalls = b.got.filter((u) => u.sessionUpdate === 'tool_call');
  const toolDone = b.got.filter((u) => u.sessionUpdate === 'tool_call_update' && u.status);
  step('permission asked', !!perm,
    perm ? `toolCallId ${perm.params.toolCall?.toolCallId}, title ${JSON.stringify(perm.params.toolCall?.title)}, options [${perm.params.options.map((o) => `${o.optionId}/${o.kind}`).join(', ')}], answered ${permissionAnswer?.optionId}` : 'no session/request_permission came');
  step('prompt tool', b.res.stopReason === 'end_turn' && /hi/.test(b.textOut),
    `stopReason ${b.res.stopReason}, final text ${JSON.stringify(clip(b.textOut, 120))}, tool_call ${toolCalls.length}, tool_call_update with status [${toolDone.map((u) => u.status).join(', ')}], ${b.ms} ms; updates ${JSON.stringify(b.kinds)}`);

  const wrote = fs.existsSync(path.join(ws, 'hi.txt'));
  step('tool ran in the workspace', wrote, wrote ? 'hi.txt written' : 'no hi.txt in the workspace');

  // Denied: the tool must not run and the turn still ends normally.
  fs.rmSync(path.join(ws, 'hi.txt'), { force: true });
  policy = 'reject';
  const c = await turn('denied', PROMPT_TOOL);
  const cUpd = c.got.filter((u) => u.sessionUpdate === 'tool_call_update' && u.status).map((u) => u.status);
  step('prompt denied', c.res.stopReason === 'end_turn' && !fs.existsSync(path.join(ws, 'hi.txt')),
    `stopReason ${c.res.stopReason}, tool statuses [${cUpd.join(', ')}], permission requests so far ${permissions.length}, text ${JSON.stringify(clip(c.textOut, 120))}`);

  // Cancelled while the permission is pending: session/cancel, then the
  // client answers the open request "cancelled" (ACP requires it).
  policy = 'hold';
  const asked = permissions.length;
  const dTurn = turn('cancelled', PROMPT_TOOL);
  await within(60000, 'permission for the cancel test', (async () => { while (permissions.length === asked) await sleep(20); })());
  const tCancel = Date.now();
  await conn.agent.notify(acp.methods.agent.session.cancel, { sessionId: session.sessionId });
  await sleep(200);
  if (released) released();
  const d = await dTurn;
  step('prompt cancelled', d.res.stopReason === 'cancelled',
    `stopReason ${d.res.stopReason} ${Date.now() - tCancel} ms after session/cancel; updates ${JSON.stringify(d.kinds)}`);

  // The session after a cancelled turn. Seen with 0.23.1: the first prompt
  // after the cancel ends at once (end_turn, no text) while the CLI sends the
  // cancelled tool's result to the model in the background; the next works.
  policy = 'allow';
  const e = await turn('after cancel', PROMPT_PLAIN);
  show(`    first prompt after cancel: stopReason ${e.res.stopReason}, ${e.kinds.agent_message_chunk || 0} message chunks, ${e.ms} ms`);
  const e2 = await turn('after cancel 2', PROMPT_PLAIN);
  const fenced2 = /```c[\s\S]*```/.test(e2.textOut);
  step('prompts after cancel', e2.res.stopReason === 'end_turn' && fenced2,
    `1st: ${e.res.stopReason} with ${e.kinds.agent_message_chunk || 0} chunks in ${e.ms} ms; 2nd: ${e2.res.stopReason} with ${e2.kinds.agent_message_chunk || 0} chunks, answer intact ${fenced2}, text ${JSON.stringify(clip(e2.textOut, 200))}`);

  // Stopping: stdin EOF alone, then SIGTERM.
  const tClose = Date.now();
  child.stdin.end();
  const closed = await within(5000, 'exit', child.exited).catch(() => null);
  const eof = closed ? `stdin EOF ended it in ${Date.now() - tClose} ms` : 'still running 5 s after stdin EOF';
  const tTerm = Date.now();
  if (!closed) { try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ } }
  const termed = closed || await within(5000, 'exit after SIGTERM', child.exited).catch(() => null);
  await sleep(300);
  const left = markedPids();
  step('stop', !!termed && left.length === 0,
    `${eof}${closed ? '' : `; SIGTERM: ${termed ? `exit ${JSON.stringify(termed)} in ${Date.now() - tTerm} ms` : 'still running after 5 s'}`}; processes left ${left.length ? left.join(' ') : 'none'}`);
  await stopChild(child);
  return { home };
}

// ---------------------------------------------------------------------------
// Through the helper: companion-helper serve + agent.prompt over ws
// ---------------------------------------------------------------------------

/* A ws client that queues messages; next(pred) takes the first match. */
function wsClient(WebSocket, url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const c = { ws, queue: [], waiters: [], all: [], closed: null };
    const wake = () => { const w = c.waiters; c.waiters = []; w.forEach((f) => f()); };
    ws.on('message', (d) => {
      let m;
      try { m = JSON.parse(d.toString()); } catch { m = { unparsable: d.toString() }; }
      m.receivedAt = Date.now();
      c.queue.push(m);
      c.all.push(m);
      if (c.onMessage) c.onMessage(m);
      wake();
    });
    ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; wake(); });
    ws.on('error', (e) => { c.error = e; wake(); });
    c.send = (o) => ws.send(JSON.stringify(o));
    c.next = async (pred, ms, what) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = c.queue.findIndex(pred);
        if (i >= 0) return c.queue.splice(i, 1)[0];
        if (c.closed) throw new StepError(`${what}: connection closed (${c.closed.code} ${c.closed.reason})`);
        const left = deadline - Date.now();
        if (left <= 0) throw new StepError(`${what}: nothing within ${ms / 1000} s`);
        await new Promise((r) => { c.waiters.push(r); setTimeout(r, Math.min(left, 200)); });
      }
    };
    let n = 0;
    c.command = async (name, args, ms = 15000) => {
      const id = `q${++n}`;
      c.send({ type: 'command', id, data: { name, args } });
      return c.next((m) => m.id === id && m.type === 'command_response', ms, name);
    };
    ws.once('open', () => resolve(c));
    ws.once('error', reject);
  });
}

function describeChunk(d) {
  switch (d.kind) {
    case 'message':
    case 'thought':
      return `${d.kind} ${JSON.stringify(d.text)}`;
    case 'tool':
      return `tool ${d.toolCallId} ${JSON.stringify(d.title)} ${d.status}`;
    case 'permission':
      return `permission approval ${d.approvalId} tool ${d.toolCallId} ${JSON.stringify(d.title)} options [${(d.options || []).join(', ')}] expiresAt ${d.expiresAt}`;
    case 'permission_resolved':
      return `permission_resolved approval ${d.approvalId} ${d.outcome} by ${JSON.stringify(d.decidedBy)}`;
    default:
      return clip(JSON.stringify(d), 300);
  }
}

async function runHelper(deps, js, api) {
  const { WebSocket, jwt } = deps;
  if (!fs.existsSync(HELPER_BIN)) fail('helper binary', `${HELPER_BIN} not found (build with cmake, or set HELPER_BIN)`);
  const version = execFileSync(HELPER_BIN, ['--version'], { encoding: 'utf8' }).trim();
  step('helper binary', true, `${version} at ${HELPER_BIN}`);

  const helperHome = mkScratch('agents-real-helper-');
  const agentHome = mkScratch('agents-real-home-');
  const ws = gitWorkspace();
  const henv = {
    XDG_CONFIG_HOME: path.join(helperHome, 'config'),
    XDG_STATE_HOME: path.join(helperHome, 'state'),
    HOME: helperHome,
  };
  fs.mkdirSync(henv.XDG_CONFIG_HOME, { recursive: true });
  const cfg = path.join(helperHome, 'companion.json');
  const settings = {
    server: { host: '127.0.0.1', port: 0 },
    log: { level: 'debug' },
    agents: { claude: { command: process.execPath, args: [js], env: agentEnv(api.url, agentHome) } },
    defaultAgent: 'claude',
    limits: { agentStartTimeoutSeconds: 90, agentTurnTimeoutSeconds: 300 },
  };
  fs.writeFileSync(cfg, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  show(`helper config ${cfg}:\n${JSON.stringify(settings, null, 2)}`);

  const helper = start(HELPER_BIN, ['serve', '--workspace', ws, '--config', cfg, '--port', '0'], {
    cwd: ws, env: { ...process.env, ...henv }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  helper.stdout.on('data', (d) => { out += d.toString(); });
  try {
    await within(15000, 'serve banner', (async () => {
      while (!out.includes('Press Ctrl+C')) {
        if (helper.exitCode !== null) throw new StepError(`serve exited ${helper.exitCode}:\n${tail(helper.stderrText)}`);
        await sleep(25);
      }
    })());
  } catch (e) { fail('serve', `${e.message}\n${tail(helper.stderrText)}`); }
  const field = (name) => (out.match(new RegExp(`${name}:\\s+(\\S+)`)) || [])[1];
  const url = field('URL');
  const workspaceId = field('Workspace id');
  step('serve', !!(url && workspaceId), `${url} workspace ${workspaceId}`);

  // The token: signed with this workspace's key, derived from the stored
  // secret exactly as serve and token do (docs/security.md).
  const secret = fs.readFileSync(path.join(henv.XDG_CONFIG_HOME, 'companion/secret'), 'utf8').replace(/\n$/, '');
  const key = createHmac('sha256', secret).update(`companion-workspace-key/v1:${workspaceId}`).digest('hex');
  const token = jwt.sign({ sub: 'agents-real', workspaceId, scope: 'read agent approve' }, key, { algorithm: 'HS256', expiresIn: '1h' });

  const c = await wsClient(WebSocket, url);
  c.onMessage = (m) => {
    if (m.type === 'stream_chunk') show(`< ${m.id} chunk ${describeChunk(m.data)}`);
    else if (m.type === 'agent_update') show(`< agent_update ${m.data.conversation}#${m.data.seq} ${describeChunk(m.data.chunk)}`);
    else show(`< ${clip(JSON.stringify(m), 600)}`);
  };
  c.send({ type: 'auth', id: 'a1', data: { token, workspaceId } });
  const auth = await c.next((m) => m.id === 'a1', 10000, 'auth');
  if (!auth.data?.success) fail('auth', JSON.stringify(auth.data));
  const scopes = auth.data.scopes || [];
  if (!scopes.includes('agent')) fail('auth', `granted scopes [${scopes.join(', ')}]: this helper does not know the agent scope yet`);
  step('auth', true, `scopes [${scopes.join(', ')}]`);

  // Approval events too (the editor's and a chat's view of the same permission).
  c.send({ type: 'subscribe', id: 's1', data: { events: ['approval.requested', 'approval.resolved', 'agent.turn_finished'] } });
  const sub = await c.next((m) => m.id === 's1', 5000, 'subscribe').catch((e) => ({ error: e.message }));
  if (sub.type !== 'subscribed') say(`note: subscribe answered ${clip(JSON.stringify(sub), 300)}`);

  const list = await c.command('agent.list', {});
  if (!list.data?.success) fail('agent.list', JSON.stringify(list.data));
  const claude = (list.data.result.agents || []).find((a) => a.name === 'claude');
  step('agent.list', !!claude, JSON.stringify(list.data.result.agents));

  /* One agent.prompt; onPermission(chunk) may answer it ('approve' or 'cancel'). */
  const turn = async (id, text, conversation, { onPermission = null } = {}) => {
    const t = Date.now();
    const args = conversation ? { text, conversation } : { text };
    c.send({ type: 'command', id, data: { name: 'agent.prompt', args } });
    const first = await c.next((m) => m.id === id && (m.type === 'stream_start' || m.type === 'command_response'), 120000, `agent.prompt ${id}`);
    if (first.type === 'command_response') fail(`agent.prompt ${id}`, `refused: ${JSON.stringify(first.data)}`);
    const r = { start: first.data, chunks: [], kinds: {}, text: '', permission: null, resolved: null, answer: null, ms: 0, firstChunkMs: null };
    for (;;) {
      const m = await c.next((x) => x.id === id && (x.type === 'stream_chunk' || x.type === 'stream_end'), 240000, `agent.prompt ${id} stream`);
      if (m.type === 'stream_end') { r.end = m.data; break; }
      const d = m.data;
      r.chunks.push(d);
      r.kinds[d.kind] = (r.kinds[d.kind] || 0) + 1;
      if (d.kind === 'message') {
        if (r.firstChunkMs === null) r.firstChunkMs = Date.now() - t;
        r.text += d.text;
      }
      if (d.kind === 'permission') {
        r.permission = { ...d, at: Date.now() };
        if (onPermission === 'approve') {
          const res = await c.command('approve', { approvalId: d.approvalId, decision: 'allow_once' });
          r.answer = { ...res.data, ms: Date.now() - r.permission.at };
        } else if (onPermission === 'cancel') {
          const res = await c.command('agent.cancel', { conversation: r.start.conversation });
          r.answer = { ...res.data, ms: Date.now() - r.permission.at };
        }
      }
      if (d.kind === 'permission_resolved') r.resolved = { ...d, afterAskMs: r.permission ? Date.now() - r.permission.at : null };
    }
    r.ms = Date.now() - t;
    return r;
  };
  const helperLog = () => `\n  helper log:\n${tail(helper.stderrText, 40)}`;

  let a;
  try { a = await turn('p1', PROMPT_PLAIN); } catch (e) { fail('agent.prompt plain', `${e.message}${helperLog()}`); }
  const fenced = /```c[\s\S]*```/.test(a.text);
  step('stream_start', !!a.start?.conversation, JSON.stringify(a.start));
  step('prompt plain', a.end?.stopReason === 'end_turn' && fenced,
    `stopReason ${a.end?.stopReason}${a.end?.message ? ` (${a.end.message})` : ''}, ${a.kinds.message || 0} message chunks (first after ${a.firstChunkMs} ms), fenced block intact ${fenced}, ${a.ms} ms; chunks ${JSON.stringify(a.kinds)}`);
  const conversation = a.start.conversation;

  // A second device follows the conversation: replay of turn 1, then live.
  const f = await wsClient(WebSocket, url);
  f.send({ type: 'auth', id: 'a2', data: { token, workspaceId } });
  await f.next((m) => m.id === 'a2', 10000, 'follower auth');
  const fol = await f.command('agent.follow', { conversation, since: 0 });
  step('agent.follow', fol.data?.success === true, JSON.stringify(fol.data?.result ?? fol.data));

  let b;
  try { b = await turn('p2', PROMPT_TOOL, conversation, { onPermission: 'approve' }); } catch (e) { fail('agent.prompt tool', `${e.message}${helperLog()}`); }
  step('permission chunk', !!b.permission, b.permission ? describeChunk(b.permission) : 'no permission chunk came');
  step('approve', b.answer?.success === true && b.answer.result?.took === true,
    b.answer ? `${JSON.stringify(b.answer)}` : 'not sent');
  step('permission_resolved', b.resolved?.outcome === 'allow_once',
    b.resolved ? `${b.resolved.outcome} by ${JSON.stringify(b.resolved.decidedBy)}, ${b.resolved.afterAskMs} ms after the ask` : 'none');
  step('prompt tool', b.end?.stopReason === 'end_turn' && /hi/.test(b.text),
    `stopReason ${b.end?.stopReason}, text ${JSON.stringify(clip(b.text, 120))}, chunks ${JSON.stringify(b.kinds)}, ${b.ms} ms`);
  step('tool ran in the workspace', fs.existsSync(path.join(ws, 'hi.txt')), fs.existsSync(path.join(ws, 'hi.txt')) ? 'hi.txt written' : 'no hi.txt');

  // Cancelled while the permission waits: agent.cancel withdraws it.
  fs.rmSync(path.join(ws, 'hi.txt'), { force: true });
  let d;
  try { d = await turn('p3', PROMPT_TOOL, conversation, { onPermission: 'cancel' }); } catch (e) { fail('agent.prompt cancel', `${e.message}${helperLog()}`); }
  step('agent.cancel', d.answer?.success === true && d.answer.result?.cancelled === true && d.end?.stopReason === 'cancelled' && !fs.existsSync(path.join(ws, 'hi.txt')),
    `answer ${JSON.stringify(d.answer)}; permission ${d.resolved ? d.resolved.outcome : 'not resolved in the stream'}; stopReason ${d.end?.stopReason}`);

  // After a cancel, claude-agent-acp 0.23.1 ends the next prompt at once and
  // streams the cancelled turn's continuation into the one after (see README).
  const after = [];
  for (const id of ['p4', 'p5']) {
    let e;
    try { e = await turn(id, PROMPT_PLAIN, conversation); } catch (err) { fail(`agent.prompt ${id}`, `${err.message}${helperLog()}`); }
    after.push(e);
  }
  step('prompts after cancel', after.some((e) => e.end?.stopReason === 'end_turn' && /```c[\s\S]*```/.test(e.text)),
    after.map((e, i) => `${i + 1}: ${e.end?.stopReason}, ${e.kinds.message || 0} chunks, ${e.ms} ms, text ${JSON.stringify(clip(e.text, 80))}`).join('; '));

  // What the follower saw.
  await sleep(300);
  const ups = f.all.filter((m) => m.type === 'agent_update' && m.data?.conversation === conversation);
  const seqs = ups.map((m) => m.data.seq);
  const inOrder = seqs.every((v, i) => i === 0 || v > seqs[i - 1]);
  const fk = {};
  for (const m of ups) fk[m.data.chunk?.kind] = (fk[m.data.chunk?.kind] || 0) + 1;
  step('follower', ups.length > 0 && inOrder && (fk.turn_end || 0) >= 2 && (fk.permission || 0) >= 1,
    `${ups.length} agent_update, seq ${seqs[0]}..${seqs[seqs.length - 1]} ${inOrder ? 'increasing' : 'NOT increasing'}; kinds ${JSON.stringify(fk)}`);
  f.ws.close();

  const conv = await c.command('agent.conversations', {});
  step('agent.conversations', conv.data?.success === true, JSON.stringify(conv.data?.result ?? conv.data));
  const list2 = await c.command('agent.list', {});
  show(`agent.list after: ${JSON.stringify(list2.data?.result)}`);

  c.ws.close();
  // SIGTERM to the helper alone: it must stop its agents itself.
  const s = await stopChild(helper, 5000, { group: false });
  await sleep(300);
  const leftover = markedPids();
  step('helper stop', leftover.length === 0, `exit ${JSON.stringify(s)}; agent processes left: ${leftover.length ? leftover.join(' ') : 'none'}`);
  return { home: agentHome };
}

// ---------------------------------------------------------------------------

async function main() {
  const overall = setTimeout(() => {
    say(`FAIL overall timeout (${TIMEOUT_S} s)`);
    summary();
    killEverything();
    process.exit(1);
  }, TIMEOUT_S * 1000);
  let error = null;
  let home = null;
  try {
    const deps = await loadIntegrationDeps();
    const js = adapterPath();
    apiServer = await startMessagesApi({ log: (l) => show(l) });
    step('messages api', true, apiServer.url);
    ({ home } = DIRECT ? await runDirect(deps, js, apiServer) : await runHelper(deps, js, apiServer));
  } catch (e) {
    error = e;
    if (!e.recorded) step('error', false, e instanceof StepError ? e.message : e.stack || e.message);
  }
  clearTimeout(overall);
  summary(home);
  if (apiServer) await apiServer.close();
  killEverything();
  process.exit(error || steps.some((s) => !s.ok) ? 1 : 0);
}

function summary(home) {
  console.log(`\n=== summary (${DIRECT ? 'direct, SDK client' : 'through companion-helper'}, ${((Date.now() - t0) / 1000).toFixed(1)} s) ===`);
  for (const s of steps) console.log(`${s.ok ? 'PASS' : 'FAIL'} ${s.name}${s.detail ? `: ${s.detail.split('\n')[0]}` : ''}`);
  if (apiServer) {
    console.log('--- what the Messages API received ---');
    for (const l of describeRequests(apiServer.requests)) console.log(l);
  }
  if (home) {
    const logs = claudeDebugLogs(home);
    if (logs.length && KEEP) console.log(`CLI debug logs: ${logs.join(' ')}`);
  }
}

main();
