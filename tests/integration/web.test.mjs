// The phone client served by the real helper (issue 17, item 2): "/" and
// the app's files from the table embedded at build time, with gzip when
// asked for, ETag and 304, long caching only for hashed names, the security
// headers, HEAD, 404 for anything else (nothing of the workspace), the Host
// gate, and the page's own origin accepted for /ws while others are not.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Editor, connect, tempDir } from './lib/harness.mjs';

const CSP = "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'";

/* One request; the body as a Buffer, never decoded. */
function request(port, method, pathName, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function assertSecurityHeaders(res, what) {
  assert.equal(res.headers['content-security-policy'], CSP, `${what}: CSP`);
  assert.match(res.headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.doesNotMatch(res.headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
}

describe('web app served by the helper', () => {
  let ed;
  let port;
  let index;
  let assets;
  before(async () => {
    const ws = tempDir('companion-web-ws-');
    // A file in the workspace that must never be served.
    writeFileSync(path.join(ws, 'secret.txt'), 'workspace secret\n');
    writeFileSync(path.join(ws, 'index.html'), '<p>workspace page</p>\n');
    ed = new Editor();
    await ed.startServer({ folders: [ws], settings: { server: { allowedHosts: ['myhost.test'] } } });
    port = ed.port;
    index = await request(port, 'GET', '/');
    assets = [...index.body.toString('utf8').matchAll(/(?:src|href)="\.(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  });
  after(async () => { await ed.stop(); });

  test('GET / is the app: HTML, no-cache, ETag, security headers, hashed assets named', () => {
    assert.equal(index.status, 200);
    assert.match(index.headers['content-type'], /^text\/html; charset=utf-8$/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.match(index.headers.etag, /^"[0-9a-f]{32}"$/);
    assert.equal(index.headers['content-encoding'], undefined, 'gzip without Accept-Encoding');
    assert.equal(Number(index.headers['content-length']), index.body.length);
    assertSecurityHeaders(index, '/');
    const html = index.body.toString('utf8');
    assert.match(html, /<div id="app"><\/div>/);
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), `assets: ${assets}`);
    const cors = Object.keys(index.headers).filter((h) => h.startsWith('access-control-'));
    assert.deepEqual(cors, []);
  });

  test('/index.html is the same file as /', async () => {
    const res = await request(port, 'GET', '/index.html');
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(index.body));
    assert.equal(res.headers.etag, index.headers.etag);
  });

  test('hashed assets: immutable for a year, right types, gzip when accepted and identical once gunzipped', async () => {
    for (const a of assets) {
      const plain = await request(port, 'GET', a);
      assert.equal(plain.status, 200, a);
      assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable', a);
      assert.equal(plain.headers.vary, 'Accept-Encoding');
      assertSecurityHeaders(plain, a);
      const type = { '.js': /^text\/javascript/, '.css': /^text\/css/, '.svg': /^image\/svg\+xml$/, '.png': /^image\/png$/ }[path.extname(a)];
      assert.match(plain.headers['content-type'], type, a);
      const gz = await request(port, 'GET', a, { 'Accept-Encoding': 'gzip, deflate, br' });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip', a);
      assert.equal(Number(gz.headers['content-length']), gz.body.length);
      assert.ok(gunzipSync(gz.body).equals(plain.body), `${a}: gunzipped differs`);
      assert.equal(gz.headers.etag, plain.headers.etag);
      if (a.endsWith('.js') && plain.body.length > 4096) assert.ok(gz.body.length < plain.body.length / 2, `${a}: gzip does not shrink it`);
    }
  });

  test('Accept-Encoding parsing: gzip;q=0 and identity get the plain file', async () => {
    for (const ae of ['gzip;q=0', 'identity', 'br', 'gzip ; q=0.000, br', 'x-gzip']) {
      const res = await request(port, 'GET', '/', { 'Accept-Encoding': ae });
      assert.equal(res.headers['content-encoding'], undefined, ae);
      assert.ok(res.body.equals(index.body), ae);
    }
    for (const ae of ['GZIP', 'br;q=1, gzip;q=0.5', 'deflate,gzip']) {
      const res = await request(port, 'GET', '/', { 'Accept-Encoding': ae });
      assert.equal(res.headers['content-encoding'], 'gzip', ae);
    }
  });

  test('manifest and service worker: fixed names, revalidated (no-cache)', async () => {
    const m = await request(port, 'GET', '/manifest.webmanifest');
    assert.equal(m.status, 200);
    assert.equal(m.headers['content-type'], 'application/manifest+json');
    assert.equal(m.headers['cache-control'], 'no-cache');
    assert.equal(JSON.parse(m.body.toString('utf8')).name, 'Companion');
    const sw = await request(port, 'GET', '/sw.js');
    assert.equal(sw.status, 200);
    assert.match(sw.headers['content-type'], /^text\/javascript/);
    assert.equal(sw.headers['cache-control'], 'no-cache');
  });

  test('If-None-Match with the ETag -> 304, no body; another ETag -> 200', async () => {
    const etag = index.headers.etag;
    for (const inm of [etag, `"nope", ${etag}`, `W/${etag}`, '*']) {
      const res = await request(port, 'GET', '/', { 'If-None-Match': inm });
      assert.equal(res.status, 304, inm);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers.etag, etag);
      assert.equal(res.headers['cache-control'], 'no-cache');
    }
    const other = await request(port, 'GET', '/', { 'If-None-Match': '"0123"' });
    assert.equal(other.status, 200);
    const asset = assets[0];
    const first = await request(port, 'GET', asset, { 'Accept-Encoding': 'gzip' });
    const again = await request(port, 'GET', asset, { 'Accept-Encoding': 'gzip', 'If-None-Match': first.headers.etag });
    assert.equal(again.status, 304);
    assert.equal(again.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  test('HEAD: the GET headers, no body; the connection stays usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const head = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'HEAD', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers.etag, index.headers.etag);
    assert.equal(head.headers['content-type'], index.headers['content-type']);
    assert.equal(head.headers['content-length'], index.headers['content-length']);
    assert.equal(head.headers['content-security-policy'], CSP);
    const get = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'GET', agent }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(get.equals(index.body));
    agent.destroy();
  });

  test('other methods on the app -> 405', async () => {
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const res = await request(port, m, '/');
      assert.equal(res.status, 405, m);
    }
  });

  test('unknown paths and workspace files -> 404', async () => {
    for (const p of ['/secret.txt', '/assets/', '/assets/nope.js', '/index.htm', '/favicon.ico',
      '/%2e%2e/secret.txt', '/assets/../secret.txt', '/web/dist/index.html', '/INDEX.HTML']) {
      const res = await request(port, 'GET', p);
      assert.equal(res.status, 404, p);
      assert.doesNotMatch(res.body.toString('utf8'), /workspace (secret|page)/, p);
    }
    // lws normalises dot segments and double slashes: still the app's own page.
    for (const p of ['/../index.html', '//index.html', '/assets/../index.html']) {
      const res = await request(port, 'GET', p);
      assert.ok(res.status === 404 || res.body.equals(index.body), `${p}: ${res.status}`);
      assert.doesNotMatch(res.body.toString('utf8'), /workspace (secret|page)/, p);
    }
  });

  test('query strings do not change the file', async () => {
    const res = await request(port, 'GET', '/?x=1');
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(index.body));
  });

  test('a Host that is not allowed is refused, for the page and its assets (DNS rebinding)', async () => {
    for (const p of ['/', assets[0], '/manifest.webmanifest']) {
      const res = await request(port, 'GET', p, { Host: `evil.example:${port}` });
      assert.equal(res.status, 403, p);
      assert.doesNotMatch(res.body.toString('utf8'), /<html/);
    }
    const listed = await request(port, 'GET', '/', { Host: `myhost.test:${port}` });
    assert.equal(listed.status, 200, 'an allowedHosts entry serves the page');
  });

  test("the page's own origin may open /ws without configuration; other origins may not", async () => {
    const url = `ws://127.0.0.1:${port}/ws`;
    const own = await connect(url, { origin: `http://127.0.0.1:${port}` });
    own.close();
    await own.waitClose();
    const ownListedHost = await connect(url, { origin: `http://myhost.test:${port}`, headers: { Host: `myhost.test:${port}` } });
    ownListedHost.close();
    await ownListedHost.waitClose();
    const refused = [
      { origin: `http://127.0.0.1:${port + 1}` }, // another port on the same machine
      { origin: `https://127.0.0.1:${port}` }, // another scheme
      { origin: 'http://evil.example' },
      { origin: `http://localhost:${port}` }, // not the Host the request carries
      { origin: 'null' },
    ];
    for (const opts of refused) {
      const err = await connect(url, opts).then((c) => { c.close(); return null; }, (e) => e);
      assert.ok(err, `origin ${opts.origin} accepted`);
      assert.equal(err.status, 403, `origin ${opts.origin}: ${err.message}`);
    }
    // Same origin as the Host, but a Host that is not allowed: the Host gate wins.
    const err = await connect(url, { origin: `http://evil.example:${port}`, headers: { Host: `evil.example:${port}` } })
      .then((c) => { c.close(); return null; }, (e) => e);
    assert.equal(err?.status, 403);
  });

  test('the page sends its Origin with module scripts: same-origin asset requests pass', async () => {
    const res = await request(port, 'GET', assets.find((a) => a.endsWith('.js')), { Origin: `http://127.0.0.1:${port}` });
    assert.equal(res.status, 200);
    const other = await request(port, 'GET', '/', { Origin: 'http://evil.example' });
    assert.equal(other.status, 403);
  });

  test('/health still answers', async () => {
    const res = await request(port, 'GET', '/health');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body.toString('utf8')).status, 'ok');
  });
});
