// The app's pure modules, compiled from src/ by esbuild and run in Node:
// the agent conversation reducer (turns from agent_update messages), the
// unified-diff parser, the ANSI line model, pairing payloads, backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { WEB, tempDir } from './lib/env.mjs';

async function load(rel) {
  const out = path.join(tempDir('companion-unit-'), `${path.basename(rel, '.ts')}.mjs`);
  await build({ entryPoints: [path.join(WEB, rel)], bundle: true, format: 'esm', platform: 'neutral', outfile: out, logLevel: 'error', mainFields: ['module', 'main'] });
  return import(pathToFileURL(out).href);
}

const agent = await load('src/agent.ts');
const diff = await load('src/diff.ts');
const ansi = await load('src/ansi.ts');
const pairing = await load('src/pairing.ts');
const conn = await load('src/conn.ts');
const approvals = await load('src/approvals.ts');

test('agent: message and thought text accumulate, tool rows update in place, a plan replaces the last', () => {
  let t = { id: 'c1', prompt: 'fix it', items: [], done: false };
  const chunks = [
    { kind: 'thought', text: 'Let me ' }, { kind: 'thought', text: 'look.' },
    { kind: 'plan', entries: [{ content: 'read', status: 'in_progress' }, { content: 'fix', status: 'pending' }] },
    { kind: 'tool', toolCallId: 't1', title: 'Read src/a.ts', status: 'pending' },
    { kind: 'message', text: 'Found **it**' }, { kind: 'message', text: ' <script>x</script>' },
    { kind: 'tool', toolCallId: 't1', status: 'completed' },
    { kind: 'plan', entries: [{ content: 'read', status: 'completed' }, { content: 'fix', status: 'completed' }] },
    { kind: 'bogus' },
  ];
  for (const c of chunks) {
    const parsed = agent.parseChunk(c);
    if (parsed) t = agent.applyChunk(t, parsed);
  }
  assert.deepEqual(t.items, [
    { kind: 'thought', text: 'Let me look.' },
    { kind: 'plan', entries: [{ content: 'read', status: 'completed' }, { content: 'fix', status: 'completed' }] },
    { kind: 'tool', toolCallId: 't1', title: 'Read src/a.ts', status: 'completed' },
    { kind: 'message', text: 'Found **it** <script>x</script>' },
  ]);
  assert.equal(agent.parseChunk({ kind: 'bogus' }), null);
});

test('agent: updates build turns (turn_start, chunks, permission and its resolution, turn_end), in turn order', () => {
  let turns = [];
  const ups = [
    [2, { kind: 'turn_start', text: 'second', by: 'phone' }],
    [1, { kind: 'message', text: 'tail of a turn whose start is gone' }],
    [2, { kind: 'tool', toolCallId: 't1', title: 'Run tests', status: 'pending' }],
    [2, { kind: 'permission', approvalId: 7, toolCallId: 't1', title: 'Agent "x": Run tests', options: ['allow_once', 'deny'], expiresAt: 5 }],
    [2, { kind: 'permission', approvalId: 7, toolCallId: 't1', title: 'again', options: [], expiresAt: 5 }],
    [2, { kind: 'permission_resolved', approvalId: 7, outcome: 'allow_once', decidedBy: 'owner' }],
    [2, { kind: 'message', text: 'done' }],
    [2, { kind: 'turn_end', stopReason: 'end_turn' }],
    [3, { kind: 'turn_start', text: 'third', by: 'phone' }],
    [3, { kind: 'turn_end', stopReason: 'error', message: 'the agent exited with code 3' }],
    // agent.cancel ends a queued prompt that never started: no turn_start, no bubble.
    [4, { kind: 'turn_end', stopReason: 'cancelled' }],
  ];
  for (const [n, c] of ups) turns = agent.applyUpdate(turns, n, c);
  assert.deepEqual(turns.map((t) => [t.turn, t.prompt, t.done, t.stopReason, t.error]), [
    [1, '', false, undefined, undefined],
    [2, 'second', true, 'end_turn', undefined],
    [3, 'third', true, 'error', 'the agent exited with code 3'],
  ]);
  assert.equal(turns[1].by, 'phone');
  assert.deepEqual(turns[1].items, [
    { kind: 'tool', toolCallId: 't1', title: 'Run tests', status: 'pending' },
    { kind: 'permission', approvalId: '7', toolCallId: 't1', title: 'Agent "x": Run tests', options: ['allow_once', 'deny'], expiresAt: 5, outcome: 'allow_once', decidedBy: 'owner' },
    { kind: 'message', text: 'done' },
  ]);
});

test('diff: kinds and line numbers, a "-- " line inside a hunk is a deletion, "\\ No newline" is a note', () => {
  const patch = [
    'diff --git a/x b/x', 'index 1..2 100644', '--- a/x', '+++ b/x',
    '@@ -1,3 +1,3 @@', ' one', '--- two', '+two', ' three', '\\ No newline at end of file',
    'diff --git a/y b/y', '@@ -5 +5,2 @@', '-five', '+5', '+six', '',
  ].join('\n');
  const lines = diff.parsePatch(patch);
  const kinds = lines.map((l) => l.kind).join(',');
  assert.equal(kinds, 'meta,meta,meta,meta,hunk,ctx,del,add,ctx,note,meta,hunk,del,add,add');
  assert.deepEqual(lines[6], { kind: 'del', text: '--- two', old: 2 });
  assert.deepEqual(lines[7], { kind: 'add', text: '+two', new: 2 });
  assert.deepEqual(lines[14], { kind: 'add', text: '+six', new: 6 });
});

test('ansi: colour carries across chunks split mid-line and mid-escape; \\r overwrites', () => {
  const a = new ansi.AnsiLines();
  a.push('\x1b[3');
  a.push('1mred\nstill red\x1b[0m plain\nprogress 10%\rprogress 100%\n');
  a.push('\x1b[38;5;208mpartial');
  assert.equal(a.count, 4);
  assert.deepEqual(a.lines[0], [{ text: 'red', cls: 'f-red' }]);
  assert.deepEqual(a.lines[1], [{ text: 'still red', cls: 'f-red' }, { text: ' plain', cls: '' }]);
  assert.deepEqual(a.lines[2], [{ text: 'progress 100%', cls: '' }]);
  assert.deepEqual(a.partial(), [{ text: 'partial', cls: '' }]);
  a.end();
  assert.deepEqual(a.lines[3], [{ text: 'partial', cls: '', fg: 'rgb(255, 135, 0)' }]);
  assert.equal(ansi.paletteRgb(232), 'rgb(8, 8, 8)');
  assert.equal(ansi.paletteRgb(16), 'rgb(0, 0, 0)');
});

test('pairing: payloads decoded and checked; a missing url is derived from the page', () => {
  const loc = { protocol: 'https:', host: 'box.example:8443' };
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  assert.deepEqual(pairing.parsePairing(enc({ v: 1, workspaceId: 'w', token: 't' }), loc),
    { v: 1, url: 'wss://box.example:8443/ws', workspaceId: 'w', token: 't' });
  assert.equal(pairing.parsePairing(enc({ v: 1, url: 'ws://127.0.0.1:3001/ws', workspaceId: 'w', token: 't' }), loc).url, 'ws://127.0.0.1:3001/ws');
  for (const [bad, why] of [
    [enc({ v: 2, workspaceId: 'w', token: 't' }), /newer version/],
    [enc({ v: 1, token: 't' }), /workspace id/],
    [enc({ v: 1, workspaceId: 'w' }), /no token/],
    [enc({ v: 1, workspaceId: 'w', token: 't', url: 'http://x/ws' }), /not ws/],
    [enc({ v: 1, workspaceId: 'w', token: 't', url: 'javascript:alert(1)' }), /not ws/],
    ['%%%', /damaged/],
    [Buffer.from([0xff, 0xfe]).toString('base64url'), /damaged/],
  ]) assert.throws(() => pairing.parsePairing(bad, loc), why);
});

test('backoff: exponential with full jitter, capped at 30 s', () => {
  assert.equal(conn.backoffDelay(0, () => 0), 250);
  assert.equal(conn.backoffDelay(0, () => 1), 500);
  assert.equal(conn.backoffDelay(3, () => 1), 4000);
  assert.equal(conn.backoffDelay(20, () => 1), 30000);
  assert.equal(conn.backoffDelay(20, () => 0), 15000);
});

test('approvals: the helper\'s payload (numeric id, action and requestedBy objects) as the screens show it', () => {
  // The example of docs/protocol.md, Approvals.
  const a = approvals.parseApproval({
    approvalId: 7, kind: 'task', title: 'Run task "deploy"',
    action: { task: 'deploy', command: 'make', args: ['deploy', 'two words'], cwd: '.', folder: 'app' },
    requestedBy: { userId: 'phone', sessionId: 's' }, createdAt: 1, expiresAt: 2, options: ['allow_once', 'allow_always', 'deny'],
  });
  assert.deepEqual(a, {
    approvalId: '7', kind: 'task', title: 'Run task "deploy"', action: 'make deploy "two words"\nin app',
    requestedBy: 'phone', expiresAt: 2, options: ['allow_once', 'allow_always', 'deny'],
  });
  assert.equal(approvals.actionText({ command: 'ls', args: [], cwd: 'sub', folder: 'app' }), 'ls\nin app/sub');
  assert.equal(approvals.actionText({ toolCallId: 't1', title: 'x' }), '{\n  "toolCallId": "t1",\n  "title": "x"\n}');
  assert.equal(approvals.requesterText({ userId: 'u', deviceName: 'Pixel 8' }), 'Pixel 8');
  assert.equal(approvals.requesterText(null), 'someone');
  assert.equal(approvals.approvalIdOf('12'), '12');
  for (const bad of [0, -1, 1.5, '', '0', '07', 'x', null, {}]) assert.equal(approvals.approvalIdOf(bad), '', String(bad));
  assert.equal(approvals.parseApproval({ approvalId: 'nope' }), null);
});
