// The HTTP side of the data-plane port against the real helper: /health, the
// Host and Origin gates before the upgrade, and robustness against garbage on
// the raw socket. Clients: node:http, node:net and ws.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Editor, connect, httpGet, httpRequest, rawRequest, sleep,
} from './lib/harness.mjs';

/* The helper is alive and still serves /health. */
async function assertServing(ed) {
  assert.equal(ed.child.exitCode, null, `helper exited: ${ed.stderr}`);
  assert.equal(ed.child.signalCode, null, `helper killed by a signal: ${ed.stderr}`);
  const res = await httpGet(ed.port, '/health', { Host: `127.0.0.1:${ed.port}` });
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).status, 'ok');
}

/* A WebSocket upgrade that must be refused with `status` before the upgrade. */
async function assertUpgradeRefused(url, opts, status) {
  const err = await connect(url, opts).then(
    (c) => { c.close(); return null; },
    (e) => e,
  );
  assert.ok(err, `upgrade was accepted, expected HTTP ${status}`);
  assert.equal(err.status, status, `expected HTTP ${status}, got: ${err.message}`);
}

async function assertUpgradeAccepted(url, opts) {
  const c = await connect(url, opts);
  assert.equal(c.ws.readyState, 1);
  c.close();
  await c.waitClose();
}

describe('HTTP: /health and the gates', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { server: { allowedHosts: ['myhost.test'] } } });
  });
  after(async () => { await ed.stop(); });

  test('GET /health -> 200 JSON {status, version, uptime, connections}, no CORS headers', async () => {
    const res = await httpGet(ed.port, '/health');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] || '', /^application\/json/);
    const body = JSON.parse(res.body);
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.version, 'string');
    assert.ok(body.version.length > 0);
    assert.equal(typeof body.uptime, 'number');
    assert.ok(body.uptime >= 0);
    assert.equal(typeof body.connections, 'number');
    const cors = Object.keys(res.headers).filter((h) => h.toLowerCase().startsWith('access-control-'));
    assert.deepEqual(cors, [], `CORS headers present: ${cors}`);
  });

  test('/health connections counts open WebSockets', async () => {
    const before = JSON.parse((await httpGet(ed.port, '/health')).body).connections;
    const c = await ed.client();
    const during = JSON.parse((await httpGet(ed.port, '/health')).body).connections;
    assert.equal(during, before + 1);
    c.close();
    await c.waitClose();
  });

  test('/health even with an Origin from a browser carries no Access-Control-* headers', async () => {
    const res = await httpGet(ed.port, '/health', { Origin: 'http://evil.example' });
    const cors = Object.keys(res.headers).filter((h) => h.toLowerCase().startsWith('access-control-'));
    assert.deepEqual(cors, []);
  });

  test('/health with Host evil.example:PORT -> 403', async () => {
    const res = await httpGet(ed.port, '/health', { Host: `evil.example:${ed.port}` });
    assert.equal(res.status, 403);
  });

  for (const name of ['localhost', '127.0.0.1', '[::1]', 'LOCALHOST']) {
    test(`/health with Host ${name}:PORT -> 200`, async () => {
      const res = await httpGet(ed.port, '/health', { Host: `${name}:${ed.port}` });
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.body).status, 'ok');
    });
  }

  test('/health with a loopback Host but the wrong port -> 403', async () => {
    const other = ed.port === 65535 ? 65534 : ed.port + 1;
    for (const name of ['localhost', '127.0.0.1', '[::1]']) {
      const res = await httpGet(ed.port, '/health', { Host: `${name}:${other}` });
      assert.equal(res.status, 403, `Host ${name}:${other}`);
    }
  });

  test('/health with a loopback Host without a port -> 403 (the server port is not 80)', async () => {
    const res = await httpGet(ed.port, '/health', { Host: 'localhost' });
    assert.equal(res.status, 403);
  });

  test('/health with allowedHosts entry myhost.test and Host myhost.test:PORT -> 200', async () => {
    const res = await httpGet(ed.port, '/health', { Host: `myhost.test:${ed.port}` });
    assert.equal(res.status, 200);
    const wrong = await httpGet(ed.port, '/health', { Host: `myhost.test:${ed.port + 1}` });
    assert.equal(wrong.status, 403);
  });

  test('missing Host (raw HTTP/1.1 request) -> 403 or 400, never 200, helper keeps serving', async () => {
    const res = await rawRequest(ed.port, 'GET /health HTTP/1.1\r\n\r\n');
    assert.ok(res.status === 403 || res.status === 400,
      `expected 403 or 400, got ${res.status === null ? `no status line (ended=${res.ended}, data=${JSON.stringify(res.data.slice(0, 200))})` : res.status}`);
    await assertServing(ed);
  });

  test('missing Host on HTTP/1.0 -> never 200, helper keeps serving', async () => {
    const res = await rawRequest(ed.port, 'GET /health HTTP/1.0\r\n\r\n');
    assert.notEqual(res.status, 200, `answered 200: ${res.data.slice(0, 200)}`);
    await assertServing(ed);
  });

  for (const host of ['localhost:99999', '[::1', 'a:b:c', 'localhost:', ':PORT', 'localhost:PORTx',
    '[::1]x:PORT', 'localhost :PORT', 'localhost:-1', '']) {
    test(`malformed Host ${JSON.stringify(host)} -> 403, no crash`, async () => {
      const h = host.replace('PORT', String(ed.port));
      const res = await rawRequest(ed.port, `GET /health HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`);
      assert.ok(res.status === 403 || (h === '' && res.status === 400),
        `expected 403, got ${res.status} (${JSON.stringify(res.data.slice(0, 200))})`);
      await assertServing(ed);
    });
  }

  test('an over-long Host header -> refused, no crash', async () => {
    const res = await httpGet(ed.port, '/health', { Host: `${'a'.repeat(4000)}:${ed.port}` });
    assert.ok(res.status >= 400 && res.status < 500, `got ${res.status}`);
    await assertServing(ed);
  });

  test('unknown path -> 404', async () => {
    for (const p of ['/nope', '/health/x', '/healthz', '/ws/x']) {
      const res = await httpGet(ed.port, p);
      assert.equal(res.status, 404, `GET ${p}`);
    }
  });

  test('/health with a query string is still /health (200)', async () => {
    const res = await httpGet(ed.port, '/health?x=1');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).status, 'ok');
  });

  test('two Host headers, one of them foreign, -> refused (403/400) whatever the order', async () => {
    for (const hosts of [[`127.0.0.1:${ed.port}`, `evil.example:${ed.port}`], [`evil.example:${ed.port}`, `127.0.0.1:${ed.port}`]]) {
      const res = await rawRequest(ed.port, `GET /health HTTP/1.1\r\nHost: ${hosts[0]}\r\nHost: ${hosts[1]}\r\nConnection: close\r\n\r\n`);
      assert.ok(res.status === 403 || res.status === 400, `Host ${hosts.join(' + ')}: ${res.data.slice(0, 100)}`);
    }
    await assertServing(ed);
  });

  test('POST /health -> 405', async () => {
    const res = await httpRequest(ed.port, 'POST', '/health', { 'Content-Type': 'application/json', 'Content-Length': '2' }, '{}');
    assert.equal(res.status, 405);
    await assertServing(ed);
  });

  test('PUT and DELETE /health -> 405', async () => {
    for (const m of ['PUT', 'DELETE']) {
      const res = await httpRequest(ed.port, m, '/health', { 'Content-Length': '0' });
      assert.ok(res.status === 405, `${m} /health -> ${res.status}`);
    }
    await assertServing(ed);
  });

  test('upgrade with Origin http://evil.example -> HTTP 403', async () => {
    await assertUpgradeRefused(ed.url, { origin: 'http://evil.example' }, 403);
  });

  test('upgrade with a loopback Origin that is not the page\'s own (not listed) -> HTTP 403', async () => {
    // ed.url's Host is 127.0.0.1:PORT: only http://127.0.0.1:PORT is the
    // page's own origin (the app the helper serves, see web.test.mjs).
    await assertUpgradeRefused(ed.url, { origin: `http://localhost:${ed.port}` }, 403);
    await assertUpgradeRefused(ed.url, { origin: `http://127.0.0.1:${ed.port + 1}` }, 403);
    await assertUpgradeRefused(ed.url, { origin: 'null' }, 403);
  });

  test('upgrade without Origin (native client) is accepted', async () => {
    await assertUpgradeAccepted(ed.url, {});
  });

  test('upgrade with Host evil.example:PORT -> HTTP 403', async () => {
    await assertUpgradeRefused(ed.url, { headers: { Host: `evil.example:${ed.port}` } }, 403);
  });

  test('upgrade with a loopback Host on the wrong port -> HTTP 403', async () => {
    await assertUpgradeRefused(ed.url, { headers: { Host: `127.0.0.1:${ed.port + 1}` } }, 403);
  });

  test('upgrade with Host localhost:PORT and [::1]:PORT is accepted', async () => {
    await assertUpgradeAccepted(ed.url, { headers: { Host: `localhost:${ed.port}` } });
    await assertUpgradeAccepted(ed.url, { headers: { Host: `[::1]:${ed.port}` } });
  });

  test('upgrade with allowedHosts entry: Host myhost.test:PORT is accepted', async () => {
    await assertUpgradeAccepted(ed.url, { headers: { Host: `myhost.test:${ed.port}` } });
  });

  test('upgrade on path /other -> HTTP 404', async () => {
    await assertUpgradeRefused(`ws://127.0.0.1:${ed.port}/other`, {}, 404);
    await assertUpgradeRefused(`ws://127.0.0.1:${ed.port}/`, {}, 404);
  });

  test('raw garbage bytes do not crash the helper', async () => {
    const payloads = [
      Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x81, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
      Buffer.alloc(64 * 1024, 0xa5),
      '\r\n\r\n\r\n',
      'GET\r\n\r\n',
      'GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'GET /health HTTP/1.1\r\nHo\0st: x\r\n\r\n',
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${ed.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${ed.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00`,
    ];
    for (const p of payloads) {
      await rawRequest(ed.port, p, 500);
    }
    await assertServing(ed);
  });

  test('a huge header line does not crash the helper', async () => {
    const big = 'a'.repeat(256 * 1024);
    const res = await rawRequest(ed.port, `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${ed.port}\r\nX-Big: ${big}\r\n\r\n`);
    assert.notEqual(res.status, 200, 'a 256 KB header line was served');
    const res2 = await rawRequest(ed.port, `GET /${big} HTTP/1.1\r\nHost: 127.0.0.1:${ed.port}\r\n\r\n`);
    assert.notEqual(res2.status, 200);
    await assertServing(ed);
  });

  test('many half-open raw connections do not stop /health', async () => {
    const net = await import('node:net');
    const socks = [];
    for (let i = 0; i < 50; i++) {
      const s = net.connect({ host: '127.0.0.1', port: ed.port });
      s.on('error', () => {});
      s.on('connect', () => s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1'));
      socks.push(s);
    }
    await sleep(200);
    try {
      await assertServing(ed);
    } finally {
      socks.forEach((s) => s.destroy());
    }
  });
});

describe('HTTP: allowedOrigins', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { server: { allowedOrigins: ['http://localhost:5173'] } } });
  });
  after(async () => { await ed.stop(); });

  test('a listed Origin is accepted', async () => {
    await assertUpgradeAccepted(ed.url, { origin: 'http://localhost:5173' });
  });

  test('a loopback page not listed (http://localhost:PORT) is still refused 403', async () => {
    await assertUpgradeRefused(ed.url, { origin: `http://localhost:${ed.port}` }, 403);
  });

  test('near misses of the listed Origin are refused 403', async () => {
    for (const o of ['http://localhost:5174', 'https://localhost:5173', 'http://localhost:51730',
      'http://localhost:5173.evil.example', 'http://localhost', 'http://evil.example']) {
      await assertUpgradeRefused(ed.url, { origin: o }, 403);
    }
  });

  test('a listed Origin does not bypass the Host check', async () => {
    await assertUpgradeRefused(ed.url, { origin: 'http://localhost:5173', headers: { Host: `evil.example:${ed.port}` } }, 403);
  });
});
