// The data-plane envelope against the real helper: invalid messages and the
// error codes they earn, id echo, workspace.info, scopes, binary and invalid
// UTF-8 frames, timestamps on every server message.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Editor, connect, httpGet, tempDir, SLOW } from './lib/harness.mjs';

describe('messages', () => {
  let ed;
  let dir;
  const seen = []; // every message any client of this suite received
  const clients = [];

  /* An authenticated client whose messages are also recorded in `seen`. */
  async function client(claims = {}) {
    const c = await connect(ed.url);
    c.ws.on('message', (data, isBinary) => {
      let msg;
      try { msg = JSON.parse(data.toString()); } catch { msg = { unparsable: data.toString(), isBinary }; }
      seen.push(msg);
    });
    const res = await c.auth(ed.token(claims), ed.workspaceId);
    assert.equal(res.data.success, true, `auth failed: ${JSON.stringify(res)}`);
    clients.push(c);
    return c;
  }

  async function assertAlive(c) {
    const id = `alive${Math.random().toString(36).slice(2)}`;
    const pong = await c.request({ type: 'ping', id });
    assert.equal(pong.type, 'pong');
    assert.equal(c.closeInfo, undefined);
  }

  before(async () => {
    dir = tempDir('companion-msg-');
    mkdirSync(path.join(dir, 'proj'));
    ed = new Editor();
    await ed.startServer({ folders: [path.join(dir, 'proj')] });
  });
  after(async () => {
    clients.forEach((c) => c.terminate());
    await ed.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('malformed JSON -> error INVALID_MESSAGE, the connection stays open', async () => {
    const c = await client();
    for (const bad of ['{not json', '{"type":"ping"', '', ' ', '{"type":"ping","id":"x"} trailing', "{'type':'ping'}",
      '{"type":"ping",}', 'nul', '[1,2', '['.repeat(10000), '{"a":'.repeat(5000)]) {
      c.send(bad);
      const err = await c.next();
      assert.equal(err.type, 'error', `for ${JSON.stringify(bad.slice(0, 40))}: ${JSON.stringify(err)}`);
      assert.equal(err.data.code, 'INVALID_MESSAGE', `for ${JSON.stringify(bad.slice(0, 40))}`);
      assert.equal(typeof err.data.message, 'string');
    }
    await assertAlive(c);
  });

  test('unescaped control characters inside a JSON string (invalid JSON, RFC 8259) -> INVALID_MESSAGE', async () => {
    const c = await client();
    for (const bad of ['{"type":"ping","id":"a\u0001b"}', '{"type":"ping","id":"a\nb"}', '{"type":"ping","id":"a\u0000b"}']) {
      c.send(bad);
      const m = await c.next();
      assert.equal(m.type, 'error', `${JSON.stringify(bad)} was accepted: ${JSON.stringify(m)}`);
      assert.equal(m.data.code, 'INVALID_MESSAGE');
    }
    await assertAlive(c);
  });

  test('JSON that is not an object (array, number, string, null, true) -> INVALID_MESSAGE', async () => {
    const c = await client();
    for (const bad of ['[]', '[{"type":"ping","id":"x"}]', '42', '"ping"', 'null', 'true']) {
      c.send(bad);
      const err = await c.next();
      assert.equal(err.type, 'error', `for ${bad}`);
      assert.equal(err.data.code, 'INVALID_MESSAGE', `for ${bad}`);
    }
    await assertAlive(c);
  });

  test('missing type / type not a string -> INVALID_MESSAGE', async () => {
    const c = await client();
    for (const bad of [{}, { id: 'm1' }, { type: 5, id: 'm2' }, { type: null, id: 'm3' }, { type: ['ping'], id: 'm4' },
      { type: { ping: 1 }, id: 'm5' }, { data: {}, id: 'm6' }]) {
      c.send(bad);
      const err = await c.next();
      assert.equal(err.type, 'error', `for ${JSON.stringify(bad)}`);
      assert.equal(err.data.code, 'INVALID_MESSAGE', `for ${JSON.stringify(bad)}`);
    }
    await assertAlive(c);
  });

  test('an INVALID_MESSAGE reply to an object with a valid id echoes that id (type missing or wrong)', async () => {
    const c = await client();
    for (const [bad, id] of [[{ id: 't1' }, 't1'], [{ type: 5, id: 't2' }, 't2'], [{ type: 'ping', id: 't3', data: 7 }, 't3']]) {
      c.send(bad);
      const err = await c.next();
      assert.equal(err.data.code, 'INVALID_MESSAGE');
      assert.equal(err.id, id, `reply to ${JSON.stringify(bad)} lacks its id: ${JSON.stringify(err)}`);
    }
  });

  test('data not an object -> INVALID_MESSAGE', async () => {
    const c = await client();
    for (const data of [[], 'x', 5, true, [1]]) {
      const err = await c.request({ type: 'command', id: 'd1', data });
      assert.equal(err.type, 'error', `data ${JSON.stringify(data)}`);
      assert.equal(err.data.code, 'INVALID_MESSAGE', `data ${JSON.stringify(data)}`);
    }
    for (const data of [[], 'x']) {
      const err = await c.request({ type: 'ping', id: 'd2', data });
      assert.equal(err.type, 'error');
      assert.equal(err.data.code, 'INVALID_MESSAGE');
    }
    await assertAlive(c);
  });

  test('id is echoed for string and integer ids, on pong, command_response and error', async () => {
    const c = await client();
    for (const id of ['s1', '', 'ünïcödé-✓', 'x'.repeat(256), 0, 7, -3, 123456789012]) {
      const pong = await c.request({ type: 'ping', id });
      assert.equal(pong.type, 'pong');
      assert.deepEqual(pong.id, id);
      const res = await c.request({ type: 'command', id, data: { name: 'workspace.info' } });
      assert.equal(res.type, 'command_response');
      assert.deepEqual(res.id, id);
      const err = await c.request({ type: 'nope', id });
      assert.equal(err.type, 'error');
      assert.deepEqual(err.id, id);
    }
    // No id in, no id out.
    c.send({ type: 'ping' });
    const pong = await c.next();
    assert.equal(pong.type, 'pong');
    assert.equal('id' in pong, false);
  });

  test('unknown type -> error UNKNOWN_TYPE with the id, connection stays', async () => {
    const c = await client();
    for (const type of ['bogus', '', 'PING', 'command_response', 'pong']) {
      const err = await c.request({ type, id: `u-${type}` });
      assert.equal(err.type, 'error', `type ${JSON.stringify(type)}`);
      assert.equal(err.data.code, 'UNKNOWN_TYPE', `type ${JSON.stringify(type)}`);
      assert.equal(err.id, `u-${type}`);
    }
    await assertAlive(c);
  });

  test('unknown command name -> command_response success:false UNKNOWN_COMMAND', async () => {
    const c = await client({ scope: 'read run editor' });
    for (const name of ['no.such.command', '', 'WORKSPACE.INFO', 'workspace.info ', '__proto__']) {
      const res = await c.command(name, undefined, 'uc');
      assert.equal(res.type, 'command_response', `name ${JSON.stringify(name)}`);
      assert.equal(res.id, 'uc');
      assert.equal(res.data.success, false);
      assert.equal(res.data.error.code, 'UNKNOWN_COMMAND', `name ${JSON.stringify(name)}`);
      assert.equal(typeof res.data.error.message, 'string');
    }
    await assertAlive(c);
  });

  test('workspace.info with args not an object -> INVALID_ARGS', async () => {
    const c = await client();
    for (const args of [[], 'x', 5, true]) {
      const res = await c.command('workspace.info', args, 'ia');
      assert.equal(res.id, 'ia');
      assert.equal(res.type, 'command_response', `args ${JSON.stringify(args)}: ${JSON.stringify(res)}`);
      assert.equal(res.data.success, false);
      assert.equal(res.data.error.code, 'INVALID_ARGS', `args ${JSON.stringify(args)}`);
    }
    await assertAlive(c);
  });

  test('workspace.info -> {workspaceId, name, folders:[{name,path}], version}', async () => {
    const c = await client();
    const res = await c.command('workspace.info', {}, 'wi');
    assert.equal(res.type, 'command_response');
    assert.equal(res.id, 'wi');
    assert.equal(res.data.success, true);
    const r = res.data.result;
    assert.equal(r.workspaceId, ed.workspaceId);
    assert.equal(typeof r.name, 'string');
    assert.ok(Array.isArray(r.folders));
    assert.equal(r.folders.length, 1);
    assert.equal(r.folders[0].name, 'proj');
    assert.equal(typeof r.folders[0].path, 'string');
    const health = JSON.parse((await httpGet(ed.port, '/health')).body);
    assert.equal(r.version, health.version);
    // No args and null args are the same.
    const again = await c.request({ type: 'command', id: 'wi2', data: { name: 'workspace.info', args: null } });
    assert.deepEqual(again.data.result, r);
  });

  for (const scope of ['', 'editor']) {
    test(`a token with scope ${JSON.stringify(scope)} gets FORBIDDEN for workspace.info`, async () => {
      const c = await client({ scope });
      const res = await c.command('workspace.info', undefined, 'fb');
      assert.equal(res.id, 'fb');
      assert.ok(res.type === 'command_response' || res.type === 'error', JSON.stringify(res));
      const code = res.type === 'error' ? res.data.code : res.data.error?.code;
      assert.equal(res.data.success === true, false, 'the command ran');
      assert.equal(code, 'FORBIDDEN');
      await assertAlive(c);
    });
  }

  test('a token with scope "read" may run workspace.info', async () => {
    const c = await client({ scope: 'read' });
    const res = await c.command('workspace.info', undefined, 'rd');
    assert.equal(res.data.success, true);
  });

  test('a binary frame -> INVALID_MESSAGE, the connection stays', async () => {
    const c = await client();
    c.ws.send(Buffer.from(JSON.stringify({ type: 'ping', id: 'bin' })), { binary: true });
    const err = await c.next();
    assert.equal(err.type, 'error');
    assert.equal(err.data.code, 'INVALID_MESSAGE');
    assert.equal(c.queue.find((m) => m.type === 'pong'), undefined);
    await assertAlive(c);
  });

  describe('invalid UTF-8 in a text frame -> close 1007', { concurrency: true }, () => {
    const pre = Buffer.from('{"type":"ping","id":"');
    const post = Buffer.from('"}');
    const badUtf8 = [
      ['a lone 0xff', Buffer.from([0x7b, 0xff, 0x7d])],
      ['inside a JSON string', Buffer.concat([pre, Buffer.from([0xc3, 0x28]), post])],
      ['an encoded surrogate (CESU-8)', Buffer.concat([pre, Buffer.from([0xed, 0xa0, 0x80]), post])],
      ['an overlong encoding', Buffer.concat([pre, Buffer.from([0xc0, 0xaf]), post])],
      ['a code point above U+10FFFF', Buffer.concat([pre, Buffer.from([0xf4, 0x90, 0x80, 0x80]), post])],
      ['a truncated sequence at the end', Buffer.concat([Buffer.from('{"type":"ping","id":"x"}'), Buffer.from([0xe2, 0x82])])],
    ];
    for (const [name, bytes] of badUtf8) {
      test(name, async () => {
        const c = await client();
        const clientErrors = [];
        c.ws.on('error', (e) => clientErrors.push(e.message));
        c.ws.send(bytes, { binary: false });
        const info = await c.waitClose(2000 * SLOW).catch((e) => ({ code: `none (${e.message})` }));
        assert.equal(info.code, 1007, `close ${info.code}; received ${JSON.stringify(c.queue)}; client-side errors: ${JSON.stringify(clientErrors)}`);
        assert.equal(c.queue.find((m) => m.type === 'pong'), undefined);
      });
    }

    test('split across fragments', async () => {
      const c = await client();
      c.ws.send(pre, { binary: false, fin: false });
      c.ws.send(Buffer.from([0xe2, 0x82]), { binary: false, fin: false });
      c.ws.send(post, { binary: false, fin: true });
      const info = await c.waitClose(2000 * SLOW).catch((e) => ({ code: `none (${e.message})` }));
      assert.equal(info.code, 1007, `close ${info.code}; received ${JSON.stringify(c.queue)}`);
    });
  });

  test('valid multi-byte UTF-8 split across fragments is accepted', async () => {
    const c = await client();
    const text = Buffer.from(JSON.stringify({ type: 'ping', id: 'é✓😀' }));
    const cut1 = text.indexOf(0xc3) + 1; // inside é
    const cut2 = text.indexOf(0xf0) + 2; // inside the emoji
    c.ws.send(text.subarray(0, cut1), { binary: false, fin: false });
    c.ws.send(text.subarray(cut1, cut2), { binary: false, fin: false });
    c.ws.send(text.subarray(cut2), { binary: false, fin: true });
    const pong = await c.next();
    assert.equal(pong.type, 'pong');
    assert.equal(pong.id, 'é✓😀');
  });

  test('a large message (900 KB, under the 1 MiB default) is received whole', async () => {
    const c = await client();
    const pad = 'y'.repeat(900 * 1024);
    const pong = await c.request({ type: 'ping', id: 'big', data: { pad } });
    assert.equal(pong.type, 'pong');
    // and once more in fragments of 64 KB
    const text = Buffer.from(JSON.stringify({ type: 'ping', id: 'bigfrag', data: { pad } }));
    for (let off = 0; off < text.length; off += 65536) {
      const end = Math.min(off + 65536, text.length);
      c.ws.send(text.subarray(off, end), { binary: false, fin: end === text.length });
    }
    const pong2 = await c.next((m) => m.id === 'bigfrag');
    assert.equal(pong2.type, 'pong');
    await assertAlive(c);
  });

  test('a server-initiated close reaches a client that is still sending: bad auth pipelined with pings -> auth_response, close 4001', async () => {
    const c = await connect(ed.url);
    c.send({ type: 'auth', id: 'a1', data: { token: 'not.a.jwt', workspaceId: ed.workspaceId } });
    for (let i = 0; i < 200; i++) c.send({ type: 'ping', id: `p${i}` });
    const info = await c.waitClose();
    const res = c.queue.find((m) => m.id === 'a1');
    assert.equal(info.code, 4001, `close ${info.code}; received ${JSON.stringify(c.queue)}`);
    assert.ok(res, 'the auth_response was lost');
    assert.equal(res.data.error.code, 'AUTH_INVALID');
    assert.equal(c.queue.find((m) => m.type === 'pong'), undefined, 'pings after a failed auth were answered');
  });

  test('every server message carries a numeric timestamp (ms since the epoch)', async () => {
    const c = await client();
    await c.request({ type: 'ping', id: 'ts1' });
    await c.command('workspace.info', undefined, 'ts2');
    await c.command('nope', undefined, 'ts3');
    await c.request({ type: 'nope', id: 'ts4' });
    c.send('{bad');
    await c.next();
    assert.ok(seen.length >= 20, `only ${seen.length} messages seen`);
    const now = Date.now();
    for (const m of seen) {
      assert.equal(typeof m.timestamp, 'number', `no timestamp: ${JSON.stringify(m).slice(0, 200)}`);
      assert.ok(Number.isInteger(m.timestamp));
      assert.ok(Math.abs(now - m.timestamp) < 10 * 60 * 1000, `timestamp ${m.timestamp} is not ms since the epoch near now`);
    }
    const types = new Set(seen.map((m) => m.type));
    for (const t of ['auth_response', 'pong', 'command_response', 'error']) assert.ok(types.has(t), `no ${t} seen`);
  });
});
