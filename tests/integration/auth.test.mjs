// Data-plane authentication against the real helper: every outcome of the
// contract's auth rules, with tokens from jsonwebtoken and clients from ws.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { Editor, connect, mintToken, sleep, SLOW } from './lib/harness.mjs';

describe('authentication', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { auth: { timeoutSeconds: 2 } } });
  });
  after(async () => { await ed.stop(); });

  test('a valid token in the first message authenticates with the contract fields', async () => {
    const c = await connect(ed.url);
    const res = await c.auth(ed.token({ sub: 'alice', scope: 'read run' }), ed.workspaceId);
    assert.equal(res.type, 'auth_response');
    assert.equal(res.id, 'a1');
    assert.equal(res.data.success, true);
    assert.equal(res.data.userId, 'alice');
    assert.equal(res.data.workspaceId, ed.workspaceId);
    assert.deepEqual(res.data.scopes, ['read', 'run']);
    assert.equal(res.data.heartbeatIntervalMs, 25000);
    assert.match(res.sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(typeof res.timestamp, 'number');
    const pong = await c.request({ type: 'ping', id: 'p1' });
    assert.equal(pong.type, 'pong');
    c.close();
  });

  test('a token without scope grants read only', async () => {
    const c = await connect(ed.url);
    const res = await c.auth(ed.token({ sub: 'bob' }), ed.workspaceId);
    assert.deepEqual(res.data.scopes, ['read']);
    c.close();
  });

  const refused = [
    ['wrong secret', () => mintToken('not-the-secret', { workspaceId: ed.workspaceId }), 'AUTH_INVALID'],
    ['expired beyond leeway', () => ed.token({ exp: Math.floor(Date.now() / 1000) - 120 }, { expiresIn: null }), 'AUTH_EXPIRED'],
    // RFC 7519: valid before exp (+ leeway, 30 s by default), not during that
    // second: the session would end as it began (a reconnect loop for a
    // client that re-authenticates after 4001).
    ['exp + leeway is this very second', () => ed.token({ exp: Math.floor(Date.now() / 1000) - 30 }, { expiresIn: null }), 'AUTH_EXPIRED'],
    ['missing exp', () => ed.token({}, { expiresIn: null }), 'AUTH_INVALID'],
    ['missing sub', () => jwt.sign({ workspaceId: ed.workspaceId }, ed.secret, { expiresIn: '1h' }), 'AUTH_INVALID'],
    ['nbf ahead', () => ed.token({ nbf: Math.floor(Date.now() / 1000) + 600 }), 'AUTH_INVALID'],
    ['HS384 when HS256 is pinned', () => ed.token({}, { algorithm: 'HS384' }), 'AUTH_INVALID'],
    ['alg none', () => jwt.sign({ sub: 'x', workspaceId: ed.workspaceId }, null, { algorithm: 'none', expiresIn: '1h' }), 'AUTH_INVALID'],
    ['another workspace in the claim', () => ed.token({ workspaceId: 'other' }), 'WORKSPACE_MISMATCH'],
    ['garbage', () => 'not.a.jwt', 'AUTH_INVALID'],
    ['100 KB token', () => 'a'.repeat(100 * 1024), 'AUTH_INVALID'],
  ];
  for (const [name, make, code] of refused) {
    test(`refused: ${name} -> ${code}, then close 4001`, async () => {
      const c = await connect(ed.url);
      const res = await c.auth(make(), ed.workspaceId);
      assert.equal(res.type, 'auth_response');
      assert.equal(res.data.success, false);
      assert.equal(res.data.error.code, code);
      const { code: closeCode } = await c.waitClose();
      assert.equal(closeCode, 4001);
    });
  }

  test('message workspaceId differing from the claim -> WORKSPACE_MISMATCH', async () => {
    const c = await connect(ed.url);
    const res = await c.auth(ed.token(), 'some-other-id');
    assert.equal(res.data.error.code, 'WORKSPACE_MISMATCH');
    assert.equal((await c.waitClose()).code, 4001);
  });

  test('a command before auth -> AUTH_REQUIRED error, close 4001', async () => {
    const c = await connect(ed.url);
    const res = await c.request({ type: 'command', id: 'c1', data: { name: 'workspace.info' } });
    assert.equal(res.type, 'error');
    assert.equal(res.data.code, 'AUTH_REQUIRED');
    assert.equal((await c.waitClose()).code, 4001);
  });

  test('malformed JSON before auth keeps the socket open', async () => {
    const c = await connect(ed.url);
    c.send('{not json');
    const err = await c.next();
    assert.equal(err.type, 'error');
    assert.equal(err.data.code, 'INVALID_MESSAGE');
    const res = await c.auth(ed.token(), ed.workspaceId);
    assert.equal(res.data.success, true);
    c.close();
  });

  test('silence past auth.timeoutSeconds -> close 4001 "authentication timeout"', async () => {
    const c = await connect(ed.url);
    const t0 = Date.now();
    const info = await c.waitClose(6000 * SLOW);
    assert.equal(info.code, 4001);
    assert.equal(info.reason, 'authentication timeout');
    assert.ok(Date.now() - t0 >= 1800, `closed too early: ${Date.now() - t0} ms`);
  });

  test('Authorization: Bearer on the upgrade answers at once', async () => {
    const c = await connect(ed.url, { headers: { Authorization: `Bearer ${ed.token({ sub: 'hdr' })}` } });
    const res = await c.next((m) => m.type === 'auth_response');
    assert.equal(res.data.success, true);
    assert.equal(res.data.userId, 'hdr');
    c.close();
  });

  test('?token= and &workspaceId= on the URL answer at once', async () => {
    const c = await connect(`${ed.url}?token=${ed.token({ sub: 'q' })}&workspaceId=${ed.workspaceId}`);
    const res = await c.next((m) => m.type === 'auth_response');
    assert.equal(res.data.success, true);
    assert.equal(res.data.userId, 'q');
    c.close();
  });

  test('a session is closed 4001 when exp + leeway passes', async () => {
    // leeway 30 s by default: a token that expired 29 s ago is still good for ~1 s.
    const exp = Math.floor(Date.now() / 1000) - 29;
    const c = await connect(ed.url);
    const res = await c.auth(ed.token({ exp }, { expiresIn: null }), ed.workspaceId);
    assert.equal(res.data.success, true);
    const info = await c.waitClose(5000 * SLOW);
    assert.equal(info.code, 4001);
  });

  test('a second auth refreshes the token; another user is refused', async () => {
    const c = await connect(ed.url);
    await c.auth(ed.token({ sub: 'carol' }), ed.workspaceId);
    const r2 = await c.auth(ed.token({ sub: 'carol', scope: 'read run' }), ed.workspaceId, 'a2');
    assert.equal(r2.data.success, true);
    assert.deepEqual(r2.data.scopes, ['read', 'run']);
    const r3 = await c.auth(ed.token({ sub: 'mallory' }), ed.workspaceId, 'a3');
    assert.equal(r3.data.success, false);
    assert.equal((await c.waitClose()).code, 4001);
  });

  test('the secret and tokens never appear in the helper log', async () => {
    const token = ed.token({ sub: 'logcheck' });
    const c = await connect(ed.url);
    await c.auth(token, ed.workspaceId);
    const bad = await connect(ed.url);
    await bad.auth(token + 'x', ed.workspaceId);
    await sleep(100);
    c.close();
    assert.ok(!ed.stderr.includes(ed.secret), 'secret in stderr');
    assert.ok(!ed.stderr.includes(token.split('.')[2]), 'token signature in stderr');
    const all = JSON.stringify(ed.logs);
    assert.ok(!all.includes(ed.secret) && !all.includes(token.split('.')[2]), 'secret or token in window/logMessage');
  });
});
