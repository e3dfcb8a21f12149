// Limits of the data plane against the real helper: message size (whole and
// fragmented), connection caps, the command rate limit, the heartbeat, slow
// consumers, and 200 concurrent clients.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
import {
  Editor, connect, httpGet, rssKb, sleep, waitFor, SLOW,
} from './lib/harness.mjs';

/* A ping whose serialized JSON is exactly `size` bytes (ASCII). */
function pingOfSize(id, size) {
  const base = JSON.stringify({ type: 'ping', id, data: { pad: '' } });
  assert.ok(size >= base.length, `size ${size} below ${base.length}`);
  const s = JSON.stringify({ type: 'ping', id, data: { pad: 'x'.repeat(size - base.length) } });
  assert.equal(Buffer.byteLength(s), size);
  return s;
}

/* Sends `text` as a fragmented text message: pieces of `piece` bytes. */
function sendFragmented(c, text, piece) {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length; off += piece) {
    const end = Math.min(off + piece, buf.length);
    c.ws.send(buf.subarray(off, end), { binary: false, fin: end === buf.length });
  }
}

async function refusedStatus(url, opts = {}) {
  return connect(url, opts).then(
    (c) => { c.close(); return 'accepted'; },
    (e) => e.status ?? e.message,
  );
}

async function status(ed) {
  return ed.request('server/status', {});
}

describe('limits: message size (maxMessageBytes 4096)', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { maxMessageBytes: 4096 } } });
  });
  after(async () => { await ed.stop(); });

  test('a message just under the limit is answered and the connection stays', async () => {
    const c = await ed.client();
    c.send(pingOfSize('under', 4000));
    const pong = await c.next((m) => m.id === 'under');
    assert.equal(pong.type, 'pong');
    const again = await c.request({ type: 'ping', id: 'p2' });
    assert.equal(again.type, 'pong');
    assert.equal(c.closeInfo, undefined);
    c.close();
  });

  test('a message of exactly maxMessageBytes is accepted ("at most")', async () => {
    const c = await ed.client();
    c.send(pingOfSize('exact', 4096));
    const pong = await c.next((m) => m.id === 'exact');
    assert.equal(pong.type, 'pong');
    c.close();
  });

  test('a frame over the limit -> close 1009', async () => {
    const c = await ed.client();
    c.send(pingOfSize('over', 4097));
    const info = await c.waitClose();
    assert.equal(info.code, 1009);
    assert.equal(c.queue.find((m) => m.id === 'over'), undefined, 'the oversize message was acted upon');
  });

  test('a far oversized frame (1 MiB) -> close 1009, helper keeps serving', async () => {
    const c = await ed.client();
    c.send(pingOfSize('huge', 1024 * 1024));
    const info = await c.waitClose();
    assert.equal(info.code, 1009);
    const res = await httpGet(ed.port, '/health');
    assert.equal(res.status, 200);
  });

  test('an oversize frame before auth -> close 1009 too', async () => {
    const c = await connect(ed.url);
    c.send(pingOfSize('pre', 8192));
    assert.equal((await c.waitClose()).code, 1009);
  });

  test('a fragmented message is reassembled', async () => {
    const c = await ed.client();
    sendFragmented(c, pingOfSize('frag', 3000), 700);
    const pong = await c.next((m) => m.id === 'frag');
    assert.equal(pong.type, 'pong');
    // Then a workspace.info split in tiny pieces, and a normal message after it.
    sendFragmented(c, JSON.stringify({ type: 'command', id: 'fc', data: { name: 'workspace.info' } }), 3);
    const res = await c.next((m) => m.id === 'fc');
    assert.equal(res.type, 'command_response');
    assert.equal(res.data.success, true);
    assert.equal(res.data.result.workspaceId, ed.workspaceId);
    assert.equal((await c.request({ type: 'ping', id: 'after' })).type, 'pong');
    c.close();
  });

  test('a fragmented message whose fragments are each small but total over the limit -> close 1009', async () => {
    const c = await ed.client();
    sendFragmented(c, pingOfSize('fragover', 5000), 1000);
    const info = await c.waitClose();
    assert.equal(info.code, 1009);
    assert.equal(c.queue.find((m) => m.id === 'fragover'), undefined);
  });

  test('two fragmented messages in a row: the second starts afresh', async () => {
    const c = await ed.client();
    // Each is 3000 bytes: together over the limit, each under it.
    sendFragmented(c, pingOfSize('f1', 3000), 1000);
    sendFragmented(c, pingOfSize('f2', 3000), 1000);
    assert.equal((await c.next((m) => m.id === 'f1')).type, 'pong');
    assert.equal((await c.next((m) => m.id === 'f2')).type, 'pong');
    c.close();
  });
});

describe('limits: rate limit (commandsPerSecond 5)', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { commandsPerSecond: 5 } } });
  });
  after(async () => { await ed.stop(); });

  /* Sends n workspace.info commands at once; returns the replies in order of id. */
  async function burst(c, n, prefix) {
    const ids = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    for (const id of ids) c.send({ type: 'command', id, data: { name: 'workspace.info' } });
    const replies = [];
    for (const id of ids) {
      try {
        replies.push(await c.next((m) => m.id === id));
      } catch (e) {
        const { ok, limited } = tally(replies);
        throw new Error(`after ${n} commands at once: ${ok.length} answered, ${limited.length} RATE_LIMITED, then ${e.message}`);
      }
    }
    return replies;
  }

  function tally(replies) {
    const ok = replies.filter((m) => m.type === 'command_response' && m.data.success === true);
    const limited = replies.filter((m) => m.type === 'error' && m.data.code === 'RATE_LIMITED');
    return { ok, limited };
  }

  test('20 commands at once: ~5 answered, the rest RATE_LIMITED with their ids; after 1 s commands work again', async () => {
    const c = await ed.client();
    const replies = await burst(c, 20, 'r');
    const { ok, limited } = tally(replies);
    assert.equal(ok.length + limited.length, 20, `unexpected replies: ${JSON.stringify(replies.filter((m) => !ok.includes(m) && !limited.includes(m)))}`);
    assert.ok(ok.length >= 5 && ok.length <= 6, `answered ${ok.length}`);
    // The answered ones are the first ones.
    assert.deepEqual(ok.map((m) => m.id), replies.slice(0, ok.length).map((m) => m.id));
    assert.equal(c.closeInfo, undefined);
    await sleep(1100);
    const res = await c.command('workspace.info', undefined, 'after');
    assert.equal(res.type, 'command_response');
    assert.equal(res.data.success, true);
    c.close();
  });

  test('15 commands at once: 5 answered, 10 RATE_LIMITED with their ids, connection stays; after 1 s commands work again', async () => {
    const c = await ed.client();
    const replies = await burst(c, 15, 's');
    const { ok, limited } = tally(replies);
    assert.equal(ok.length + limited.length, 15);
    assert.ok(ok.length >= 5 && ok.length <= 6, `answered ${ok.length}`);
    for (const m of limited) {
      assert.match(m.id, /^s\d+$/);
      assert.equal(typeof m.data.message, 'string');
    }
    assert.equal((await c.request({ type: 'ping', id: 'alive' })).type, 'pong');
    assert.equal(c.closeInfo, undefined);
    await sleep(1100);
    const again = tally(await burst(c, 5, 't'));
    assert.equal(again.ok.length, 5, 'the bucket did not refill after 1 s');
    c.close();
  });

  test('pings are not rate limited: 100 pings all answered', async () => {
    const c = await ed.client();
    // Empty the command bucket first, so a shared counter would show.
    tally(await burst(c, 5, 'drain'));
    for (let i = 0; i < 100; i++) c.send({ type: 'ping', id: `p${i}` });
    for (let i = 0; i < 100; i++) {
      const m = await c.next((x) => x.id === `p${i}`);
      assert.equal(m.type, 'pong', `ping ${i}: ${JSON.stringify(m)}`);
    }
    assert.equal(c.closeInfo, undefined);
    c.close();
  });

  test('the limit is per session: another client is not slowed by a flooding one', async () => {
    const a = await ed.client();
    const b = await ed.client();
    tally(await burst(a, 12, 'a'));
    const { ok } = tally(await burst(b, 5, 'b'));
    assert.equal(ok.length, 5);
    a.close();
    b.close();
  });

  test('sustained abuse (1000 commands at once) -> close 4008, after RATE_LIMITED errors', async () => {
    // 1000 rather than 200: the client is still sending when the helper
    // closes, which is the normal situation for an abuser.
    const c = await ed.client();
    for (let i = 0; i < 1000; i++) c.send({ type: 'command', id: `x${i}`, data: { name: 'workspace.info' } });
    const info = await c.waitClose();
    const ok = c.queue.filter((m) => m.type === 'command_response');
    const limited = c.queue.filter((m) => m.type === 'error' && m.data.code === 'RATE_LIMITED');
    assert.equal(info.code, 4008, `close ${info.code} ${info.reason}; the client had received ${c.queue.length} messages`);
    assert.ok(ok.length <= 6, `${ok.length} commands ran`);
    assert.ok(limited.length >= 1, 'no RATE_LIMITED error before the close');
  });
});

describe('limits: maxConnections 3', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { maxConnections: 3 } } });
  });
  after(async () => { await ed.stop(); });

  test('the 4th upgrade (unauthenticated ones count) -> HTTP 503; after one closes a new one succeeds', async () => {
    const authed = await ed.client();
    const p1 = await connect(ed.url);
    const p2 = await connect(ed.url);
    assert.equal(await refusedStatus(ed.url), 503);
    // /health is not a WebSocket: it still answers, and counts 3.
    const h = await httpGet(ed.port, '/health');
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.body).connections, 3);
    p1.close();
    await p1.waitClose();
    const c4 = await waitFor(async () => {
      const r = await connect(ed.url).catch((e) => e);
      return r instanceof Error ? (assert.equal(r.status, 503), null) : r;
    }, 'a free connection slot');
    const res = await c4.auth(ed.token(), ed.workspaceId);
    assert.equal(res.data.success, true);
    // Full again.
    assert.equal(await refusedStatus(ed.url), 503);
    for (const c of [authed, p2, c4]) c.close();
    await Promise.all([authed, p2, c4].map((c) => c.waitClose()));
  });

  test('after all close, 3 can connect again', async () => {
    const cs = await waitFor(async () => {
      const r = await Promise.all([0, 1, 2].map(() => connect(ed.url).catch((e) => e)));
      if (r.every((x) => !(x instanceof Error))) return r;
      r.forEach((x) => { if (!(x instanceof Error)) x.terminate(); });
      return null;
    }, '3 free slots');
    cs.forEach((c) => c.close());
    await Promise.all(cs.map((c) => c.waitClose()));
  });
});

describe('limits: maxUnauthenticated 2 (within maxConnections: delayed or evicted, never refused)', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { maxUnauthenticated: 2, maxConnections: 40 } } });
  });
  after(async () => { await ed.stop(); });

  test('idle sockets holding every pending slot do not lock out a client that authenticates', async () => {
    // Before: the third connection got HTTP 503 "too many connections
    // authenticating" for as long as the idle sockets stayed (10 s each).
    const idle = [await connect(ed.url), await connect(ed.url)];
    await sleep(1200); // older than the 1 s grace
    const honest = await connect(ed.url);
    assert.equal((await honest.auth(ed.token(), ed.workspaceId)).data.success, true);
    // The oldest idle one made room: closed 4001, the other still waits.
    const closed = await idle[0].waitClose(3000 * SLOW);
    assert.equal(closed.code, 4001);
    assert.match(closed.reason, /authentication timeout/);
    assert.equal(idle[1].closeInfo, undefined);
    // A header-authenticated upgrade gets in too.
    const hdr = await connect(ed.url, { headers: { Authorization: `Bearer ${ed.token()}` } });
    assert.equal((await hdr.next((m) => m.type === 'auth_response')).data.success, true);
    for (const c of [idle[1], honest, hdr]) c.close();
    await Promise.all([idle[1], honest, hdr].map((c) => c.waitClose()));
  });

  test('a burst of 30 honest clients, well within maxConnections, all get in', async () => {
    const cs = await Promise.all(Array.from({ length: 30 }, () => connect(ed.url)));
    const res = await Promise.all(cs.map((c, i) => c.auth(ed.token({ sub: `b${i}` }), ed.workspaceId)));
    assert.deepEqual(res.map((r) => r.data.success), Array(30).fill(true));
    assert.ok(cs.every((c) => c.closeInfo === undefined), 'an honest client was closed');
    cs.forEach((c) => c.close());
    await Promise.all(cs.map((c) => c.waitClose()));
  });

  test('a flood of idle sockets: a prompt client still authenticates, memory stays bounded by maxConnections', async () => {
    const flood = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) flood.push(await connect(ed.url).catch((e) => e));
      await sleep(1100);
    }
    const honest = await connect(ed.url);
    assert.equal((await honest.auth(ed.token(), ed.workspaceId)).data.success, true);
    const st = await status(ed);
    assert.ok(st.clients.length >= 1);
    honest.close();
    for (const c of flood) if (!(c instanceof Error)) c.ws.terminate();
    await honest.waitClose();
  });

  test('a pending connection that fails auth is closed 4001', async () => {
    const p1 = await connect(ed.url);
    const r = await p1.auth('not.a.jwt', ed.workspaceId);
    assert.equal(r.data.success, false);
    assert.equal((await p1.waitClose()).code, 4001);
  });
});

describe('limits: heartbeat {intervalSeconds 1, timeoutSeconds 3}', { concurrency: true }, () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { heartbeat: { intervalSeconds: 1, timeoutSeconds: 3 } } });
  });
  after(async () => { await ed.stop(); });

  test('a normal client (auto pong) stays 5 s and receives WebSocket PING frames', async () => {
    const c = await connect(ed.url);
    let pings = 0;
    c.ws.on('ping', () => { pings++; });
    const res = await c.auth(ed.token(), ed.workspaceId);
    assert.equal(res.data.heartbeatIntervalMs, 1000);
    await sleep(5000);
    assert.equal(c.closeInfo, undefined, `closed: ${JSON.stringify(c.closeInfo)}`);
    assert.equal(c.ws.readyState, 1);
    assert.ok(pings >= 2, `only ${pings} PING frames in 5 s`);
    assert.equal((await c.request({ type: 'ping', id: 'still' })).type, 'pong');
    c.close();
  });

  test('a client that answers no PING and sends nothing -> close 4002 within ~3-5 s', async () => {
    const c = await connect(ed.url, { autoPong: false });
    await c.auth(ed.token(), ed.workspaceId);
    const t0 = Date.now();
    const info = await c.waitClose(8000 * SLOW);
    const dt = Date.now() - t0;
    assert.equal(info.code, 4002);
    assert.ok(dt >= 2500 && dt <= 5500 * SLOW, `closed after ${dt} ms`);
  });

  test('a client that answers no PING but sends messages stays (any frame counts)', async () => {
    const c = await connect(ed.url, { autoPong: false });
    await c.auth(ed.token(), ed.workspaceId);
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      assert.equal((await c.request({ type: 'ping', id: `k${i}` })).type, 'pong');
    }
    assert.equal(c.closeInfo, undefined);
    c.close();
  });

  // Known limitation, documented in docs/protocol.md: libwebsockets 4.1
  // answers a client's PING frames itself and tells the helper nothing, so
  // they do not reset the idle timer; messages and PONGs do. Every RFC 6455
  // client answers the helper's PINGs, so only a client that both refuses
  // to PONG and sends PINGs of its own is affected, and it is closed 4002.
  test('client PING frames alone do not keep a connection alive (documented lws limitation)', async () => {
    const c = await connect(ed.url, { autoPong: false });
    await c.auth(ed.token(), ed.workspaceId);
    const iv = setInterval(() => c.ws.ping(), 500);
    try {
      const info = await c.waitClose(8000 * SLOW);
      assert.equal(info.code, 4002);
    } finally {
      clearInterval(iv);
    }
  });

  test('JSON ping messages keep a client that sends no PONG alive', async () => {
    const c = await connect(ed.url, { autoPong: false });
    await c.auth(ed.token(), ed.workspaceId);
    for (let i = 0; i < 10; i++) {
      const r = await c.request({ type: 'ping', id: `k${i}` });
      assert.equal(r.type, 'pong');
      await sleep(500);
    }
    assert.equal(c.closeInfo, undefined, `closed: ${JSON.stringify(c.closeInfo)}`);
    c.close();
  });
});

describe('limits: slow consumer (maxQueuedBytes 65536)', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { maxQueuedBytes: 65536 } } });
  });
  after(async () => { await ed.stop(); });

  test('a client that never reads is closed (1008); others keep getting pongs; RSS stays bounded', async (t) => {
    const pid = ed.child.pid;
    const slow = await ed.client({ sub: 'slow' });
    const slowSession = (await status(ed)).clients.find((x) => x.userId === 'slow').sessionId;
    const fast = await ed.client({ sub: 'fast' });
    const rss0 = rssKb(pid);
    let rssMax = rss0;
    let latencyMax = 0;
    let fastPongs = 0;
    let stop = false;

    const sampler = (async () => {
      while (!stop) {
        rssMax = Math.max(rssMax, rssKb(pid));
        await sleep(50);
      }
    })();
    const pinger = (async () => {
      for (let i = 0; !stop; i++) {
        const t = Date.now();
        const m = await fast.request({ type: 'ping', id: `fast${i}` });
        assert.equal(m.type, 'pong');
        latencyMax = Math.max(latencyMax, Date.now() - t);
        fastPongs++;
        await sleep(50);
      }
    })();

    slow.ws._socket.pause();
    // Long ids make every pong ~300 bytes: the kernel buffers fill sooner.
    const pad = 'i'.repeat(240);
    let sent = 0;
    let detected = false;
    const deadline = Date.now() + 20000 * SLOW;
    try {
      // At least 20000 pings (~6 MB of pongs) unless the helper has dropped
      // the connection already; at most 80000 while it has not noticed.
      while (!(detected && sent >= 20000) && sent < 80000 && Date.now() < deadline && slow.ws.readyState === 1) {
        for (let k = 0; k < 250; k++) slow.send(`{"type":"ping","id":"${pad}${sent++}"}`);
        // Let ws flush what it buffered before sending more, and give the
        // event loop a real turn so the other client's pongs are read.
        await waitFor(() => slow.ws.bufferedAmount < 256 * 1024 || slow.ws.readyState !== 1, 'the client to flush', 10000 * SLOW, 5);
        await new Promise((r) => setImmediate(r));
        if (sent % 5000 === 0) {
          const st = await status(ed);
          detected = st.counters.slowConsumers >= 1 || !st.clients.some((x) => x.sessionId === slowSession);
        }
      }
      await sleep(300);
      const st = await status(ed);
      assert.ok(st.counters.slowConsumers >= 1 || !st.clients.some((x) => x.sessionId === slowSession),
        `after ${sent} pings (${(sent * 300 / 1e6).toFixed(1)} MB of pongs) the helper still holds the unread connection; counters=${JSON.stringify(st.counters)}`);
      assert.equal(st.counters.slowConsumers, 1, 'slowConsumers counter');
    } finally {
      stop = true;
      await sampler;
      await pinger;
      slow.ws._socket.resume();
    }
    const info = await slow.waitClose(15000 * SLOW);
    // 1008 when the close frame gets through; 1006 when the socket just ends
    // (the frame sits behind megabytes of unread pongs). The helper's side
    // was checked above: the session is gone and counted as a slow consumer.
    assert.ok(info.code === 1008 || info.code === 1006, `close ${info.code}`);
    t.diagnostic(`pings sent ${sent}, close ${info.code}, RSS ${rss0} -> max ${rssMax} kB, other client: ${fastPongs} pongs, max latency ${latencyMax} ms`);
    assert.ok(fastPongs >= 5, `the other client got only ${fastPongs} pongs`);
    assert.ok(latencyMax < 500 * SLOW, `the other client waited up to ${latencyMax} ms for a pong`);
    assert.ok(rssMax - rss0 < 30 * 1024, `helper RSS grew by ${((rssMax - rss0) / 1024).toFixed(1)} MB (from ${rss0} kB to ${rssMax} kB)`);
    await waitFor(async () => !(await status(ed)).clients.some((x) => x.sessionId === slowSession), 'the slow session to be gone');
    assert.equal((await fast.request({ type: 'ping', id: 'end' })).type, 'pong');
    fast.close();
  });
});

describe('limits: 200 concurrent authenticated clients', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { maxConnections: 250, maxUnauthenticated: 250 } } });
  });
  after(async () => { await ed.stop(); });

  test('200 clients each ping and run workspace.info; status shows 200, then 0', async () => {
    const N = 200;
    const clients = await Promise.all(Array.from({ length: N }, (_, i) => ed.client({ sub: `user${i}` })));
    const results = await Promise.all(clients.map(async (c, i) => {
      c.send({ type: 'ping', id: `p${i}` });
      const info = await c.command('workspace.info', undefined, `w${i}`);
      const pong = await c.next((m) => m.id === `p${i}`);
      return { pong, info };
    }));
    for (const { pong, info } of results) {
      assert.equal(pong.type, 'pong');
      assert.equal(info.type, 'command_response');
      assert.equal(info.data.success, true);
      assert.equal(info.data.result.workspaceId, ed.workspaceId);
    }
    // They are watched with epoll (the libev loop), not polled one by one
    // on every turn: each client's socket is registered with an eventpoll
    // fd, which /proc shows as one "tfd:" line per watched fd.
    const fdDir = `/proc/${ed.child.pid}/fd`;
    const registered = readdirSync(fdDir)
      .filter((fd) => { try { return readlinkSync(`${fdDir}/${fd}`) === 'anon_inode:[eventpoll]'; } catch { return false; } })
      .map((fd) => readFileSync(`/proc/${ed.child.pid}/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('tfd:')).length);
    assert.ok(Math.max(0, ...registered) >= N, `eventpoll registrations: ${JSON.stringify(registered)}`);
    const st = await status(ed);
    assert.equal(st.clients.length, N);
    assert.equal(new Set(st.clients.map((x) => x.sessionId)).size, N);
    assert.equal(new Set(st.clients.map((x) => x.userId)).size, N);
    assert.equal(JSON.parse((await httpGet(ed.port, '/health')).body).connections, N);
    clients.forEach((c) => c.close());
    await Promise.all(clients.map((c) => c.waitClose()));
    await waitFor(async () => (await status(ed)).clients.length === 0, 'status to show 0 clients');
    assert.equal(JSON.parse((await httpGet(ed.port, '/health')).body).connections, 0);
  });
});

describe('limits: an editor that stops reading its stdout', () => {
  let ed;
  before(async () => {
    ed = new Editor();
    await ed.startServer({ settings: { limits: { commandsPerSecond: 10000 } } });
  });
  after(async () => { await ed.stop(); });

  test('the control channel recovers, and audit notifications past the 1 MiB cap are dropped and counted (companion/notificationsDropped)', async (t) => {
    const c = await ed.client({ sub: 'busy' });
    const audits = () => ed.notifications.filter((n) => n.method === 'companion/commandExecuted').length;
    await c.command('workspace.info', undefined, 'warm');
    await ed.waitNotification('companion/commandExecuted', () => true);
    const before = audits();

    // The editor stops reading: the pipe fills, then the helper's queue
    // (RPC_OUT_SOFT_CAP, 1 MiB); every command's answer still goes out.
    ed.child.stdout.pause();
    const n = 8000;
    for (let i = 0; i < n; i++) c.send({ type: 'command', id: `q${i}`, data: { name: 'workspace.info' } });
    const last = await c.next((m) => m.id === `q${n - 1}`, 30000 * SLOW);
    assert.equal(last.data.success, true);
    c.queue.length = 0;

    ed.child.stdout.resume();
    // The control channel is not stuck: the rest of the queue goes out (a
    // write that filled the pipe once left it waiting forever).
    const st = await Promise.race([ed.request('server/status', {}), sleep(10000 * SLOW).then(() => null)]);
    assert.equal(st?.state, 'running', 'server/status was not answered after the editor read again');
    const dropped = await ed.waitNotification('companion/notificationsDropped', () => true, 15000 * SLOW);
    // Everything queued before it has arrived by now (one pipe, in order).
    const got = audits() - before;
    t.diagnostic(`${n} commands while the editor did not read: ${got} audit notifications arrived, ${JSON.stringify(dropped)} dropped`);
    assert.ok(dropped.count > 0 && dropped.total === dropped.count, JSON.stringify(dropped));
    assert.ok(got < n, `${got} of ${n} arrived: nothing was dropped`);
    // Nothing lost without a word: what arrived and what was counted make n
    // (a dropped log line, if any, is counted too).
    assert.ok(got + dropped.count >= n && got + dropped.count <= n + 5, `${got} arrived + ${dropped.count} dropped != ${n}`);

    // The editor reads again: the audit trail goes on.
    await c.command('workspace.info', undefined, 'after');
    await waitFor(() => audits() - before > got, 'an audit notification after the gap');
  });
});
