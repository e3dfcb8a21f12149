// Socket.IO v4 (Engine.IO 4) and the envelope dialect on /socket.io/
// (issue 18 items 1 and 3), tried with the clients those users have:
// socket.io-client from npm (default transports: long-polling then the
// upgrade, and websocket only), python-socketio from Debian, `ws` for the
// envelope dialect, raw HTTP for malformed packets and limits. The agent is
// the scripted ACP agent (agents/scripted-agent.mjs).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { Editor, connect, tempDir, sleep, waitFor, httpRequest, mintToken, SLOW } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = path.join(here, 'agents/scripted-agent.mjs');
// Debian's python3-socketio and python3-websockets live in the system Python.
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/* Resolves with the first `event` (optionally matching pred). */
function once(sock, event, pred = () => true, timeoutMs = 15000 * SLOW) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { sock.off(event, on); reject(new Error(`no ${event} within ${timeoutMs} ms`)); }, timeoutMs);
    function on(...args) {
      if (!pred(...args)) return;
      clearTimeout(t);
      sock.off(event, on);
      resolve(args.length > 1 ? args : args[0]);
    }
    sock.on(event, on);
  });
}

function sio(ed, opts = {}) {
  return io(`http://127.0.0.1:${ed.port}`, { reconnection: false, timeout: 5000 * SLOW, ...opts });
}

async function connected(sock) {
  if (sock.connected) return sock;
  await Promise.race([
    once(sock, 'connect'),
    once(sock, 'connect_error').then((e) => { throw new Error(`connect_error: ${e.message}`); }),
  ]);
  return sock;
}

/* A raw Engine.IO polling request. */
async function poll(ed, method, query, body, headers = {}) {
  const len = body === undefined ? {} : { 'Content-Length': Buffer.byteLength(body) };
  return httpRequest(ed.port, method, `/socket.io/?${query}`, { Host: `127.0.0.1:${ed.port}`, ...len, ...headers }, body);
}

describe('Socket.IO on /socket.io/', () => {
  let ed, dir;
  before(async () => {
    dir = tempDir('companion-sio-');
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        heartbeat: { intervalSeconds: 1, timeoutSeconds: 3 },
        limits: { commandsPerSecond: 1000, maxMessageBytes: 65536 },
        agents: { scripted: { command: process.execPath, args: [AGENT], env: { SCRIPTED_AGENT_STATE_DIR: path.join(dir, '.agent-state') } } },
        tasks: {
          hello: { command: 'echo', args: ['hello', 'world'] },
          fails: { command: 'sh', args: ['-c', 'echo bad >&2; exit 3'] },
        },
        server: { allowedOrigins: ['https://app.example'] },
      },
    });
  });
  after(async () => { await ed?.stop(); });

  for (const transports of [undefined, ['websocket']]) {
    const label = transports ? 'websocket only' : 'default transports (polling, then upgrade)';
    test(`${label}: connect with auth {token}, system_status with an ack`, async () => {
      const sock = sio(ed, { auth: { token: ed.token({ scope: 'read run agent' }) }, ...(transports ? { transports } : {}) });
      try {
        await connected(sock);
        if (!transports) await waitFor(() => sock.io.engine.transport.name === 'websocket', 'the upgrade to websocket');
        assert.equal(sock.io.engine.transport.name, 'websocket');
        const status = await sock.timeout(5000).emitWithAck('system_status');
        assert.equal(status.success, true);
        assert.equal(status.status, 'healthy');
        const ev = once(sock, 'system_status');
        sock.emit('system_status');
        assert.equal((await ev).status, 'healthy');
      } finally { sock.close(); }
    });
  }

  test('chat_message goes to the agent conversation named by sessionId; the room hears both sides', async () => {
    const tok = ed.token({ scope: 'read agent' });
    const a = await connected(sio(ed, { auth: { token: tok } }));
    const b = await connected(sio(ed, { auth: { token: ed.token({ sub: 'other', scope: 'read' }) }, transports: ['websocket'] }));
    const outsider = await connected(sio(ed, { auth: { token: tok }, transports: ['websocket'] }));
    try {
      assert.deepEqual(await b.timeout(5000).emitWithAck('join_session', 'sess-1'), { success: true, sessionId: 'sess-1' });
      const heardQuestion = once(b, 'chat_message', (m) => m.role === 'user');
      const heardAnswerB = once(b, 'chat_message', (m) => m.role === 'assistant', 30000 * SLOW);
      const heardAnswerA = once(a, 'chat_message', (m) => m.role === 'assistant', 30000 * SLOW);
      let outsiderHeard = false;
      outsider.on('chat_message', () => { outsiderHeard = true; });
      const ack = await a.timeout(5000).emitWithAck('chat_message', { content: 'echo hello from the phone', sessionId: 'sess-1', projectId: 'p1' });
      assert.equal(ack.success, true);
      assert.match(ack.messageId, /^[0-9a-f-]{36}$/);
      const q = await heardQuestion;
      assert.equal(q.content, 'echo hello from the phone');
      assert.equal(q.sessionId, 'sess-1');
      assert.equal(q.projectId, 'p1');
      assert.equal(q.userId, 'tester');
      const [ansA, ansB] = await Promise.all([heardAnswerA, heardAnswerB]);
      assert.match(ansA.content, /hello from the phone/);
      assert.equal(ansB.sessionId, 'sess-1');
      assert.equal(ansA.content, ansB.content);
      assert.equal(outsiderHeard, false, 'a client that did not join the session hears nothing');
    } finally { a.close(); b.close(); outsider.close(); }
  });

  test('chat_message: bad payloads and missing scope are refused with a clear error', async () => {
    const s = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read' }) }, transports: ['websocket'] }));
    try {
      const forbidden = await s.timeout(5000).emitWithAck('chat_message', { content: 'hi', sessionId: 's' });
      assert.equal(forbidden.success, false);
      assert.equal(forbidden.error.code, 'FORBIDDEN');
      const bad = await s.timeout(5000).emitWithAck('chat_message', { content: 5, sessionId: 's' });
      assert.equal(bad.error.code, 'INVALID_MESSAGE');
      const err = once(s, 'error');
      s.emit('chat_message', 'not an object');
      const e = await err;
      assert.equal(e.code, 'INVALID_MESSAGE');
      assert.equal(e.event, 'chat_message');
      const unknown = await s.timeout(5000).emitWithAck('no_such_event', {});
      assert.equal(unknown.error.code, 'UNKNOWN_EVENT');
    } finally { s.close(); }
  });

  test('terminal_command runs a configured task (by name or exact command line) and streams terminal_output', async () => {
    const s = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read run' }) } }));
    const watcher = await connected(sio(ed, { auth: { token: ed.token({ sub: 'w', scope: 'read' }) }, transports: ['websocket'] }));
    try {
      await watcher.timeout(5000).emitWithAck('join_session', 'term-1');
      for (const command of ['hello', 'echo hello world']) {
        const outs = [];
        const done = new Promise((resolve) => {
          s.on('terminal_output', function on(o) { outs.push(o); if (o.type === 'exit') { s.off('terminal_output', on); resolve(); } });
        });
        const seen = once(watcher, 'terminal_output', (o) => o.type === 'exit');
        const ack = await s.timeout(5000).emitWithAck('terminal_command', { command, sessionId: 'term-1' });
        assert.deepEqual(ack, { success: true, task: 'hello' });
        await done;
        assert.equal(outs.filter((o) => o.type === 'output').map((o) => o.output).join(''), 'hello world\n');
        const end = outs.at(-1);
        assert.equal(end.exitCode, 0);
        assert.equal(end.command, command);
        assert.equal(end.sessionId, 'term-1');
        assert.equal((await seen).exitCode, 0);
      }
      const fails = once(s, 'terminal_output', (o) => o.type === 'exit');
      s.emit('terminal_command', { command: 'fails', sessionId: 'term-1' });
      assert.equal((await fails).exitCode, 3);
    } finally { s.close(); watcher.close(); }
  });

  test('terminal_command never runs an arbitrary command, and needs the run scope', async () => {
    const s = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read run' }) }, transports: ['websocket'] }));
    const r = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read' }) }, transports: ['websocket'] }));
    try {
      let ran = false;
      s.on('terminal_output', () => { ran = true; });
      for (const command of ['echo hello  world', 'echo hello world; id', 'rm -rf /', 'echo hello', 'hello ', 'sh -c id']) {
        const ack = await s.timeout(5000).emitWithAck('terminal_command', { command, sessionId: 't' });
        assert.equal(ack.success, false, command);
        assert.equal(ack.error.code, 'UNKNOWN_TASK');
        assert.match(ack.error.message, /configured task/);
      }
      const forbidden = await r.timeout(5000).emitWithAck('terminal_command', { command: 'hello', sessionId: 't' });
      assert.equal(forbidden.error.code, 'FORBIDDEN');
      await sleep(200);
      assert.equal(ran, false);
    } finally { s.close(); r.close(); }
  });

  test('tts_notification both ways: sending needs run; everyone connected hears it with type and priority', async () => {
    const sender = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read run' }) } }));
    const reader = await connected(sio(ed, { auth: { token: ed.token({ sub: 'r', scope: 'read' }) }, transports: ['websocket'] }));
    try {
      const heard = once(reader, 'tts_notification');
      const ack = await sender.timeout(5000).emitWithAck('tts_notification', { message: 'Build completed successfully!', type: 'success', priority: 'urgent' });
      assert.equal(ack.success, true);
      assert.ok(ack.delivered >= 2);
      assert.deepEqual(await heard, { message: 'Build completed successfully!', type: 'success', priority: 'urgent' });
      const denied = await reader.timeout(5000).emitWithAck('tts_notification', { message: 'x' });
      assert.equal(denied.error.code, 'FORBIDDEN');
      const bad = await sender.timeout(5000).emitWithAck('tts_notification', { message: 'x', type: 'loud' });
      assert.equal(bad.error.code, 'INVALID_MESSAGE');
      // The editor's notify reaches Socket.IO clients as tts_notification too.
      const fromEditor = once(reader, 'tts_notification', (n) => n.message === 'from the editor');
      await ed.request('server/broadcast', { type: 'notify', data: { title: 'T', message: 'from the editor', level: 'warning' } });
      const n = await fromEditor;
      assert.equal(n.type, 'warning');
      assert.equal(n.priority, 'normal');
    } finally { sender.close(); reader.close(); }
  });

  test('file_update both ways: fs.write / fs.delete with the write scope; everyone hears file.changed as file_update', async () => {
    const w = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read write' }) } }));
    const r = await connected(sio(ed, { auth: { token: ed.token({ sub: 'r', scope: 'read' }) }, transports: ['websocket'] }));
    try {
      const heardCreate = once(r, 'file_update', (u) => u.filePath === 'notes.md' && u.action === 'create');
      const ack = await w.timeout(5000).emitWithAck('file_update', { filePath: 'notes.md', content: 'v1\n', projectId: 'p', action: 'create' });
      assert.equal(ack.success, true, JSON.stringify(ack));
      assert.equal(ack.path, 'notes.md');
      assert.equal(ack.created, true);
      assert.equal(readFileSync(path.join(dir, 'notes.md'), 'utf8'), 'v1\n');
      await heardCreate;
      const stale = await w.timeout(5000).emitWithAck('file_update', { filePath: 'notes.md', content: 'v2\n', action: 'update', expectedSha256: '0'.repeat(64) });
      assert.equal(stale.success, false);
      assert.equal(stale.error.code, 'CONFLICT');
      const ok = await w.timeout(5000).emitWithAck('file_update', { filePath: 'notes.md', content: 'v2\n', action: 'update', expectedSha256: ack.sha256 });
      assert.equal(ok.success, true, JSON.stringify(ok));
      const forbidden = await r.timeout(5000).emitWithAck('file_update', { filePath: 'x.md', content: 'x' });
      assert.equal(forbidden.error.code, 'FORBIDDEN');
      const git = await w.timeout(5000).emitWithAck('file_update', { filePath: '.vscode/settings.json', content: '{}' });
      assert.equal(git.success, false);
      const escape = await w.timeout(5000).emitWithAck('file_update', { filePath: '../outside.txt', content: 'x' });
      assert.equal(escape.success, false);
      assert.equal(existsSync(path.join(dir, '..', 'outside.txt')), false);
      // A change made by someone else (not through the helper) reaches them too.
      const heardOutside = once(r, 'file_update', (u) => u.filePath === 'other.txt');
      writeFileSync(path.join(dir, 'other.txt'), 'by hand');
      assert.equal((await heardOutside).action, 'create');
      const heardDelete = once(r, 'file_update', (u) => u.filePath === 'notes.md' && u.action === 'delete');
      const del = await w.timeout(5000).emitWithAck('file_update', { filePath: 'notes.md', action: 'delete' });
      assert.equal(del.success, true, JSON.stringify(del));
      await heardDelete;
      assert.equal(existsSync(path.join(dir, 'notes.md')), false);
    } finally { w.close(); r.close(); }
  });

  test('rooms: join_session / join_project are bounded and checked', async () => {
    const s = await connected(sio(ed, { auth: { token: ed.token({ scope: 'read' }) }, transports: ['websocket'] }));
    try {
      assert.deepEqual(await s.timeout(5000).emitWithAck('join_project', 'proj'), { success: true, projectId: 'proj' });
      const bad = await s.timeout(5000).emitWithAck('join_session', { id: 1 });
      assert.equal(bad.error.code, 'INVALID_MESSAGE');
      for (let i = 0; i < 31; i++) await s.timeout(5000).emitWithAck('join_session', `s${i}`);
      const over = await s.timeout(5000).emitWithAck('join_session', 'one-too-many');
      assert.equal(over.error.code, 'LIMIT_EXCEEDED');
    } finally { s.close(); }
  });

  for (const transport of ['default', 'websocket']) {
    test(`python-socketio (Debian) with ${transport} transports: join_session, system_status ack, terminal_command`, async () => {
      const run = (token, command) => new Promise((resolve) => {
        const p = spawn(PY, [path.join(here, 'clients/sio_cli.py'), `http://127.0.0.1:${ed.port}`, token, transport, command]);
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { err += d; });
        p.on('exit', (code) => resolve({ code, err, lines: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) }));
      });
      const r = await run(ed.token({ scope: 'read run' }), 'echo hello world');
      assert.equal(r.code, 0, r.err);
      const ev = (name) => r.lines.filter((l) => l.event === name);
      assert.equal(ev('connect').length, 1, JSON.stringify(r.lines));
      assert.equal(ev('status_ack')[0].status.status, 'healthy');
      const outputs = ev('terminal_output').map((l) => l.data);
      assert.equal(outputs.filter((o) => o.type === 'output').map((o) => o.output).join(''), 'hello world\n');
      assert.equal(outputs.at(-1).exitCode, 0);
      assert.equal(ev('upgraded')[0].transport, 'websocket');
      const bad = await run(ed.token({ workspaceId: 'elsewhere' }), 'hello');
      assert.ok(bad.lines.some((l) => l.event === 'connection_error' || l.event === 'connect_error'), JSON.stringify(bad.lines));
      assert.match(JSON.stringify(bad.lines), /WORKSPACE_MISMATCH/);
    });
  }

  test('bad tokens: none, garbage, another workspace, expired -> connect_error with a clear message', async () => {
    const cases = [
      [undefined, /AUTH_REQUIRED/],
      [{ token: 'garbage' }, /AUTH_INVALID/],
      [{ token: ed.token({ workspaceId: 'another-workspace' }) }, /AUTH_WORKSPACE_MISMATCH|workspace/],
      [{ token: mintToken(ed.secret, { workspaceId: ed.workspaceId, exp: Math.floor(Date.now() / 1000) - 3600 }) }, /AUTH_EXPIRED/],
    ];
    for (const transports of [undefined, ['websocket']]) {
      for (const [auth, want] of cases) {
        const s = sio(ed, { ...(auth ? { auth } : {}), ...(transports ? { transports } : {}) });
        try {
          const e = await once(s, 'connect_error');
          assert.match(e.message, want);
          assert.equal(s.connected, false);
        } finally { s.close(); }
      }
    }
    // A pairing token (single use, exchanged for a device token in /ws's
    // auth_response, which Socket.IO never sends) is refused here and stays
    // unspent: the phone app can still use it on /ws.
    const pairing = await ed.request('auth/issueToken', { pairing: true, deviceName: 'sio phone', scopes: ['read'] });
    for (const transports of [undefined, ['websocket']]) {
      const s = sio(ed, { auth: { token: pairing.token }, ...(transports ? { transports } : {}) });
      try {
        const e = await once(s, 'connect_error');
        assert.match(e.message, /pairing token works only on \/ws/);
      } finally { s.close(); }
    }
    const phone = await connect(ed.url);
    const exchanged = await phone.auth(pairing.token, ed.workspaceId);
    assert.equal(exchanged.data.success, true, JSON.stringify(exchanged));
    assert.equal(typeof exchanged.data.deviceToken, 'string');
    phone.close();
    // ?token= in the URL works like auth {token}.
    const q = sio(ed, { query: { token: ed.token() }, transports: ['websocket'] });
    try { await connected(q); } finally { q.close(); }
  });
});

describe('Socket.IO wire details (raw Engine.IO)', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({
      settings: {
        heartbeat: { intervalSeconds: 1, timeoutSeconds: 2 },
        limits: { commandsPerSecond: 1000, maxMessageBytes: 4096 },
        server: { allowedOrigins: ['https://app.example'] },
      },
    });
  });
  after(async () => { await ed?.stop(); });

  async function handshake(headers = {}) {
    const r = await poll(ed, 'GET', 'EIO=4&transport=polling', undefined, headers);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body[0], '0');
    return { ...JSON.parse(r.body.slice(1)), headers: r.headers };
  }

  test('handshake: the open packet, then CONNECT over POST and the answer on GET', async () => {
    const open = await handshake();
    assert.deepEqual(open.upgrades, ['websocket']);
    assert.equal(open.pingInterval, 1000);
    assert.equal(open.maxPayload, 4096);
    const post = await poll(ed, 'POST', `EIO=4&transport=polling&sid=${open.sid}`, `40${JSON.stringify({ token: ed.token() })}`, { 'Content-Type': 'text/plain;charset=UTF-8' });
    assert.equal(post.status, 200);
    assert.equal(post.body, 'ok');
    const get = await poll(ed, 'GET', `EIO=4&transport=polling&sid=${open.sid}`);
    assert.match(get.body, /^40\{"sid":"/);
  });

  test('wrong namespace: CONNECT_ERROR "Invalid namespace"; socket.io-client sees connect_error', async () => {
    const s = io(`http://127.0.0.1:${ed.port}/admin`, { reconnection: false, auth: { token: ed.token() } });
    try {
      const e = await once(s, 'connect_error');
      assert.equal(e.message, 'Invalid namespace');
    } finally { s.close(); }
  });

  test('malformed packets: a clear error event, then the session ends', async () => {
    for (const bad of ['4{', '9', '451-["a",{"_placeholder":true,"num":0}]', 'bAAAA', '42["connect"]', '42[1]', '4212345678901234567["a"]', '']) {
      const open = await handshake();
      const sid = open.sid;
      await poll(ed, 'POST', `EIO=4&transport=polling&sid=${sid}`, `40${JSON.stringify({ token: ed.token() })}`);
      assert.match((await poll(ed, 'GET', `EIO=4&transport=polling&sid=${sid}`)).body, /^40/);
      const post = await poll(ed, 'POST', `EIO=4&transport=polling&sid=${sid}`, bad);
      assert.equal(post.status, 200);
      const get = await poll(ed, 'GET', `EIO=4&transport=polling&sid=${sid}`);
      const m = get.body.split('\x1e').find((p) => p.startsWith('42["error"'));
      assert.ok(m, `${JSON.stringify(bad)}: ${get.body}`);
      const [, err] = JSON.parse(m.slice(2));
      assert.equal(err.code, 'INVALID_MESSAGE');
      assert.ok(err.message.length > 5, err.message);
      await waitFor(async () => (await poll(ed, 'GET', `EIO=4&transport=polling&sid=${sid}`)).status === 400, 'the session to end');
    }
    // Over WebSocket: the same error, then close 1002.
    const ws = new WebSocket(`ws://127.0.0.1:${ed.port}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    ws.on('message', (d) => frames.push(d.toString()));
    await new Promise((r) => ws.once('open', r));
    ws.send(`40${JSON.stringify({ token: ed.token() })}`);
    await waitFor(() => frames.some((f) => f.startsWith('40')), 'CONNECT answer');
    ws.send('42["a"');
    const code = await new Promise((r) => ws.once('close', (c) => r(c)));
    assert.equal(code, 1002);
    assert.ok(frames.some((f) => f.startsWith('42["error",{"code":"INVALID_MESSAGE"')), frames.join(' | '));
  });

  test('an event before CONNECT, bad EIO versions and transports are refused', async () => {
    const open = await handshake();
    await poll(ed, 'POST', `EIO=4&transport=polling&sid=${open.sid}`, '42["system_status"]');
    const get = await poll(ed, 'GET', `EIO=4&transport=polling&sid=${open.sid}`);
    assert.match(get.body, /before the CONNECT/);
    const v3 = await poll(ed, 'GET', 'EIO=3&transport=polling');
    assert.equal(v3.status, 400);
    assert.match(v3.body, /Unsupported protocol version/);
    const tr = await poll(ed, 'GET', 'EIO=4&transport=flash');
    assert.equal(tr.status, 400);
    const unknown = await poll(ed, 'GET', 'EIO=4&transport=polling&sid=nope');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /Session ID unknown/);
  });

  test('an oversize polling body gets 413 and ends the session', async () => {
    const open = await handshake();
    const big = `42["chat_message",{"content":"${'x'.repeat(5000)}","sessionId":"s"}]`;
    const r = await poll(ed, 'POST', `EIO=4&transport=polling&sid=${open.sid}`, big);
    assert.equal(r.status, 413);
    await waitFor(async () => (await poll(ed, 'GET', `EIO=4&transport=polling&sid=${open.sid}`)).status === 400, 'the session to end');
  });

  test('an abandoned polling session is cleaned up after pingInterval + pingTimeout', async () => {
    const listed = async (sid) => (await ed.request('server/status', {})).clients.some((c) => c.sessionId === sid);
    const open = await handshake();
    const t0 = Date.now(); // the session's last packet comes after this
    await poll(ed, 'POST', `EIO=4&transport=polling&sid=${open.sid}`, `40${JSON.stringify({ token: ed.token() })}`);
    assert.equal(await listed(open.sid), true);
    // Nobody polls any more: gone within the heartbeat timeout (2 s here).
    await waitFor(async () => !(await listed(open.sid)), 'the session to be freed', 8000 * SLOW, 100);
    assert.ok(Date.now() - t0 >= 1900, 'not before the timeout');
    const r = await poll(ed, 'GET', `EIO=4&transport=polling&sid=${open.sid}`);
    assert.equal(r.status, 400);
  });

  test('Origin: CORS headers for an allowed origin only; others are refused without them', async () => {
    const ok = await handshake({ Origin: 'https://app.example' });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(ok.headers['access-control-allow-credentials'], 'true');
    const plain = await handshake();
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
    const evil = await poll(ed, 'GET', 'EIO=4&transport=polling', undefined, { Origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
    const pre = await poll(ed, 'OPTIONS', 'EIO=4&transport=polling', undefined, { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    await assert.rejects(connect(`ws://127.0.0.1:${ed.port}/socket.io/?EIO=4&transport=websocket`, { origin: 'https://evil.example' }), (e) => e.status === 403);
    const okWs = await connect(`ws://127.0.0.1:${ed.port}/socket.io/?EIO=4&transport=websocket`, { origin: 'https://app.example' });
    okWs.close();
    const badHost = await poll(ed, 'GET', 'EIO=4&transport=polling', undefined, { Host: 'evil.example' });
    assert.equal(badHost.status, 403);
  });
});

describe('the envelope dialect on /socket.io/ (no EIO)', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { commandsPerSecond: 1000 } } });
  });
  after(async () => { await ed?.stop(); });
  const url = (q = '') => `ws://127.0.0.1:${ed.port}/socket.io/${q}`;

  test('?token= -> session_created {sessionId, userId}; every frame {type, sessionId, data, timestamp}; ping/pong', async () => {
    const c = await connect(url(`?token=${ed.token({ sub: 'alice' })}`));
    try {
      const created = await c.next();
      assert.equal(created.type, 'session_created');
      assert.equal(created.data.userId, 'alice');
      assert.match(created.data.sessionId, /^[0-9a-f-]{36}$/);
      assert.equal(created.sessionId, created.data.sessionId);
      assert.equal(typeof created.timestamp, 'number');
      c.send({ type: 'ping', data: { timestamp: Date.now() } });
      const pong = await c.next((m) => m.type === 'pong');
      assert.equal(pong.sessionId, created.data.sessionId);
      assert.equal(typeof pong.timestamp, 'number');
      const r = await c.command('fs.list', { path: '' });
      assert.equal(r.sessionId, created.data.sessionId);
    } finally { c.close(); }
  });

  test('no token: an immediate AUTH_REQUIRED error and close 4001 (not the 10 s timeout)', async () => {
    const t0 = Date.now();
    const c = await connect(url());
    const e = await c.next((m) => m.type === 'error');
    assert.equal(e.data.code, 'AUTH_REQUIRED');
    assert.equal(typeof e.sessionId, 'string');
    assert.equal((await c.waitClose()).code, 4001);
    assert.ok(Date.now() - t0 < 2000 * SLOW);
  });

  test('python3-websockets (Debian) as an envelope client: session_created, ping/pong; no token: AUTH_REQUIRED + 4001', async () => {
    const run = (u) => spawnSync(PY, [path.join(here, 'clients/envelope_cli.py'), u], { encoding: 'utf8', timeout: 15000 * SLOW });
    const ok = run(url(`?token=${ed.token({ sub: 'py' })}`));
    assert.equal(ok.status, 0, ok.stderr);
    const [created, pong] = ok.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(created.type, 'session_created');
    assert.equal(created.data.userId, 'py');
    assert.equal(pong.type, 'pong');
    assert.equal(pong.sessionId, created.data.sessionId);
    const none = run(url());
    const [err, closed] = none.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(err.type, 'error');
    assert.equal(err.data.code, 'AUTH_REQUIRED');
    assert.equal(closed.closed, 4001);
  });

  test('guest tokens and bad tokens: AUTH_INVALID and 4001', async () => {
    for (const token of [`guest_${crypto.randomUUID()}_${Date.now()}`, 'garbage', ed.token({ workspaceId: 'other' })]) {
      const c = await connect(url(`?token=${token}`));
      const e = await c.next((m) => m.type === 'error');
      assert.match(e.data.code, /AUTH_INVALID|WORKSPACE_MISMATCH/);
      if (token.startsWith('guest_')) assert.match(e.data.message, /guest/);
      assert.equal((await c.waitClose()).code, 4001);
    }
  });
});


// A React-style web app in Chromium: its page is served from its own origin
// (listed in server.allowedOrigins), loads socket.io-client's browser build
// and connects with default transports, so polling goes through the
// browser's CORS checks before the upgrade.
const PW = path.join(here, '../../web/node_modules/playwright-core/index.mjs');
// Skipped only outside CI (scripts/test.sh installs both first): in CI a
// missing browser fails the suite.
describe('socket.io-client in Chromium from an allowed origin', { skip: !process.env.CI && (!existsSync(PW) || !existsSync('/usr/bin/chromium')) }, () => {
  let ed, page, browser, web;
  before(async () => {
    const bundle = readFileSync(path.join(here, 'node_modules/socket.io-client/dist/socket.io.min.js'));
    web = http.createServer((req, res) => {
      if (req.url === '/socket.io.min.js') { res.setHeader('Content-Type', 'text/javascript'); res.end(bundle); return; }
      res.setHeader('Content-Type', 'text/html');
      res.end('<!doctype html><script src="/socket.io.min.js"></script><body>app</body>');
    });
    await new Promise((r) => web.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${web.address().port}`;
    ed = new Editor();
    await ed.startServer({ settings: { server: { allowedOrigins: [origin] }, limits: { commandsPerSecond: 1000 } } });
    const { chromium } = await import(PW);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    page = await browser.newPage();
    await page.goto(`${origin}/`);
  });
  after(async () => { await browser?.close(); web?.close(); await ed?.stop(); });

  test('default transports: polling with CORS, the upgrade, an ack and an event', async () => {
    const result = await page.evaluate(async ({ url, token }) => {
      const socket = io(url, { auth: { token }, reconnection: false, autoConnect: false });
      // The transport the engine opened with, and the one it upgraded to.
      let first;
      let upgradedTo;
      socket.io.on('open', () => {
        first = socket.io.engine.transport.name;
        socket.io.engine.on('upgrade', (t) => { upgradedTo = t.name; });
      });
      socket.connect();
      await new Promise((resolve, reject) => { socket.on('connect', resolve); socket.on('connect_error', (e) => reject(new Error(e.message))); });
      const status = await socket.timeout(5000).emitWithAck('system_status');
      await new Promise((r) => { const t = setInterval(() => { if (upgradedTo === 'websocket') { clearInterval(t); r(); } }, 20); });
      const tts = new Promise((r) => socket.on('tts_notification', r));
      socket.emit('tts_notification', { message: 'from the browser', type: 'info' });
      const heard = await tts;
      socket.close();
      return { first, status, heard, upgradedTo };
    }, { url: `http://127.0.0.1:${ed.port}`, token: ed.token({ scope: 'read run' }) });
    assert.equal(result.first, 'polling');
    assert.equal(result.upgradedTo, 'websocket');
    assert.equal(result.status.status, 'healthy');
    assert.equal(result.heard.message, 'from the browser');
  });

  test('an origin that is not allowed gets nothing (the browser blocks it)', async () => {
    const other = await browser.newPage();
    try {
      await other.goto('data:text/html,<body>elsewhere</body>');
      const r = await other.evaluate(async (url) => {
        try { const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`); return `status ${res.status}`; } catch (e) { return `blocked: ${e.message}`; }
      }, `http://127.0.0.1:${ed.port}`);
      assert.match(r, /blocked/);
    } finally { await other.close(); }
  });
});
