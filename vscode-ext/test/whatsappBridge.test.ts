/*
 * Link WhatsApp through the real bundled bridge (bridges/whatsapp's
 * dist/companion-whatsapp.js, or COMPANION_WHATSAPP_BRIDGE) and the real
 * helper, driven by the extension's WhatsAppSupervisor. WhatsApp's servers
 * are played by the bridge's in-memory stand-in (StandInLinkingTransport,
 * selected with COMPANION_WHATSAPP_STANDIN=<ms until the simulated scan>):
 * no WhatsApp is reached. No VS Code.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { WhatsAppSupervisor, type WaStatus } from '../src/whatsapp';
import { revokeLink, revokePending, unlinkAndRevoke, withDevice, type IdStore } from '../src/whatsappDevices';
import { RecordingLogger, connectWs, isAlive, makeClient, sleep, waitFor, type TestClient } from './util';

// The helpers' device registries (tokens are minted here) in a folder of this run, never ~/.local/state.
process.env.XDG_STATE_HOME = mkdtempSync(path.join(tmpdir(), 'companion-ext-state-'));

const BRIDGE = path.resolve(
  process.env.COMPANION_WHATSAPP_BRIDGE ?? path.join(__dirname, '..', '..', '..', 'bridges', 'whatsapp', 'dist', 'companion-whatsapp.js'),
);

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

async function helper(): Promise<TestClient> {
  const t = makeClient();
  cleanup.push(() => t.client.dispose());
  await t.client.startServer();
  return t;
}

function supervisor(stateDir: string, standIn: string, logger = new RecordingLogger()): { sup: WhatsAppSupervisor; seen: WaStatus[]; logger: RecordingLogger } {
  const sup = new WhatsAppSupervisor({
    nodePath: process.execPath,
    bridgeScript: BRIDGE,
    stateDir,
    logger,
    env: { COMPANION_WHATSAPP_STANDIN: standIn },
    backoffInitialMs: 200,
    backoffMaxMs: 800,
  });
  const seen: WaStatus[] = [];
  sup.onStatus.on((s) => seen.push(s));
  cleanup.push(() => sup.dispose());
  return { sup, seen, logger };
}

async function linkParams(t: TestClient, name = 'app'): Promise<Parameters<WhatsAppSupervisor['start']>[0] & { deviceId: string }> {
  // As the extension mints it (whatsappPanel.ts): a new device "WhatsApp" each time.
  const r = await t.client.issueToken({ userId: 'whatsapp', scopes: ['read', 'run'], ttlSeconds: 600, deviceName: 'WhatsApp' } as never);
  return { allow: ['+15551234567'], groups: [], workspace: { name, url: r.url, workspaceId: r.workspaceId, token: r.token }, deviceId: String(r.deviceId) };
}

/** Whether the bridge is connected to this helper now (as the device minted for it). */
async function bridgeConnected(t: TestClient): Promise<boolean> {
  return (await t.client.serverStatus()).clients.some((c) => c.userId === 'whatsapp');
}

/** A workspaceState list, in memory. */
function memStore(ids: string[] = []): IdStore & { ids: string[] } {
  const s = { ids, get: () => [...s.ids], set: (next: string[]) => { s.ids = [...next]; return Promise.resolve(); } };
  return s;
}

/** auth with a token on a fresh socket: the answer and how the socket closed. */
async function tryToken(url: string, token: string, workspaceId: string): Promise<{ success: unknown; close: number }> {
  const c = await connectWs(url);
  c.send({ type: 'auth', id: 'a1', data: { token, workspaceId } });
  const res = await c.next((m) => m.id === 'a1');
  const closed = await Promise.race([c.closed, sleep(3000).then(() => ({ code: 0, reason: 'still open' }))]);
  c.ws.terminate();
  return { success: (res.data as { success?: unknown }).success, close: closed.code };
}

describe('Link WhatsApp: supervisor + real bundled bridge (in-memory WhatsApp stand-in) + real helper', () => {
  it('the bundled bridge exists', () => {
    assert.ok(existsSync(BRIDGE), `no bridge bundle at ${BRIDGE}: run "npm ci && npm run build" in bridges/whatsapp`);
  });

  it('qr -> linked; the bridge reaches the helper as "whatsapp"; no secret in argv, env or the log', async () => {
    const t = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const { sup, seen, logger } = supervisor(dir, '1500');
    const p = await linkParams(t);
    assert.equal(await sup.start(p), 'owner');
    const linking = await waitFor(() => seen.find((s) => s.state === 'linking' && s.qr), 'a QR code');
    assert.equal(linking.qr, 'standin-qr-1');
    await waitFor(() => sup.status.state === 'linked', 'linked', 10000);
    const states = seen.map((s) => s.state);
    assert.ok(states.indexOf('linking') < states.indexOf('linked'), states.join(' '));
    // The bridge authenticated to the helper with the minted token.
    await waitFor(async () => (await t.client.serverStatus()).clients.some((c) => c.userId === 'whatsapp'), 'the bridge as a helper client');
    // Private files: 0600, in the state folder.
    for (const f of ['api-token', 'bridge.json', 'bridge.lock', path.join('tokens', 'app.token')]) {
      assert.equal(statSync(path.join(dir, f)).mode & 0o077, 0, `${f} is private`);
    }
    assert.equal(readFileSync(path.join(dir, 'tokens', 'app.token'), 'utf8').trim(), p.workspace.token);
    const lock = JSON.parse(readFileSync(path.join(dir, 'bridge.lock'), 'utf8')) as { apiPort: number };
    assert.equal(lock.apiPort, sup.port);
    // The token never in the bridge's argv or environment, nor in the log.
    const pid = sup.pid!;
    const apiToken = readFileSync(path.join(dir, 'api-token'), 'utf8').trim();
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    for (const secret of [p.workspace.token, apiToken]) {
      assert.ok(!cmdline.includes(secret), 'argv');
      assert.ok(!environ.includes(secret), 'environment');
      assert.ok(!logger.text().includes(secret), 'log');
    }
    assert.match(environ, /ELECTRON_RUN_AS_NODE=1/);
    assert.match(logger.text(), /whatsapp: linked/);
    // Stopped: the process is gone, the lock released, the session kept.
    await sup.stop();
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(path.join(dir, 'bridge.lock')), false);
    assert.ok(existsSync(path.join(dir, 'auth', 'creds.json')), 'the session stays linked');
  });

  it('the bridge crashing during linking is restarted, and then links', async () => {
    const t = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const { sup, seen } = supervisor(dir, '2500');
    await sup.start(await linkParams(t));
    await waitFor(() => sup.status.state === 'linking', 'linking');
    const first = sup.pid!;
    process.kill(first, 'SIGKILL');
    await waitFor(() => sup.status.state === 'disconnected', 'the crash seen');
    await waitFor(() => sup.pid !== undefined && sup.pid !== first, 'a new bridge');
    await waitFor(() => sup.status.state === 'linking', 'linking again');
    await waitFor(() => sup.status.state === 'linked', 'linked after the restart', 10000);
    assert.ok(seen.some((s) => s.state === 'disconnected' && /restarts in/.test(s.detail ?? '')));
    assert.equal(isAlive(first), false);
  });

  it('a second window attaches: its own helper is added to the running bridge as @name (a taken name gets a suffix); it takes over when the first window stops', async () => {
    const t1 = await helper();
    const t2 = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const a = supervisor(dir, '300');
    await a.sup.start(await linkParams(t1, 'app'));
    await waitFor(() => a.sup.status.state === 'linked', 'window A linked');
    assert.equal(a.sup.status.reachableAs, 'app');
    const firstPid = a.sup.pid!;
    // Window B's folder has the same name: the bridge has @app already, so B is @app-2.
    const b = supervisor(dir, '300');
    const p2 = await linkParams(t2, 'app');
    assert.equal(await b.sup.start(p2), 'attached');
    assert.equal(b.sup.pid, undefined, 'B runs no bridge');
    assert.equal(b.sup.status.reachableAs, 'app-2');
    await waitFor(() => b.sup.status.state === 'linked', 'window B sees linked');
    assert.equal(b.sup.status.role, 'attached');
    // A's bridge reached B's helper with B's token: B's workspace is served as @app-2.
    await waitFor(() => bridgeConnected(t2), "the bridge as a client of B's helper");
    await waitFor(() => /whatsapp: api: workspace @app-2 added/.test(a.logger.text()), "A's bridge says @app-2 is added");
    for (const l of [a.logger, b.logger]) assert.ok(!l.text().includes(p2.workspace.token), "B's token is in no log");
    assert.ok(!readFileSync(`/proc/${firstPid}/cmdline`, 'utf8').includes(p2.workspace.token), "B's token is not in the bridge's argv");
    assert.ok(!readFileSync(`/proc/${firstPid}/environ`, 'utf8').includes(p2.workspace.token), "B's token is not in the bridge's environment");
    // Window A closes: its bridge stops; B takes over on the stored session (no new QR code).
    const before = b.seen.length;
    await a.sup.stop();
    assert.equal(isAlive(firstPid), false);
    await waitFor(() => b.sup.status.role === 'owner' && b.sup.status.state === 'linked', 'B runs the bridge and is linked', 15000);
    assert.ok(b.sup.pid !== undefined && b.sup.pid !== firstPid, 'a bridge of B');
    assert.ok(!b.seen.slice(before).some((s) => s.state === 'linking'), 'the session was kept: no QR code');
    assert.equal(b.sup.status.reachableAs, 'app', "B's workspace is the new bridge's own");
    const lock = JSON.parse(readFileSync(path.join(dir, 'bridge.lock'), 'utf8')) as { pid: number; apiPort: number };
    assert.equal(lock.pid, b.sup.pid);
    assert.equal(lock.apiPort, b.sup.port);
    await waitFor(() => bridgeConnected(t2), "B's bridge reaches B's helper");
    assert.match(b.logger.text(), /this window runs it now/);
  });

  it("an attached window adds its workspace again when the bridge restarts (the bridge drops it with the client's socket)", async () => {
    const t1 = await helper();
    const t2 = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const a = supervisor(dir, '300');
    await a.sup.start(await linkParams(t1, 'app'));
    await waitFor(() => a.sup.status.state === 'linked', 'window A linked');
    const b = supervisor(dir, '300');
    assert.equal(await b.sup.start(await linkParams(t2, 'lib')), 'attached');
    assert.equal(b.sup.status.reachableAs, 'lib');
    await waitFor(() => bridgeConnected(t2), "the bridge as a client of B's helper");
    // A's bridge crashes; A restarts it; B attaches to the new one and adds @lib again.
    const first = a.sup.pid!;
    process.kill(first, 'SIGKILL');
    await waitFor(() => b.sup.status.state === 'disconnected', 'B sees the bridge go');
    assert.equal(b.sup.status.reachableAs, undefined, 'not reachable meanwhile');
    await waitFor(() => a.sup.pid !== undefined && a.sup.pid !== first && a.sup.status.state === 'linked', 'A restarted its bridge', 15000);
    await waitFor(() => b.sup.status.reachableAs === 'lib' && b.sup.status.role === 'attached', 'B added @lib again', 15000);
    await waitFor(() => (a.logger.text().match(/whatsapp: api: workspace @lib added/g) ?? []).length === 2, 'the new bridge added @lib');
    await waitFor(() => bridgeConnected(t2), "the new bridge reaches B's helper");
    assert.equal(b.sup.pid, undefined, 'B still runs no bridge');
  });

  it('a second window follows the running bridge instead of starting another', async () => {
    const t = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const a = supervisor(dir, '300');
    await a.sup.start(await linkParams(t));
    await waitFor(() => a.sup.status.state === 'linked', 'window A linked');
    const b = supervisor(dir, '300');
    assert.equal(await b.sup.start(await linkParams(t)), 'attached');
    await waitFor(() => b.sup.status.state === 'linked', 'window B sees linked');
    assert.equal(b.sup.pid, undefined, 'B runs no bridge');
    assert.equal(b.sup.port, a.sup.port);
    // B going away leaves A's bridge alone.
    await b.sup.stop();
    await sleep(300);
    assert.equal(a.sup.status.state, 'linked');
    assert.ok(isAlive(a.sup.pid!));
    // A unlinking: C (attached again) hears it stopped, and does not take over (no session left to run).
    const c = supervisor(dir, '300');
    const pc = await linkParams(t, 'other');
    await c.sup.start(pc);
    await a.sup.unlink();
    await waitFor(() => c.sup.status.state === 'stopped', 'C hears the bridge stopped');
    assert.equal(c.sup.status.unlinkedElsewhere, true, 'C is told the link is over, not only that the bridge stopped');
    await sleep(1500);
    assert.equal(c.sup.pid, undefined, 'C started no bridge');
    assert.equal(existsSync(path.join(dir, 'bridge.lock')), false);
    // What C's window then does (whatsappPanel.ts): the device minted for the bridge in C's workspace is revoked.
    const current = memStore([pc.deviceId]);
    const pending = memStore();
    const r = await revokeLink({ helper: t.client, current, pending, log: c.logger });
    assert.deepEqual([r.revoked, r.left, current.get(), pending.get()], [[pc.deviceId], [], [], []]);
    assert.deepEqual(await tryToken(pc.workspace.url, pc.workspace.token, pc.workspace.workspaceId), { success: false, close: 4001 });
  });

  it('unlink: logged out through the API, process stopped, session and token files deleted', async () => {
    const t = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const { sup } = supervisor(dir, '200');
    await sup.start(await linkParams(t));
    await waitFor(() => sup.status.state === 'linked', 'linked');
    const pid = sup.pid!;
    assert.ok(existsSync(path.join(dir, 'auth', 'creds.json')));
    writeFileSync(path.join(dir, 'pairing.json'), '{"version":1,"pending":[],"replied":[],"issued":[],"wrong":[]}\n', { mode: 0o600 });
    assert.equal(await sup.unlink(), true, 'the bridge confirmed the logout');
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(path.join(dir, 'auth')), false);
    assert.equal(existsSync(path.join(dir, 'tokens')), false);
    assert.equal(existsSync(path.join(dir, 'pairing.json')), false, "the old account's pending codes are forgotten");
    assert.equal(existsSync(path.join(dir, 'bridge.lock')), false);
    assert.equal(sup.status.state, 'stopped');
  });

  it('Unlink revokes every device minted for the bridge: devices/list shows them revoked, their tokens are refused (4001); other devices stay', async () => {
    const t = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const { sup, logger } = supervisor(dir, '200');
    const current = memStore();
    const pending = memStore();
    // Link, then the bridge restarted with a new token (a setting changed, or the daily refresh): two devices.
    const p1 = await linkParams(t);
    await current.set(withDevice(current.get(), p1.deviceId));
    await sup.start(p1);
    await waitFor(() => sup.status.state === 'linked', 'linked');
    const p2 = await linkParams(t);
    await current.set(withDevice(current.get(), p2.deviceId));
    await sup.stop();
    await sup.start(p2);
    await waitFor(() => sup.status.state === 'linked', 'linked again');
    await waitFor(async () => (await t.client.serverStatus()).clients.some((c) => c.userId === 'whatsapp'), 'the bridge as a helper client');
    // Another device, a phone: untouched.
    const phoneTok = await t.client.issueToken({ userId: 'phone', scopes: ['read'], ttlSeconds: 600, deviceName: 'Pixel 8' } as never);
    const phone = await connectWs(phoneTok.url);
    phone.send({ type: 'auth', id: 'a1', data: { token: phoneTok.token, workspaceId: phoneTok.workspaceId } });
    assert.equal(((await phone.next((m) => m.id === 'a1')).data as { success: boolean }).success, true);

    const r = await unlinkAndRevoke({ supervisor: sup, helper: t.client, current, pending, log: logger });
    assert.equal(r.confirmed, true);
    assert.deepEqual([...r.revoked].sort(), [p1.deviceId, p2.deviceId].sort());
    assert.deepEqual(r.left, []);
    assert.deepEqual(current.get(), []);
    assert.deepEqual(pending.get(), []);
    const list = (await t.client.listDevices())!.devices;
    for (const id of [p1.deviceId, p2.deviceId]) {
      const d = list.find((x) => x.id === id);
      assert.ok(d && d.revoked === true && d.name === 'WhatsApp', JSON.stringify(d));
    }
    assert.equal(list.find((x) => x.id === phoneTok.deviceId)?.revoked, false);
    for (const p of [p1, p2]) {
      const back = await tryToken(p.workspace.url, p.workspace.token, p.workspace.workspaceId);
      assert.equal(back.success, false, JSON.stringify(back));
      assert.equal(back.close, 4001, JSON.stringify(back));
    }
    assert.equal(phone.ws.readyState, phone.ws.OPEN, 'the phone stays connected');
    assert.match(logger.text(), /the device "WhatsApp" \(.+\) is revoked/);
    phone.ws.terminate();
  });

  it('Unlink without a running helper: the devices wait in the pending list and are revoked when it runs; an unknown id is dropped', async () => {
    const t = await helper();
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const { sup, logger } = supervisor(dir, '200');
    const p = await linkParams(t);
    const current = memStore([p.deviceId]);
    const pending = memStore(['no-such-device']);
    await sup.start(p);
    await waitFor(() => sup.status.state === 'linked', 'linked');
    const r = await unlinkAndRevoke({ supervisor: sup, helper: undefined, current, pending, log: logger });
    assert.deepEqual(r.revoked, []);
    assert.deepEqual(pending.get(), ['no-such-device', p.deviceId]);
    assert.equal((await tryToken(p.workspace.url, p.workspace.token, p.workspace.workspaceId)).success, true, 'not revoked yet');
    // The helper runs again.
    assert.deepEqual(await revokePending(t.client, pending, logger), [p.deviceId]);
    assert.deepEqual(pending.get(), [], 'done: the unknown id is not tried again');
    const back = await tryToken(p.workspace.url, p.workspace.token, p.workspace.workspaceId);
    assert.deepEqual(back, { success: false, close: 4001 });
    assert.match(logger.text(), /no-such-device is not in this workspace's registry/);
  });

  it('a bridge that cannot start is an error, not a hang', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-wa-'));
    const { sup } = supervisor(dir, 'bogus');
    await assert.rejects(
      sup.start({ allow: [], groups: [], workspace: { name: 'app', url: 'ws://127.0.0.1:9/ws', workspaceId: 'w', token: 't' } }),
      /exited at start/,
    );
    assert.equal(existsSync(path.join(dir, 'bridge.lock')), false, 'the lock is released');
    assert.equal(sup.status.state, 'error');
    assert.equal(sup.pid, undefined);
  });
});
