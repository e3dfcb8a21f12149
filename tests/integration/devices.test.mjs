// Devices (issue 19) and pairing tokens (issue 17) through the real helper:
// tokens name a device, the registry in $XDG_STATE_HOME lists them, a
// revocation closes that device's sessions at once (4001) and survives a
// restart, a pairing token is exchanged once for a device token, and a
// registry file that is corrupt or cannot be written never stops the helper.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, statSync, existsSync, realpathSync } from 'node:fs';
import { spawnSync, execFileSync } from 'node:child_process';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  Editor, Served, connect, configHome, newSecret, sleep, tempDir, waitFor, HELPER_BIN, SLOW,
} from './lib/harness.mjs';

const registryPath = (home, ws) => path.join(home.env.XDG_STATE_HOME, 'companion', `devices-${ws}.json`);

/* A helper in editor mode with its own state folder, server started. */
async function started(home, { workspaceId = 'ws-dev-1', secret = newSecret() } = {}) {
  const ed = new Editor({ env: home.env });
  await ed.startServer({ workspaceId, secret });
  return ed;
}

async function authed(ed, token) {
  const c = await connect(ed.url);
  const res = await c.auth(token, ed.workspaceId);
  return { c, res };
}

async function refused(ed, token, pattern) {
  const { c, res } = await authed(ed, token);
  assert.equal(res.data.success, false, JSON.stringify(res));
  assert.equal(res.data.error.code, 'AUTH_INVALID');
  assert.match(res.data.error.message, pattern);
  const closed = await c.waitClose();
  assert.equal(closed.code, 4001);
}

const list = async (ed) => (await ed.request('devices/list', {}));
const entry = async (ed, id) => (await list(ed)).devices.find((d) => d.id === id);

function decodePairUrl(pairUrl) {
  const m = /^http:\/\/127\.0\.0\.1:\d+\/#pair=([A-Za-z0-9_-]+)$/.exec(pairUrl);
  assert.ok(m, `pairUrl shape: ${pairUrl}`);
  return JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8'));
}

async function rpcError(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}

describe('pairing tokens', () => {
  test('a pairing token is exchanged once for a device token; a second use is refused', async () => {
    const home = configHome();
    const ed = await started(home);
    try {
      const r = await ed.request('auth/issueToken', {
        pairing: true, deviceName: 'Pixel 8', scopes: ['read', 'run'], ttlSeconds: 7200, userId: 'ana',
      });
      assert.equal(r.pairing, true);
      assert.equal(r.deviceName, 'Pixel 8');
      assert.match(r.deviceId, /^[0-9a-f]{12}$/);
      assert.equal(r.deviceTtlSeconds, 7200);
      assert.ok(Math.abs(r.expiresAt - (Date.now() + 600000)) < 5000, 'a pairing token lives 10 minutes');
      const claims = jwt.verify(r.token, ed.secret);
      assert.equal(claims.pairing, true);
      assert.equal(claims.dev, r.deviceId);
      const payload = decodePairUrl(r.pairUrl);
      assert.deepEqual(payload, { v: 1, url: ed.url, workspaceId: ed.workspaceId, token: r.token, expiresAt: r.expiresAt });
      assert.equal((await entry(ed, r.deviceId)).state, 'pending');

      const { c, res } = await authed(ed, r.token);
      assert.equal(res.data.success, true, JSON.stringify(res));
      assert.equal(res.data.deviceId, r.deviceId);
      assert.equal(typeof res.data.deviceToken, 'string');
      const dev = jwt.verify(res.data.deviceToken, ed.secret);
      assert.equal(dev.dev, r.deviceId);
      assert.equal(dev.pairing, undefined, 'the device token is no pairing token');
      assert.equal(dev.sub, 'ana');
      assert.equal(dev.scope, 'read run');
      assert.ok(Math.abs(dev.exp * 1000 - (Date.now() + 7200000)) < 5000);
      assert.ok(Math.abs(res.data.expiresAt - dev.exp * 1000) < 2000);
      const e = await entry(ed, r.deviceId);
      assert.equal(e.paired, true);
      assert.equal(e.state, 'active');
      assert.equal(e.connected, true);

      // Spent: as a message and as the upgrade's query.
      await refused(ed, r.token, /already used: pair again/);
      const q = await connect(`${ed.url}?token=${r.token}&workspaceId=${ed.workspaceId}`);
      const qr = await q.next((m) => m.type === 'auth_response');
      assert.equal(qr.data.success, false);
      assert.match(qr.data.error.message, /already used/);
      assert.equal((await q.waitClose()).code, 4001);

      // The device token works, again and again; its session is untouched.
      const again = await authed(ed, res.data.deviceToken);
      assert.equal(again.res.data.success, true);
      assert.equal(again.res.data.deviceId, r.deviceId);
      assert.equal(again.res.data.deviceToken, undefined);
      again.c.close();
      assert.equal((await c.request({ type: 'ping', id: 'p' })).type, 'pong');
      c.close();
    } finally {
      await ed.stop();
    }
  });

  test('a revoked pairing link and a pairing token for an unknown device are refused', async () => {
    const home = configHome();
    const ed = await started(home);
    try {
      const r = await ed.request('auth/issueToken', { pairing: true, deviceName: 'lost link' });
      assert.deepEqual(await ed.request('devices/revoke', { id: r.deviceId }), { revoked: true });
      await refused(ed, r.token, /revoked/);
      await refused(ed, ed.token({ dev: 'nosuchdevice', pairing: true }), /names no device/);
      // A non-pairing device entry cannot be paired with a forged pairing claim either.
      const plain = await ed.request('auth/issueToken', { deviceName: 'plain' });
      await refused(ed, ed.token({ dev: plain.deviceId, pairing: true }), /names no device/);
      // Malformed claims: AUTH_INVALID.
      await refused(ed, ed.token({ pairing: true }), /pairing token must name/);
      await refused(ed, ed.token({ dev: 'a b' }), /not a valid device id/);
      await refused(ed, ed.token({ dev: 7 }), /'dev' is not a string/);
      await refused(ed, ed.token({ dev: 'abc', pairing: 'yes' }), /'pairing' is not a boolean/);
    } finally {
      await ed.stop();
    }
  });
});

describe('devices', () => {
  test('two devices: revoking one closes its session with 4001, the other stays; notifications name them', async () => {
    const home = configHome();
    const ed = await started(home);
    try {
      const a = await ed.request('auth/issueToken', { deviceName: 'Phone A', ttlSeconds: 3600 });
      const b = await ed.request('auth/issueToken', { deviceName: 'Phone B', ttlSeconds: 3600 });
      assert.equal(a.pairing, false);
      assert.equal(a.pairUrl, undefined);
      assert.equal(jwt.decode(a.token).dev, a.deviceId);
      const ca = await authed(ed, a.token);
      const cb = await authed(ed, b.token);
      assert.equal(ca.res.data.deviceId, a.deviceId);
      const conn = await ed.waitNotification('companion/clientConnected', (p) => p.deviceId === a.deviceId);
      assert.equal(conn.deviceName, 'Phone A');
      const st = await ed.request('server/status', {});
      const names = st.clients.map((c) => `${c.deviceId}:${c.deviceName}`).sort();
      assert.deepEqual(names, [`${a.deviceId}:Phone A`, `${b.deviceId}:Phone B`].sort());

      const before = ed.notifications.filter((n) => n.method === 'companion/devicesChanged').length;
      assert.deepEqual(await ed.request('devices/revoke', { id: a.deviceId }), { revoked: true });
      const closed = await ca.c.waitClose();
      assert.equal(closed.code, 4001);
      assert.equal(closed.reason, 'this device was revoked');
      await waitFor(() => ed.notifications.filter((n) => n.method === 'companion/devicesChanged').length > before,
        'devicesChanged');
      assert.equal((await cb.c.request({ type: 'ping', id: 'p' })).type, 'pong');
      await refused(ed, a.token, /this device was revoked/);
      const ea = await entry(ed, a.deviceId);
      assert.equal(ea.revoked, true);
      assert.equal(ea.state, 'revoked');
      assert.equal(ea.connected, false);
      const eb = await entry(ed, b.deviceId);
      assert.equal(eb.connected, true);
      assert.equal(eb.name, 'Phone B');
      assert.deepEqual(eb.scopes, ['read']);
      cb.c.close();
    } finally {
      await ed.stop();
    }
  });

  test('tokens without a device are listed as unnamed and can be revoked; unknown device ids are admitted', async () => {
    const home = configHome();
    const ed = await started(home);
    try {
      const legacy = ed.token({ sub: 'old' });
      const other = ed.token({ sub: 'old', jti: 'another token' });
      const l = await authed(ed, legacy);
      assert.match(l.res.data.deviceId, /^t-[0-9a-f]{12}$/);
      const e = await entry(ed, l.res.data.deviceId);
      assert.equal(e.name, 'unnamed');
      assert.equal(e.unnamed, true);
      assert.equal(e.userId, 'old');
      assert.equal(e.connected, true);
      const o = await authed(ed, other);
      assert.notEqual(o.res.data.deviceId, l.res.data.deviceId);

      await ed.request('devices/revoke', { id: l.res.data.deviceId });
      assert.equal((await l.c.waitClose()).code, 4001);
      await refused(ed, legacy, /revoked/);
      assert.equal((await o.c.request({ type: 'ping', id: 'p' })).type, 'pong');
      o.c.close();

      const s = await authed(ed, ed.token({ dev: 'script-1' }));
      assert.equal(s.res.data.success, true);
      assert.equal(s.res.data.deviceId, 'script-1');
      assert.equal((await entry(ed, 'script-1')).name, 'unregistered');
      s.c.close();
    } finally {
      await ed.stop();
    }
  });

  test('rename, and bad input: unknown ids, bad names, wrong types', async () => {
    const home = configHome();
    const ed = await started(home);
    try {
      const a = await ed.request('auth/issueToken', { deviceName: 'old name' });
      assert.deepEqual(await ed.request('devices/rename', { id: a.deviceId, name: 'Téléphone 🙂' }), { renamed: true });
      assert.equal((await entry(ed, a.deviceId)).name, 'Téléphone 🙂');

      let e = await rpcError(ed.request('devices/revoke', { id: 'abcdef012345' }));
      assert.equal(e.code, -32602);
      assert.equal(e.data.code, 'UNKNOWN_DEVICE');
      e = await rpcError(ed.request('devices/rename', { id: 'abcdef012345', name: 'x' }));
      assert.equal(e.data.code, 'UNKNOWN_DEVICE');
      for (const id of [undefined, 7, '', 'a b', 'x'.repeat(65), ['a']]) {
        e = await rpcError(ed.request('devices/revoke', { id }));
        assert.equal(e.code, -32602, `id ${JSON.stringify(id)}`);
        assert.match(e.message, /^id: expected a device id/);
      }
      for (const name of [undefined, '', 'x'.repeat(65), 'a\nb', 5, null]) {
        e = await rpcError(ed.request('devices/rename', { id: a.deviceId, name }));
        assert.equal(e.code, -32602, `name ${JSON.stringify(name)}`);
        assert.match(e.message, /^name: expected/);
      }
      e = await rpcError(ed.request('devices/revoke', [1]));
      assert.equal(e.code, -32602);
      for (const p of [{ deviceName: '' }, { deviceName: 'x'.repeat(65) }, { deviceName: 3 }, { deviceName: 'a\tb' }]) {
        e = await rpcError(ed.request('auth/issueToken', p));
        assert.match(e.message, /^deviceName: expected/);
      }
      e = await rpcError(ed.request('auth/issueToken', { pairing: 'yes' }));
      assert.match(e.message, /^pairing: expected a boolean/);
      // 64 characters (not bytes) is the longest name.
      const long = await ed.request('auth/issueToken', { deviceName: 'é'.repeat(64) });
      assert.equal(long.deviceName, 'é'.repeat(64));
      // The default name.
      assert.equal((await ed.request('auth/issueToken', {})).deviceName, 'device');
    } finally {
      await ed.stop();
    }
  });

  test('a restart keeps the revocation; the registry file is 0600 and holds no token or secret', async () => {
    const home = configHome();
    const secret = newSecret();
    let ed = await started(home, { secret });
    let a; let b; let legacy; let legacyId;
    try {
      a = await ed.request('auth/issueToken', { deviceName: 'revoked one' });
      b = await ed.request('auth/issueToken', { deviceName: 'kept one' });
      legacy = ed.token({ sub: 'legacy' });
      const l = await authed(ed, legacy);
      legacyId = l.res.data.deviceId;
      l.c.close();
      await ed.request('devices/revoke', { id: a.deviceId });
      await ed.request('devices/revoke', { id: legacyId });
    } finally {
      await ed.stop();
    }
    const file = registryPath(home, 'ws-dev-1');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    for (const s of [a.token, b.token, legacy, secret]) assert.ok(!text.includes(s), 'no token or secret in the registry');
    const saved = JSON.parse(text);
    assert.equal(saved.v, 1);
    assert.deepEqual(saved.devices.map((d) => d.id).sort(), [a.deviceId, b.deviceId, legacyId].sort());

    ed = await started(home, { secret });
    try {
      await refused(ed, a.token, /revoked/);
      await refused(ed, legacy, /revoked/);
      const ok = await authed(ed, b.token);
      assert.equal(ok.res.data.success, true);
      assert.equal((await entry(ed, b.deviceId)).name, 'kept one');
      ok.c.close();
    } finally {
      await ed.stop();
    }
  });

  test('a corrupt registry: the helper keeps serving, says so, and leaves the file alone', async () => {
    const home = configHome();
    const file = registryPath(home, 'ws-dev-1');
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, '{"v":1,"devices":[{"id":', { mode: 0o600 });
    const ed = await started(home);
    try {
      const legacy = await authed(ed, ed.token());
      assert.equal(legacy.res.data.success, true);
      const a = await ed.request('auth/issueToken', { deviceName: 'in memory' });
      const ca = await authed(ed, a.token);
      assert.equal(ca.res.data.success, true);
      const l = await list(ed);
      assert.match(l.problem, /corrupt/);
      assert.ok(l.devices.some((d) => d.id === a.deviceId));
      assert.match((await ed.request('server/status', {})).devicesProblem, /corrupt/);
      assert.match(ed.stderr, /corrupt.*memory only/);
      // Revocation still works, in memory.
      await ed.request('devices/revoke', { id: a.deviceId });
      assert.equal((await ca.c.waitClose()).code, 4001);
      await refused(ed, a.token, /revoked/);
      assert.equal(readFileSync(file, 'utf8'), '{"v":1,"devices":[{"id":', 'the file is left alone');
      legacy.c.close();
    } finally {
      await ed.stop();
    }
  });

  test('a registry that cannot be written: the helper keeps serving and says so', async () => {
    const home = configHome();
    const file = registryPath(home, 'ws-dev-1');
    // A folder where the file should be: neither readable as a file nor
    // replaceable by rename (this works as root too, unlike a chmod).
    mkdirSync(file, { recursive: true, mode: 0o700 });
    const ed = await started(home);
    try {
      const a = await ed.request('auth/issueToken', { deviceName: 'memory only', pairing: true });
      const ca = await authed(ed, a.token);
      assert.equal(ca.res.data.success, true);
      assert.equal(typeof ca.res.data.deviceToken, 'string');
      await refused(ed, a.token, /already used/);
      const l = await list(ed);
      assert.ok(l.problem, 'a problem is reported');
      await ed.request('devices/revoke', { id: a.deviceId });
      assert.equal((await ca.c.waitClose()).code, 4001);
      await refused(ed, ca.res.data.deviceToken, /revoked/);
      assert.ok(existsSync(file) && statSync(file).isDirectory());
    } finally {
      await ed.stop();
    }
  });
});

test('a revocation written by another process closes the session at once', async () => {
  const home = configHome();
  const ed = await started(home);
  try {
    const a = await ed.request('auth/issueToken', { deviceName: 'watched' });
    const ca = await authed(ed, a.token);
    const file = registryPath(home, 'ws-dev-1');
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    saved.devices.find((d) => d.id === a.deviceId).revoked = true;
    // As the CLI does: a new file renamed into place.
    writeFileSync(`${file}.new`, JSON.stringify(saved), { mode: 0o600 });
    const { renameSync } = await import('node:fs');
    renameSync(`${file}.new`, file);
    const closed = await ca.c.waitClose(3000 * SLOW);
    assert.equal(closed.code, 4001);
    await sleep(10);
  } finally {
    await ed.stop();
  }
});

describe('the command line', () => {
  const run = (home, args) => {
    const r = spawnSync(HELPER_BIN, args, { env: { ...process.env, ...home.env }, encoding: 'utf8', timeout: 10000 * SLOW });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const gitFolder = () => {
    const dir = realpathSync(tempDir('companion-ws-'));
    execFileSync('git', ['init', '-q', dir]);
    return dir;
  };

  test('token --pairing, devices, devices --revoke closes a running serve\'s session', async () => {
    const home = configHome();
    const dir = gitFolder();
    const srv = new Served(['--workspace', dir, '--host', '127.0.0.1', '--port', '0', '--scope', 'read,run'], { env: home.env });
    try {
      const b = await srv.banner();
      assert.match(srv.stdout, /device [0-9a-f]{12} "serve token"/);
      assert.match(srv.stdout, /Pair a phone: run `companion-helper token --pairing/);
      const c = await connect(b.url);
      const res = await c.auth(b.token, b.workspaceId);
      assert.equal(res.data.success, true);
      const serveId = res.data.deviceId;
      assert.match(srv.stdout, new RegExp(`device ${serveId}`));

      // A pairing token from the CLI: token on stdout, link on stderr.
      const p = run(home, ['token', '--pairing', '--name', 'CLI phone', '--workspace', dir, '--scope', 'read', '--ttl', '2h']);
      assert.equal(p.code, 0, p.stderr);
      const token = p.stdout.trim();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal(jwt.decode(token).pairing, true);
      const link = /(http:\/\/\S+#pair=\S+)/.exec(p.stderr)[1];
      const payload = JSON.parse(Buffer.from(link.split('#pair=')[1], 'base64url').toString());
      assert.equal(payload.token, token);
      assert.equal(payload.workspaceId, b.workspaceId);
      const pc = await connect(b.url);
      const pr = await pc.auth(token, b.workspaceId);
      assert.equal(pr.data.success, true, JSON.stringify(pr));
      assert.equal(typeof pr.data.deviceToken, 'string');
      pc.close();

      const listed = run(home, ['devices', '--workspace', dir]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^ID\s+NAME\s+STATE\s+SCOPES\s+EXPIRES\s+LAST-SEEN$/m);
      assert.match(listed.stdout, new RegExp(`^${serveId}\\s+serve token\\s+active\\s+read,run`, 'm'));
      assert.match(listed.stdout, /CLI phone\s+active\s+read\s/);
      const json = JSON.parse(run(home, ['devices', '--json', '--workspace', dir]).stdout);
      assert.equal(json.devices.find((d) => d.id === serveId).name, 'serve token');

      const rev = run(home, ['devices', '--revoke', serveId, '--workspace', dir]);
      assert.equal(rev.code, 0, rev.stderr);
      assert.match(rev.stdout, new RegExp(`Revoked ${serveId}`));
      const closed = await c.waitClose(3000 * SLOW);
      assert.equal(closed.code, 4001);
      assert.equal(closed.reason, 'this device was revoked');
      const again = await connect(b.url);
      const ar = await again.auth(b.token, b.workspaceId);
      assert.match(ar.data.error.message, /revoked/);

      const ren = run(home, ['devices', '--rename', serveId, '--name', 'old serve', '--workspace', dir]);
      assert.equal(ren.code, 0, ren.stderr);
      assert.match(run(home, ['devices', '--workspace', dir]).stdout, /old serve\s+revoked/);
    } finally {
      await srv.stop();
    }
  });

  test('usage errors and unknown ids', () => {
    const home = configHome();
    const dir = gitFolder();
    const cases = [
      [['devices', '--rename', 'abc'], /--rename ID needs --name/],
      [['devices', '--name', 'x'], /--name only with --rename/],
      [['devices', '--revoke', 'a b'], /expected a device id/],
      [['devices', '--revoke', 'abc', '--rename', 'abc'], /one of --revoke and --rename/],
      [['devices', '--json', '--revoke', 'abc'], /--json lists/],
      [['devices', '--scope', 'read'], /--scope is not an option of devices/],
      [['token', '--revoke', 'abc'], /--revoke is an option of devices/],
      [['token', '--json'], /--json is an option of devices/],
      [['serve', '--pairing'], /--pairing is an option of token/],
      [['token', '--name', ''], /--name: expected 1 to 64/],
      [['token', '--name', 'x'.repeat(65)], /--name: expected 1 to 64/],
      [['devices', 'extra'], /unexpected argument extra/],
    ];
    for (const [args, re] of cases) {
      const r = run(home, [...args, '--workspace', dir]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
    const r = run(home, ['devices', '--revoke', 'abcdef012345', '--workspace', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no device abcdef012345/);
    assert.match(run(home, ['devices', '--workspace', dir]).stdout, /No devices in workspace/);

    // A corrupt registry: the CLI says so and changes nothing.
    const tok = run(home, ['token', '--workspace', dir]);
    assert.equal(tok.code, 0, tok.stderr);
    const id = jwt.decode(tok.stdout.trim()).dev;
    const wsid = jwt.decode(tok.stdout.trim()).workspaceId;
    writeFileSync(registryPath(home, wsid), 'not json');
    const c = run(home, ['devices', '--revoke', id, '--workspace', dir]);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /corrupt and is left alone/);
    assert.equal(readFileSync(registryPath(home, wsid), 'utf8'), 'not json');
    const l = run(home, ['devices', '--workspace', dir]);
    assert.equal(l.code, 0);
    assert.match(l.stderr, /corrupt/);
    assert.match(JSON.parse(run(home, ['devices', '--json', '--workspace', dir]).stdout).problem, /corrupt/);
  });
});

test('a full registry forgets what is harmless to forget, never a revocation in force', async () => {
  const home = configHome();
  const file = registryPath(home, 'ws-dev-1');
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const now = Date.now();
  const dev = (i, extra) => ({
    id: `d${String(i).padStart(11, '0')}`, name: `n${i}`, userId: 'u', scopes: 'read',
    created: now - 100000 + i, expires: now + 3600000, lastSeen: null, revoked: false, paired: false, ...extra,
  });
  // 512 entries, the oldest one revoked: a new device pushes out the oldest
  // that is not revoked.
  const devices = Array.from({ length: 512 }, (_, i) => dev(i, i === 0 ? { revoked: true } : {}));
  writeFileSync(file, JSON.stringify({ v: 1, devices }), { mode: 0o600 });
  let ed = await started(home);
  try {
    const a = await ed.request('auth/issueToken', { deviceName: 'newcomer' });
    const l = await list(ed);
    assert.equal(l.problem, undefined);
    assert.equal(l.devices.length, 512);
    assert.ok(l.devices.some((d) => d.id === devices[0].id && d.revoked), 'the revocation is kept');
    assert.ok(!l.devices.some((d) => d.id === devices[1].id), 'the oldest live entry is forgotten');
    assert.ok(l.devices.some((d) => d.id === a.deviceId));
  } finally {
    await ed.stop();
  }
  // Only revocations in force: nothing may be forgotten, the new device is refused.
  writeFileSync(file, JSON.stringify({ v: 1, devices: devices.map((d) => ({ ...d, revoked: true })) }), { mode: 0o600 });
  ed = await started(home);
  try {
    const e = await rpcError(ed.request('auth/issueToken', { deviceName: 'one too many' }));
    assert.match(e.message, /registry is full/);
    // A token of a revoked device is still refused.
    await refused(ed, ed.token({ dev: devices[5].id }), /revoked/);
  } finally {
    await ed.stop();
  }
});
