// Reaching the helper from a phone (issue 17, item 5) through the real
// binary: server.publicUrl (the URL clients are given, accepted as Host and
// Origin, other hosts still refused), bad values refused, publicUrl from a
// workspace's own settings ignored, TLS with a certificate made by
// `openssl req` (wss:// and https:// with `ws` and node:https, plain HTTP
// refused, key permissions, a certificate for another key, the key never
// served), and the warning for a listener beyond loopback without TLS.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync, chmodSync, realpathSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import {
  Editor, Served, connect, configHome, httpGet, rawRequest, tempDir, mintToken,
} from './lib/harness.mjs';

/* A self-signed certificate for localhost and 127.0.0.1 and its key (0600). */
function makeCert(dir, name = 'server') {
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`), key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  return { cert, key, ca: readFileSync(cert) };
}

function gitFolder() {
  const dir = realpathSync(tempDir('companion-remote-ws-'));
  execFileSync('git', ['init', '-q', dir]);
  return dir;
}

/* `serve` with a --config file; resolves with the banner, or rejects with stderr. */
async function serve(home, cwd, config, args = []) {
  const file = path.join(home.dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  const srv = new Served(['--port', '0', '--config', file, ...args], { env: home.env, cwd });
  try {
    return { srv, ...(await srv.banner()) };
  } catch (e) {
    await srv.stop().catch(() => {});
    throw e;
  }
}

/* Runs serve expecting it to refuse to start; returns its exit code and stderr. */
async function serveRefused(home, cwd, config) {
  const file = path.join(home.dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  const srv = new Served(['--port', '0', '--config', file], { env: home.env, cwd });
  // A serve that starts after all is stopped, and reported as 'started'.
  const started = srv.banner().then(() => 'started', () => null);
  const first = await Promise.race([srv.exited.then(() => 'exited'), started]);
  if (first === 'started') {
    await srv.stop();
    return { code: 'started', stderr: srv.stderr, stdout: srv.stdout };
  }
  const s = await srv.checkExit(srv.exited);
  return { code: s.code, stderr: srv.stderr, stdout: srv.stdout };
}

function httpsGet(port, pathName, { ca, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: pathName, method: 'GET', headers, ca,
      servername: 'localhost' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const portOf = (url) => Number(new URL(url).port);

describe('server.publicUrl in editor mode', () => {
  const ed = new Editor();
  let started;
  before(async () => {
    started = await ed.startServer({ settings: { server: { publicUrl: 'https://Box.Example.test/' } } });
  });
  after(async () => { await ed.stop(); });

  test('server/start gives the public URL (normalised) and the page, no warnings', () => {
    assert.equal(started.url, 'wss://box.example.test/ws');
    assert.equal(started.appUrl, 'https://box.example.test/');
    assert.equal(started.tls, false);
    assert.deepEqual(started.warnings, []);
    assert.equal(started.host, '127.0.0.1');
    assert.ok(started.port > 0);
  });

  test('server/status and auth/issueToken give it too', async () => {
    const st = await ed.request('server/status', {});
    assert.equal(st.url, 'wss://box.example.test/ws');
    assert.deepEqual(st.warnings, []);
    const t = await ed.request('auth/issueToken', { userId: 'phone', scopes: ['read'] });
    assert.equal(t.url, 'wss://box.example.test/ws');
  });

  test('a pairing link opens the app at the public address, and its payload names it', async () => {
    const t = await ed.request('auth/issueToken', { userId: 'phone', scopes: ['read'], pairing: true, deviceName: 'phone' });
    assert.equal(t.url, 'wss://box.example.test/ws');
    assert.match(t.pairUrl, /^https:\/\/box\.example\.test\/#pair=[A-Za-z0-9_-]+$/);
    const payload = JSON.parse(Buffer.from(t.pairUrl.split('#pair=')[1], 'base64url').toString());
    assert.equal(payload.url, 'wss://box.example.test/ws');
    assert.equal(payload.workspaceId, ed.workspaceId);
  });

  test('its host is accepted as Host (with and without the default port), others are not', async () => {
    for (const host of ['box.example.test', 'BOX.example.test', 'box.example.test:443', `127.0.0.1:${ed.port}`]) {
      const r = await httpGet(ed.port, '/health', { Host: host });
      assert.equal(r.status, 200, host);
    }
    // DNS rebinding: any other name, or the public name on another port, is refused.
    for (const host of ['evil.example', `evil.example:${ed.port}`, 'box.example.test:8443',
      `box.example.test:${ed.port}`, 'example.test', 'box.example.test.evil.example']) {
      const r = await httpGet(ed.port, '/health', { Host: host });
      assert.equal(r.status, 403, host);
    }
  });

  test('its origin opens /ws and authenticates; other origins are refused', async () => {
    const c = await connect(`ws://127.0.0.1:${ed.port}/ws`,
      { headers: { Host: 'box.example.test', Origin: 'https://box.example.test' } });
    const r = await c.auth(ed.token(), ed.workspaceId);
    assert.equal(r.data.success, true, JSON.stringify(r));
    c.close();
    for (const origin of ['https://evil.example', 'http://box.example.test', 'https://box.example.test:8443',
      'null']) {
      await assert.rejects(connect(`ws://127.0.0.1:${ed.port}/ws`,
        { headers: { Host: 'box.example.test', Origin: origin } }), (e) => e.status === 403, origin);
    }
  });

  test('an SSH forward on another local port: publicUrl http://localhost:8080', async () => {
    await ed.notify('workspace/didChangeConfiguration', {
      settings: { server: { host: '127.0.0.1', port: 0, publicUrl: 'http://localhost:8080' }, auth: { secret: ed.secret } },
    });
    let st;
    for (let i = 0; i < 100; i++) {
      st = await ed.request('server/status', {});
      if (st.url === 'ws://localhost:8080/ws') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(st.url, 'ws://localhost:8080/ws');
    assert.deepEqual(st.warnings, [], 'a loopback publicUrl is not a risk');
    assert.equal((await httpGet(ed.port, '/health', { Host: 'localhost:8080' })).status, 200);
    assert.equal((await httpGet(ed.port, '/health', { Host: 'box.example.test' })).status, 403, 'the old one is gone');
    const c = await connect(`ws://127.0.0.1:${ed.port}/ws`,
      { headers: { Host: 'localhost:8080', Origin: 'http://localhost:8080' } });
    c.close();
  });
});

describe('bad server.publicUrl and server.tls values are refused with clear errors', () => {
  const cases = [
    ['ftp://box.example', /server\.publicUrl: expected an http:\/\/ or https:\/\/ URL/],
    ['box.example', /server\.publicUrl: expected an http:\/\/ or https:\/\/ URL/],
    ['https://user:pw@box.example', /server\.publicUrl: must not contain a user name or password/],
    ['https://box.example/?a=1', /server\.publicUrl: must not have a query/],
    ['https://box.example/#x', /server\.publicUrl: must not have a fragment/],
    ['https://box.example/companion', /server\.publicUrl: must not have a path.*"\/companion"/],
    ['https://', /server\.publicUrl: has no host name/],
    ['https://box.example:0', /server\.publicUrl: the port must be a number from 1 to 65535/],
    ['https://box.example:70000', /server\.publicUrl: the port must be a number from 1 to 65535/],
    ['https://box.example:', /server\.publicUrl: the port must be a number/],
    ['https://box_example', /server\.publicUrl: the host must be a DNS name/],
    ['https://box.example /', /server\.publicUrl: must not contain spaces/],
    ['https://[::1', /server\.publicUrl: expected an IPv6 address in brackets/],
    [42, /server\.publicUrl: expected a URL/],
  ];
  for (const [value, want] of cases) {
    test(`initialize refuses publicUrl ${JSON.stringify(value)}`, async () => {
      const ed = new Editor();
      try {
        await assert.rejects(ed.initialize({ settings: { server: { publicUrl: value } } }),
          (e) => e.code === -32602 && want.test(e.message), `${value}`);
      } finally { await ed.stop(); }
    });
  }
  test('server.tls: one file without the other, a relative path, not an object', async () => {
    for (const [tls, want] of [
      [{ certFile: '/tmp/a.crt' }, /server\.tls: set both certFile and keyFile, or neither/],
      [{ certFile: 'a.crt', keyFile: '/tmp/a.key' }, /server\.tls\.certFile: expected an absolute file path/],
      ['yes', /server\.tls: expected an object/],
      [{ certFile: '/tmp/a.crt', keyFile: 7 }, /server\.tls\.keyFile: expected an absolute file path/],
    ]) {
      const ed = new Editor();
      try {
        await assert.rejects(ed.initialize({ settings: { server: { tls } } }),
          (e) => e.code === -32602 && want.test(e.message), JSON.stringify(tls));
      } finally { await ed.stop(); }
    }
  });
  test('a refused update keeps the running server and its URL', async () => {
    const ed = new Editor();
    try {
      await ed.startServer({ settings: { server: { publicUrl: 'https://good.example' } } });
      await ed.notify('workspace/didChangeConfiguration', {
        settings: { server: { port: 0, publicUrl: 'https://x@bad.example' }, auth: { secret: ed.secret } },
      });
      const st = await ed.request('server/status', {});
      assert.equal(st.url, 'wss://good.example/ws');
      assert.equal((await httpGet(ed.port, '/health', { Host: 'bad.example' })).status, 403);
    } finally { await ed.stop(); }
  });
  test('serve --config with a bad publicUrl exits 1 naming the key', async () => {
    const home = configHome();
    try {
      const r = await serveRefused(home, gitFolder(), { server: { publicUrl: 'https://box.example/app' } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /server\.publicUrl: must not have a path/);
    } finally { home.cleanup(); }
  });
});

describe('a workspace cannot set publicUrl', () => {
  let home, srv, url, dir;
  before(async () => {
    home = configHome();
    dir = gitFolder();
    // What a cloned repository could ship: VS Code's flat and nested forms.
    mkdirSync(path.join(dir, '.vscode'));
    writeFileSync(path.join(dir, '.vscode', 'settings.json'), JSON.stringify({
      'companion.server.publicUrl': 'https://evil.example',
      companion: { server: { publicUrl: 'https://evil.example', allowedHosts: ['evil.example'] } },
    }));
    const s = new Served(['--port', '0'], { env: home.env, cwd: dir });
    ({ url } = await s.banner());
    srv = s;
  });
  after(async () => { await srv?.stop(); home?.cleanup(); });

  test('serve ignores the folder\'s settings: the URL stays the listener\'s, evil.example is refused', async () => {
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.doesNotMatch(srv.stdout, /evil/);
    const port = portOf(url);
    assert.equal((await httpGet(port, '/health', { Host: 'evil.example' })).status, 403);
    await assert.rejects(connect(url, { headers: { Origin: 'https://evil.example' } }), (e) => e.status === 403);
  });
});

describe('TLS: serve with server.tls', () => {
  let home, dir, certs, srv, url, token, workspaceId;
  before(async () => {
    home = configHome();
    dir = gitFolder();
    // Inside the served folder on purpose: the key must still never be served.
    certs = makeCert(path.join(dir, 'certs'));
    ({ srv, url, token, workspaceId } = await serve(home, dir,
      { server: { tls: { certFile: certs.cert, keyFile: certs.key } } }));
  });
  after(async () => { await srv?.stop(); home?.cleanup(); });

  test('the banner gives wss:// and https:// URLs; no warning on loopback', () => {
    assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.match(srv.stdout, /Web app:\s+https:\/\/127\.0\.0\.1:\d+\//);
    assert.match(srv.stdout, /Health:\s+https:\/\/127\.0\.0\.1:\d+\/health/);
    assert.doesNotMatch(srv.stderr, /WARNING/);
  });

  test('GET /health over https answers, with no warnings', async () => {
    const r = await httpsGet(portOf(url), '/health', { ca: certs.ca });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body).warnings, []);
  });

  test('wss:// with ws (ca option): connect and authenticate with the banner\'s token', async () => {
    const c = await connect(url, { ca: certs.ca, servername: 'localhost' });
    const r = await c.auth(token, workspaceId);
    assert.equal(r.data.success, true, JSON.stringify(r));
    const info = await c.command('workspace.info', {});
    assert.equal(info.data.success, true);
    c.close();
  });

  test('the page\'s own https origin opens /ws; its http origin does not', async () => {
    const port = portOf(url);
    const c = await connect(url, { ca: certs.ca, servername: 'localhost', headers: { Origin: `https://127.0.0.1:${port}` } });
    c.close();
    await assert.rejects(connect(url, { ca: certs.ca, servername: 'localhost', headers: { Origin: `http://127.0.0.1:${port}` } }),
      (e) => e.status === 403);
  });

  test('a certificate the client does not trust is refused by the client', async () => {
    await assert.rejects(connect(url), /self[- ]signed|unable to verify|certificate/i);
  });

  test('plain HTTP to the TLS port gets no HTTP answer', async () => {
    const r = await rawRequest(portOf(url), `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${portOf(url)}\r\n\r\n`);
    assert.equal(r.status, null, `answered in clear: ${r.data.slice(0, 100)}`);
    await assert.rejects(httpGet(portOf(url), '/health'));
  });

  test('the key file is never served; the certificate beside it is', async () => {
    const c = await connect(url, { ca: certs.ca, servername: 'localhost' });
    assert.equal((await c.auth(token, workspaceId)).data.success, true);
    const r = await c.command('fs.read', { path: 'certs/server.key' });
    assert.equal(r.data.success, false, JSON.stringify(r.data).slice(0, 200));
    assert.equal(r.data.error.code, 'FORBIDDEN');
    assert.ok(!JSON.stringify(r).includes('PRIVATE KEY'));
    const list = (await c.command('fs.list', { path: 'certs' })).data.result.entries.map((e) => e.name);
    assert.ok(!list.includes('server.key'), list.join(','));
    const crt = await c.command('fs.read', { path: 'certs/server.crt' });
    assert.match(crt.data.result.content, /BEGIN CERTIFICATE/);
    c.close();
  });
});

describe('TLS files that are refused at start', () => {
  let home, dir;
  before(() => { home = configHome(); dir = gitFolder(); });
  after(() => home.cleanup());

  test('a key other users can read: exit 1, chmod 600 advised', async () => {
    const c = makeCert(path.join(home.dir, 'loose'));
    chmodSync(c.key, 0o644);
    const r = await serveRefused(home, dir, { server: { tls: { certFile: c.cert, keyFile: c.key } } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server\.tls\.keyFile: other users can read or change .*\(mode 0644\): chmod 600/);
    assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
  });

  test('a certificate for another key: exit 1 naming both files', async () => {
    const a = makeCert(path.join(home.dir, 'a'), 'a'), b = makeCert(path.join(home.dir, 'b'), 'b');
    const r = await serveRefused(home, dir, { server: { tls: { certFile: a.cert, keyFile: b.key } } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server\.tls: the certificate in ".*a\.crt" is not for the key in ".*b\.key"/);
  });

  test('a missing file, a key given as the certificate, an encrypted key', async () => {
    const c = makeCert(path.join(home.dir, 'c'), 'c');
    let r = await serveRefused(home, dir, { server: { tls: { certFile: '/nonexistent/x.crt', keyFile: c.key } } });
    assert.match(r.stderr, /server\.tls\.certFile: cannot read "\/nonexistent\/x\.crt": No such file/);
    r = await serveRefused(home, dir, { server: { tls: { certFile: c.key, keyFile: c.key } } });
    assert.match(r.stderr, /server\.tls\.certFile: ".*c\.key" holds no PEM certificate/);
    const enc = path.join(home.dir, 'c', 'enc.key');
    execFileSync('openssl', ['pkey', '-in', c.key, '-aes256', '-passout', 'pass:secret1', '-out', enc]);
    chmodSync(enc, 0o600);
    r = await serveRefused(home, dir, { server: { tls: { certFile: c.cert, keyFile: enc } } });
    assert.match(r.stderr, /server\.tls\.keyFile: ".*enc\.key" holds no unencrypted PEM private key/);
  });

  test('in editor mode the same checks answer server/start with -32602', async () => {
    const c = makeCert(path.join(home.dir, 'e'), 'e');
    chmodSync(c.key, 0o640);
    const ed = new Editor();
    try {
      await ed.initialize({ settings: { server: { port: 0, tls: { certFile: c.cert, keyFile: c.key } } } });
      await assert.rejects(ed.request('server/start', {}),
        (e) => e.code === -32602 && /server\.tls\.keyFile: other users can read/.test(e.message));
    } finally { await ed.stop(); }
  });
});

describe('listening beyond loopback', () => {
  let home, dir;
  before(() => { home = configHome(); dir = gitFolder(); });
  after(() => home.cleanup());

  test('0.0.0.0 without TLS: a warning on serve\'s stderr and in /health', async () => {
    const { srv, url } = await serve(home, dir, {}, ['--host', '0.0.0.0']);
    try {
      assert.match(srv.stderr, /WARNING: listening on 0\.0\.0\.0 without TLS/);
      const h = await httpGet(portOf(url), '/health', { Host: `127.0.0.1:${portOf(url)}` });
      const body = JSON.parse(h.body);
      assert.equal(body.warnings.length, 1);
      assert.match(body.warnings[0], /^listening on 0\.0\.0\.0 without TLS/);
    } finally { await srv.stop(); }
  });

  test('0.0.0.0 with TLS: no warning', async () => {
    const c = makeCert(path.join(home.dir, 'lan'));
    const { srv, url } = await serve(home, dir, { server: { tls: { certFile: c.cert, keyFile: c.key } } },
      ['--host', '0.0.0.0']);
    try {
      assert.doesNotMatch(srv.stderr, /WARNING/);
      const h = await httpsGet(portOf(url), '/health', { ca: c.ca });
      assert.deepEqual(JSON.parse(h.body).warnings, []);
    } finally { await srv.stop(); }
  });

  test('editor mode: server/start and server/status carry the warning; TLS on and off re-binds', async () => {
    const c = makeCert(path.join(home.dir, 'ed'));
    const ed = new Editor();
    try {
      const started = await ed.startServer({ settings: { server: { host: '0.0.0.0' } } });
      assert.equal(started.warnings.length, 1);
      assert.match(started.warnings[0], /without TLS/);
      assert.match(started.url, /^ws:\/\/0\.0\.0\.0:\d+\/ws$/);
      assert.equal((await ed.request('server/status', {})).warnings.length, 1);
      // server.tls added: the listener re-binds and speaks TLS.
      await ed.notify('workspace/didChangeConfiguration', {
        settings: { server: { host: '0.0.0.0', port: 0, tls: { certFile: c.cert, keyFile: c.key } }, auth: { secret: ed.secret } },
      });
      const r = await ed.request('server/start', {});
      assert.match(r.url, /^wss:\/\/0\.0\.0\.0:\d+\/ws$/);
      assert.equal(r.tls, true);
      assert.deepEqual(r.warnings, []);
      const h = await httpsGet(r.port, '/health', { ca: c.ca, headers: { Host: `127.0.0.1:${r.port}` } });
      assert.equal(h.status, 200);
      const ws = await connect(`wss://127.0.0.1:${r.port}/ws`, { ca: c.ca, servername: 'localhost' });
      const a = await ws.auth(mintToken(ed.secret, { workspaceId: ed.workspaceId }), ed.workspaceId);
      assert.equal(a.data.success, true);
      ws.close();
      // And removed again: plain HTTP, the warning back.
      await ed.notify('workspace/didChangeConfiguration', {
        settings: { server: { host: '0.0.0.0', port: 0 }, auth: { secret: ed.secret } },
      });
      const r2 = await ed.request('server/start', {});
      assert.match(r2.url, /^ws:\/\//);
      assert.equal(r2.warnings.length, 1);
      assert.equal((await httpGet(r2.port, '/health', { Host: `127.0.0.1:${r2.port}` })).status, 200);
    } finally { await ed.stop(); }
  });

  test('an https publicUrl in front of a loopback listener is fine: no warning', async () => {
    const ed = new Editor();
    try {
      const r = await ed.startServer({ settings: { server: { publicUrl: 'https://box.tailnet.ts.net' } } });
      assert.deepEqual(r.warnings, []);
      assert.equal(r.url, 'wss://box.tailnet.ts.net/ws');
    } finally { await ed.stop(); }
  });

  test('an http publicUrl on a name other machines use is warned about', async () => {
    const ed = new Editor();
    try {
      const r = await ed.startServer({ settings: { server: { publicUrl: 'http://box.lan:3001' } } });
      assert.equal(r.warnings.length, 1);
      assert.match(r.warnings[0], /server\.publicUrl http:\/\/box\.lan:3001 is plain http/);
    } finally { await ed.stop(); }
  });
});
