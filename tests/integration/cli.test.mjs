// The command line "as a newcomer would" use it: --version, --help, usage
// errors, `serve` in a fresh git folder with its own config home, `token`,
// --config files, the stored secret's permissions, and signals.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, statSync, chmodSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { Served, connect, configHome, tempDir, sleep, HELPER_BIN, SLOW } from './lib/harness.mjs';

/* Runs the binary to completion (for commands that exit by themselves). */
function run(args, { env = {}, cwd } = {}) {
  const r = spawnSync(HELPER_BIN, args, {
    env: { ...process.env, ...env }, cwd, encoding: 'utf8', timeout: 10000 * SLOW,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function gitFolder(prefix = 'companion-ws-') {
  const dir = realpathSync(tempDir(prefix));
  execFileSync('git', ['init', '-q', dir]);
  return dir;
}

const secretPath = (home) => path.join(home.env.XDG_CONFIG_HOME, 'companion', 'secret');
const readSecret = (home) => readFileSync(secretPath(home), 'utf8').replace(/\n$/, '');
/* The key serve and token sign with: derived per workspace from the stored
 * secret, never the secret itself (the same formula as the extension's). */
const workspaceKey = (secret, workspaceId) =>
  createHmac('sha256', secret).update(`companion-workspace-key/v1:${workspaceId}`).digest('hex');

/* Starts `serve`, waits for its banner; stops it if the banner never comes. */
async function serve(args, opts) {
  const srv = new Served(args, opts);
  try {
    const b = await srv.banner();
    return { srv, ...b };
  } catch (e) {
    await srv.stop().catch(() => {});
    throw e;
  }
}

/* Authenticates a ws client with the banner's token and workspace id. */
async function pairedClient(url, token, workspaceId) {
  const c = await connect(url);
  const res = await c.auth(token, workspaceId);
  assert.equal(res.data.success, true, `auth failed: ${JSON.stringify(res)}`);
  return { c, res };
}

describe('informational flags', () => {
  test('--version prints "companion-helper X.Y.Z" and exits 0', () => {
    const r = run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^companion-helper \d+\.\d+\.\d+\S*\n$/);
    assert.equal(r.stderr, '');
  });

  test('--help exits 0 and mentions serve, token and --stdio', () => {
    const r = run(['--help']);
    assert.equal(r.code, 0);
    for (const word of ['serve', 'token', '--stdio']) assert.ok(r.stdout.includes(word), `--help lacks ${word}`);
    assert.equal(r.stderr, '');
  });
});

describe('usage errors: usage on stderr, exit 2, nothing on stdout', () => {
  let home;
  before(() => { home = configHome(); });
  after(() => home.cleanup());
  const cases = [
    ['no arguments', []],
    ['unknown command', ['frobnicate']],
    ['unknown flag', ['--frobnicate']],
    ['serve --port abc', ['serve', '--port', 'abc']],
    ['serve --port 70000', ['serve', '--port', '70000']],
    ['serve with an unknown flag', ['serve', '--bogus']],
    ['token --ttl 0', ['token', '--ttl', '0']],
    ['token --ttl 10x', ['token', '--ttl', '10x']],
    ['token --scope admin', ['token', '--scope', 'admin']],
    ['token --port 1234 (serve only)', ['token', '--port', '1234']],
  ];
  for (const [name, args] of cases) {
    test(name, () => {
      const r = run(args, { env: home.env });
      assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /Usage:/);
      assert.match(r.stderr, /serve/);
    });
  }
});

describe('serve and token in a fresh git folder', () => {
  let home, dir, other;
  before(() => {
    home = configHome();
    dir = gitFolder();
    other = gitFolder();
  });
  after(() => {
    home.cleanup();
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  });

  test('serve prints URL, workspace id and token; creates the secret 0600 in a 0700 folder; the token works', async () => {
    const { srv, url, workspaceId, token } = await serve(['--port', '0'], { env: home.env, cwd: dir });
    try {
      assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/, srv.stdout);
      assert.ok(!url.endsWith(':0/ws'), 'URL shows port 0, not the bound one');
      assert.ok(workspaceId && workspaceId.length > 0, srv.stdout);
      assert.equal(token.split('.').length, 3, `not a JWT: ${token}`);

      const st = statSync(secretPath(home));
      assert.equal(st.mode & 0o777, 0o600, `secret mode ${(st.mode & 0o777).toString(8)}`);
      const dst = statSync(path.dirname(secretPath(home)));
      assert.equal(dst.mode & 0o777, 0o700, `secret folder mode ${(dst.mode & 0o777).toString(8)}`);
      const secret = readSecret(home);
      assert.ok(secret.length >= 32, 'secret too short');

      const claims = jwt.verify(token, workspaceKey(secret, workspaceId), { algorithms: ['HS256'] });
      assert.equal(claims.workspaceId, workspaceId);
      // The stored secret itself signs nothing.
      assert.throws(() => jwt.verify(token, secret, { algorithms: ['HS256'] }), /invalid signature/);

      const { c } = await pairedClient(url, token, workspaceId);
      const info = await c.command('workspace.info', {});
      assert.equal(info.data.success, true, JSON.stringify(info));
      assert.equal(info.data.result.workspaceId, workspaceId);
      assert.deepEqual(info.data.result.folders.map((f) => f.path), [dir]);
      c.close();
      assert.ok(!srv.stderr.includes(secret), 'secret on stderr');
      assert.ok(!srv.stdout.includes(secret), 'secret on stdout');
      const s = await srv.stop();
      assert.equal(s.code, 0);
    } finally {
      await srv.stop();
    }
  });

  test('the workspace id is stable for a folder and differs between folders', async () => {
    const a1 = await serve(['--port', '0'], { env: home.env, cwd: dir });
    let a2, b;
    try {
      [a2, b] = await Promise.all([
        serve(['--port', '0', '--workspace', dir], { env: home.env }),
        serve(['--port', '0'], { env: home.env, cwd: other }),
      ]);
      assert.equal(a2.workspaceId, a1.workspaceId);
      assert.notEqual(b.workspaceId, a1.workspaceId);
      // A token from one workspace does not open the other: its key is
      // another workspace's, so not even a token naming b's id would pass.
      const c = await connect(b.url);
      const res = await c.auth(a1.token, a1.workspaceId);
      assert.equal(res.data.success, false);
      assert.equal(res.data.error.code, 'AUTH_INVALID');
      const forged = jwt.sign({ sub: 'x', workspaceId: b.workspaceId, scope: 'read run editor' },
        workspaceKey(readSecret(home), a1.workspaceId), { algorithm: 'HS256', expiresIn: '1h' });
      const c2 = await connect(b.url);
      assert.equal((await c2.auth(forged, b.workspaceId)).data.error.code, 'AUTH_INVALID');
    } finally {
      await Promise.all([a1.srv.stop(), a2?.srv.stop(), b?.srv.stop()]);
    }
  });

  test('token --scope read,run --ttl 10m --user ci --workspace DIR prints one verifiable JWT', async () => {
    const { srv, workspaceId, url } = await serve(['--port', '0'], { env: home.env, cwd: dir });
    try {
      const r = run(['token', '--scope', 'read,run', '--ttl', '10m', '--user', 'ci', '--workspace', dir], { env: home.env });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines.length, 2, `expected one line: ${JSON.stringify(r.stdout)}`);
      assert.equal(lines[1], '');
      const token = lines[0];
      const claims = jwt.verify(token, workspaceKey(readSecret(home), workspaceId), { algorithms: ['HS256'] });
      assert.equal(claims.sub, 'ci');
      assert.equal(claims.scope, 'read run');
      assert.equal(claims.exp - claims.iat, 600);
      assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60, `iat ${claims.iat}`);
      assert.equal(claims.workspaceId, workspaceId);
      assert.ok(!r.stderr.includes(readSecret(home)));
      // And the running server accepts it with those scopes.
      const { c, res } = await pairedClient(url, token, workspaceId);
      assert.equal(res.data.userId, 'ci');
      assert.deepEqual([...res.data.scopes].sort(), ['read', 'run']);
      c.close();
    } finally {
      await srv.stop();
    }
  });

  test('SIGTERM and SIGINT stop serve with exit code 0; clients get 1001', async () => {
    for (const sig of ['SIGTERM', 'SIGINT']) {
      const { srv, url, workspaceId, token } = await serve(['--port', '0'], { env: home.env, cwd: dir });
      try {
        const { c } = await pairedClient(url, token, workspaceId);
        srv.child.kill(sig);
        const closed = await c.waitClose(3000 * SLOW);
        assert.equal(closed.code, 1001, `${sig}: close ${closed.code}`);
        let t;
        const s = await Promise.race([
          srv.exited,
          new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${sig}: serve still running`)), 3000 * SLOW); }),
        ]).finally(() => clearTimeout(t));
        assert.deepEqual(s, { code: 0, signal: null }, `${sig}: ${JSON.stringify(s)}`);
        assert.ok(!srv.stderr.includes(readSecret(home)), 'secret on stderr');
      } finally {
        await srv.stop();
      }
    }
  });

  test('a group-readable secret file is refused with a chmod/permissions message', async () => {
    const h2 = configHome();
    try {
      const first = run(['token', '--workspace', dir], { env: h2.env });
      assert.equal(first.code, 0, first.stderr);
      const secret = readSecret(h2);
      chmodSync(secretPath(h2), 0o640);
      for (const args of [['token', '--workspace', dir], ['serve', '--port', '0', '--workspace', dir]]) {
        const r = run(args, { env: h2.env });
        assert.notEqual(r.code, 0, `${args[0]} accepted a 0640 secret; stdout: ${r.stdout}`);
        assert.match(r.stderr, /chmod|permission/i, `${args[0]} stderr: ${r.stderr}`);
        assert.ok(!r.stdout.includes('Token:'), `${args[0]} printed a token`);
        assert.ok(!r.stderr.includes(secret), 'secret on stderr');
      }
    } finally {
      h2.cleanup();
    }
  });
});

describe('serve --config', () => {
  let home, dir;
  before(() => {
    home = configHome();
    dir = gitFolder();
  });
  after(() => {
    home.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('settings from the file are honoured (port 0, limits.maxConnections, log level)', async () => {
    const cfg = path.join(home.dir, 'companion.json');
    writeFileSync(cfg, JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      limits: { maxConnections: 1 },
      log: { level: 'debug' },
    }));
    const { srv, url, workspaceId, token } = await serve(['--config', cfg], { env: home.env, cwd: dir });
    try {
      assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
      assert.ok(!url.includes(':3001/'), `config port 0 ignored: ${url}`);
      const { c } = await pairedClient(url, token, workspaceId);
      await assert.rejects(connect(url), (e) => e.status === 503, 'second connection not refused with 503');
      c.close();
      await c.waitClose();
      // The slot is free again once the first client has gone.
      const again = await (async () => {
        const deadline = Date.now() + 3000 * SLOW;
        for (;;) {
          try { return await connect(url); } catch (e) {
            if (Date.now() > deadline) throw e;
            await sleep(50);
          }
        }
      })();
      again.close();
      // Debug logging is on, and even then the secret is not logged.
      const secret = readSecret(home);
      assert.ok(srv.stderr.length > 0, 'nothing logged at debug level');
      assert.ok(!srv.stderr.includes(secret), 'secret on stderr');
    } finally {
      await srv.stop();
    }
  });

  test('--port on the command line overrides the file', async () => {
    const blocker = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    const taken = blocker.address().port;
    const cfg = path.join(home.dir, 'taken.json');
    writeFileSync(cfg, JSON.stringify({ server: { port: taken } }));
    try {
      const { srv, url } = await serve(['--config', cfg, '--port', '0'], { env: home.env, cwd: dir });
      try {
        assert.ok(!url.includes(`:${taken}/`), `file port used despite --port 0: ${url}`);
      } finally {
        await srv.stop();
      }
      // Without the flag the file's (taken) port is used and fails clearly.
      const r = run(['serve', '--config', cfg], { env: home.env, cwd: dir });
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.includes(String(taken)), `stderr does not name port ${taken}: ${r.stderr}`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  const badConfigs = [
    ['a wrongly typed setting', JSON.stringify({ limits: { maxConnections: 'many' } }), /limits\.maxConnections/],
    ['an out-of-range port', JSON.stringify({ server: { port: 70000 } }), /server\.port/],
    ['malformed JSON', '{"server": {', /json|parse|config/i],
  ];
  for (const [name, text, pattern] of badConfigs) {
    test(`a bad config file (${name}) -> clear error on stderr, non-zero exit`, () => {
      const cfg = path.join(home.dir, `bad-${name.replace(/\W+/g, '-')}.json`);
      writeFileSync(cfg, text);
      const r = run(['serve', '--config', cfg], { env: home.env, cwd: dir });
      assert.notEqual(r.code, 0, `exit 0; stdout: ${r.stdout}`);
      assert.equal(r.signal, null);
      assert.match(r.stderr, pattern);
      assert.ok(!r.stdout.includes('Token:'), 'printed a banner anyway');
    });
  }

  test('a missing config file -> error naming the file, non-zero exit', () => {
    const cfg = path.join(home.dir, 'does-not-exist.json');
    const r = run(['serve', '--config', cfg], { env: home.env, cwd: dir });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('does-not-exist.json'), r.stderr);
  });
});
