/*
 * Devices in the extension. The pure part: the device-name rule, states,
 * descriptions, tooltips, the items' context values against package.json's
 * menus, who is connected (status bar), a devices/list answer of the wrong
 * shape, and Pair Device's auth/issueToken params. With the real helper: the
 * model follows companion/devicesChanged, a phone pairs through the link's
 * single-use token and shows as connected, Rename and Revoke (its socket
 * closes 4001, another device stays), an unknown id and a bad name are
 * refused with the helper's message, and the status names who is connected.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { Emitter } from '../src/client';
import {
  DeviceModel,
  connectedSummary,
  deviceContextValue,
  deviceDescription,
  deviceLabel,
  deviceNameProblem,
  deviceState,
  deviceTooltipLines,
  parseDevicesList,
  sortDevices,
  type DeviceSource,
} from '../src/devices';
import { decodePairUrl, pairLink, pairRequest } from '../src/pairingPayload';
import type { Device, DevicesListResult } from '../src/protocol';
import { RecordingLogger, connectWs, makeClient, waitFor, type TestClient, type WsClient } from './util';

// The helper keeps its device registry in the XDG state folder: a fresh one for these tests.
process.env.XDG_STATE_HOME = mkdtempSync(path.join(tmpdir(), 'companion-ext-state-'));

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
const MIN = 60000;
const DAY = 86400000;

function dev(over: Partial<Device> = {}): Device {
  return {
    id: 'd1', name: 'Pixel 8', userId: 'Pixel 8', scopes: ['read', 'run'], created: NOW - DAY,
    expires: NOW + 6 * DAY, lastSeen: NOW - 2 * MIN, revoked: false, connected: false, paired: true, ...over,
  };
}

describe('devices: words, states and menus', () => {
  it('device names: 1 to 64 characters after trimming, no control characters (as the helper checks)', () => {
    assert.equal(deviceNameProblem('Pixel 8'), undefined);
    assert.equal(deviceNameProblem('  Téléphone de Zoë 📱  '), undefined);
    assert.equal(deviceNameProblem('x'.repeat(64)), undefined);
    assert.equal(deviceNameProblem('📱'.repeat(64)), undefined, '64 characters, not 64 UTF-16 units');
    assert.match(deviceNameProblem('') ?? '', /1 to 64/);
    assert.match(deviceNameProblem('   ') ?? '', /1 to 64/);
    assert.match(deviceNameProblem('x'.repeat(65)) ?? '', /At most 64 characters \(this is 65\)/);
    assert.match(deviceNameProblem('a\tb') ?? '', /Printable/);
    assert.match(deviceNameProblem('a\nb') ?? '', /Printable/);
    assert.match(deviceNameProblem('a\u007fb') ?? '', /Printable/);
  });

  it('states: revoked and expired win, then connected, pending, unnamed, idle', () => {
    assert.equal(deviceState(dev(), NOW), 'idle');
    assert.equal(deviceState(dev({ connected: true }), NOW), 'connected');
    assert.equal(deviceState(dev({ connected: true, revoked: true }), NOW), 'revoked');
    assert.equal(deviceState(dev({ expires: NOW - 1 }), NOW), 'expired');
    assert.equal(deviceState(dev({ revoked: true, expires: NOW - 1 }), NOW), 'revoked');
    assert.equal(deviceState(dev({ state: 'pending', paired: false, lastSeen: null }), NOW), 'pending');
    assert.equal(deviceState(dev({ unnamed: true, name: '' }), NOW), 'unnamed');
    assert.equal(deviceState(dev({ unnamed: true, connected: true }), NOW), 'connected');
  });

  it('describes a device in one line and in a tooltip', () => {
    assert.equal(deviceDescription(dev(), NOW), 'idle · read, run · expires in 6 d · seen 2 min ago');
    assert.equal(deviceDescription(dev({ connected: true, sessions: 1 }), NOW), 'connected · read, run · expires in 6 d');
    assert.equal(deviceDescription(dev({ connected: true, sessions: 2 }), NOW), 'connected (2) · read, run · expires in 6 d');
    assert.equal(deviceDescription(dev({ revoked: true }), NOW), 'revoked · read, run · seen 2 min ago');
    assert.equal(deviceDescription(dev({ expires: NOW - 3 * 3600000 }), NOW), 'expired · read, run · expired 3 h ago · seen 2 min ago');
    assert.equal(deviceDescription(dev({ state: 'pending', lastSeen: null }), NOW), 'link not used yet · read, run · expires in 6 d · never seen');
    assert.equal(deviceLabel(dev({ unnamed: true, name: '', userId: 'old-phone' })), 'unnamed (old-phone)');
    const tip = deviceTooltipLines(dev({ revoked: true }), NOW);
    assert.equal(tip[0], 'Pixel 8: revoked');
    assert.ok(tip.includes('Scopes: read, run'));
    assert.ok(tip.includes('Expires: 2026-12-12 12:00 UTC (in 6 d)'), tip.join('\n'));
    assert.ok(tip.includes('Last seen: 2026-12-06 11:58 UTC (2 min ago)'), tip.join('\n'));
    assert.ok(tip.includes('Device id: d1'));
    assert.ok(tip.some((l) => /tokens are refused/.test(l)));
    assert.ok(deviceTooltipLines(dev({ connected: true }), NOW).includes('Last seen: now (connected)'));
  });

  it('sorts connected first, revoked last', () => {
    const list = [dev({ id: 'r', name: 'A', revoked: true }), dev({ id: 'i', name: 'B' }), dev({ id: 'c', name: 'Z', connected: true }),
      dev({ id: 'e', name: 'C', expires: NOW - 1 })];
    assert.deepEqual(sortDevices(list, NOW).map((d) => d.id), ['c', 'i', 'e', 'r']);
  });

  it('the status bar names who is connected', () => {
    assert.equal(connectedSummary([]), '');
    assert.equal(connectedSummary(['Pixel 8', 'WhatsApp']), 'Pixel 8, WhatsApp');
    assert.equal(connectedSummary(['Pixel 8', 'WhatsApp', 'Pixel 8']), 'Pixel 8 (2), WhatsApp');
  });

  it('refuses a devices/list answer of another shape; fills what may be missing', () => {
    assert.throws(() => parseDevicesList(null), /without a devices array/);
    assert.throws(() => parseDevicesList({ devices: 'x' }), /without a devices array/);
    assert.throws(() => parseDevicesList({ devices: [42] }), /not an object/);
    assert.throws(() => parseDevicesList({ devices: [{ name: 'x' }] }), /without an id/);
    const r = parseDevicesList({ devices: [{ id: 'a', name: 'n', scopes: ['read', 3], lastSeen: null, created: 'x' }], problem: 'registry corrupt' });
    assert.deepEqual(r.devices[0], { id: 'a', name: 'n', userId: '', scopes: ['read'], created: 0, expires: 0, lastSeen: null,
      revoked: false, connected: false, paired: false, unnamed: false });
    assert.equal(r.problem, 'registry corrupt');
  });

  it("package.json: each item's inline actions are exactly Rename and Revoke where they apply; Show Devices is declared", () => {
    interface MenuItem { command: string; when: string; group?: string }
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      contributes: { menus: Record<string, MenuItem[]>; views: Record<string, { id: string }[]>; commands: { command: string }[] };
    };
    const shown = (m: MenuItem, view: string, viewItem: string): boolean => {
      const w = /^view == (\S+) && viewItem =~ \/(.*)\/$/.exec(m.when);
      assert.ok(w, `unexpected when clause ${m.when}`);
      return w[1] === view && new RegExp(w[2] as string).test(viewItem);
    };
    const inline = (pkg.contributes.menus['view/item/context'] ?? []).filter((m) => m.group?.startsWith('inline'));
    const context = (pkg.contributes.menus['view/item/context'] ?? []).filter((m) => !m.group?.startsWith('inline'));
    const cases: [Device, string[]][] = [
      [dev(), ['companion.device.rename', 'companion.device.revoke']],
      [dev({ connected: true }), ['companion.device.rename', 'companion.device.revoke']],
      [dev({ expires: NOW - 1 }), ['companion.device.rename', 'companion.device.revoke']],
      [dev({ revoked: true }), []],
      [dev({ unnamed: true }), ['companion.device.revoke']],
    ];
    for (const [d, want] of cases) {
      const cv = deviceContextValue(d, NOW);
      assert.deepEqual(inline.filter((m) => shown(m, 'companion.devices', cv)).map((m) => m.command), want, `inline for ${cv}`);
      assert.deepEqual(context.filter((m) => shown(m, 'companion.devices', cv)).map((m) => m.command), want, `context menu for ${cv}`);
      // the approvals' menus never show on a device
      assert.equal(inline.filter((m) => shown(m, 'companion.approvals', cv)).length, 0);
    }
    assert.ok(pkg.contributes.views.companion?.some((v) => v.id === 'companion.devices'));
    const ids = pkg.contributes.commands.map((c) => c.command);
    for (const c of ['companion.showDevices', 'companion.device.revoke', 'companion.device.rename', 'companion.devices.refresh']) {
      assert.ok(ids.includes(c), `${c} declared`);
    }
  });

  it("Pair Device's issueToken params: a phone asks for a single-use pairing token, a script for the token itself; both name the device", () => {
    assert.deepEqual(pairRequest({ kind: 'phone', deviceName: '  Pixel 8 ', scopes: ['read'], ttlSeconds: 7 * 86400 }),
      { userId: 'Pixel 8', scopes: ['read'], ttlSeconds: 604800, deviceName: 'Pixel 8', pairing: true });
    assert.deepEqual(pairRequest({ kind: 'token', deviceName: 'WhatsApp bridge', scopes: ['read', 'run'], ttlSeconds: 3600, userId: 'bridge' }),
      { userId: 'bridge', scopes: ['read', 'run'], ttlSeconds: 3600, deviceName: 'WhatsApp bridge', pairing: false });
  });

  it('a pairing answer must carry an http(s) link with a #pair= fragment', () => {
    const base = { token: 't', expiresAt: NOW + 600000, url: 'ws://127.0.0.1:1/ws', workspaceId: 'w' };
    assert.throws(() => pairLink(base), /did not answer a pairing link/);
    assert.throws(() => pairLink({ ...base, pairUrl: 'javascript:alert(1)//#pair=x' }), /unexpected pairing link/);
    assert.throws(() => pairLink({ ...base, pairUrl: 'http://127.0.0.1:1/' }), /unexpected pairing link/);
    const payload = Buffer.from(JSON.stringify({ v: 1, url: base.url, workspaceId: 'w', token: 'tok', expiresAt: base.expiresAt })).toString('base64url');
    const l = pairLink({ ...base, pairUrl: `https://host.example:8443/#pair=${payload}`, deviceTtlSeconds: 86400 });
    assert.equal(l.deviceTtlSeconds, 86400);
    assert.equal(decodePairUrl(l.pairUrl).token, 'tok');
    assert.throws(() => decodePairUrl('http://x/#other'), /no #pair=/);
  });
});

/** A stand-in for the helper's side of the model: answers are set by the test. */
class StubSource implements DeviceSource {
  readonly onDevicesChanged = new Emitter<void>();
  readonly onClientConnected = new Emitter<unknown>();
  readonly onClientDisconnected = new Emitter<unknown>();
  readonly onReady = new Emitter<void>();
  readonly onHelperExited = new Emitter<void>();
  answers: (() => Promise<DevicesListResult | undefined>)[] = [];
  calls = 0;
  listDevices(): Promise<DevicesListResult | undefined> {
    this.calls++;
    const a = this.answers.shift();
    return a ? a() : Promise.resolve({ devices: [] });
  }
  revokeDevice(): Promise<{ revoked: boolean }> { return Promise.resolve({ revoked: true }); }
  renameDevice(): Promise<{ renamed: boolean }> { return Promise.resolve({ renamed: true }); }
}

describe('devices: the model (stand-in helper)', () => {
  it('lists on ready and on devicesChanged, drops a late answer, empties when the helper exits, keeps the problem', async () => {
    const src = new StubSource();
    const log = new RecordingLogger();
    const m = new DeviceModel(src, log);
    let changes = 0;
    m.onDidChange.on(() => changes++);
    assert.equal(m.helperRunning, false);
    src.answers.push(() => Promise.resolve({ devices: [dev()], problem: 'devices.json: not JSON' }));
    src.onReady.fire();
    await waitFor(() => m.helperRunning, 'the first list');
    assert.deepEqual(m.devices.map((d) => d.id), ['d1']);
    assert.equal(m.problem, 'devices.json: not JSON');
    assert.match(log.text(), /warn device registry: devices\.json: not JSON/);
    // a slow answer overtaken by a newer one is dropped
    let release: () => void = () => undefined;
    src.answers.push(() => new Promise((r) => (release = () => r({ devices: [dev({ id: 'old' })] }))));
    src.answers.push(() => Promise.resolve({ devices: [dev({ id: 'new', connected: true })] }));
    src.onDevicesChanged.fire();
    src.onDevicesChanged.fire();
    await waitFor(() => m.get('new'), 'the newer list');
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(m.devices.map((d) => d.id), ['new']);
    assert.equal(m.problem, undefined);
    src.onHelperExited.fire();
    assert.equal(m.helperRunning, false);
    assert.equal(m.devices.length, 0);
    assert.ok(changes >= 3);
    await assert.rejects(m.rename('new', '\u0007bell'), /Printable/);
    m.dispose();
  });
});

interface Live { t: TestClient; model: DeviceModel; ws: WsClient[] }
const live: Live[] = [];
afterEach(async () => {
  for (let l = live.pop(); l; l = live.pop()) {
    for (const w of l.ws) w.ws.terminate();
    l.model.dispose();
    await l.t.client.dispose();
  }
});

async function setup(workspaceId: string): Promise<Live & { url: string }> {
  const t = makeClient({}, {}, { workspaceId });
  const model = new DeviceModel(t.client, t.logger);
  const l: Live = { t, model, ws: [] };
  live.push(l);
  const r = await t.client.start({ server: true });
  assert.ok(r);
  await waitFor(() => model.helperRunning, 'the first devices/list');
  return { ...l, url: r.url };
}

/** Authenticates a ws client with a token; answers auth_response.data. */
async function auth(l: Live, url: string, token: string, workspaceId: string): Promise<{ ws: WsClient; data: Record<string, unknown> }> {
  const ws = await connectWs(url);
  l.ws.push(ws);
  ws.send({ type: 'auth', id: 'a1', data: { token, workspaceId } });
  const res = await ws.next((m) => m.id === 'a1');
  return { ws, data: res.data as Record<string, unknown> };
}

describe('devices with the real helper', { timeout: 60000 }, () => {
  it('a phone pairs with the link\'s single-use token, shows as connected and named; Rename and Revoke (4001) reach the helper', async () => {
    const s = await setup('ws-ext-devices-1');
    assert.equal(s.model.devices.length, 0);

    // Pair Device for a phone: what the command sends
    const params = pairRequest({ kind: 'phone', deviceName: 'Pixel 8', scopes: ['read'], ttlSeconds: 7 * 86400 });
    const r = await s.t.client.issueToken(params);
    assert.equal(r.pairing, true);
    assert.equal(r.deviceName, 'Pixel 8');
    assert.equal(r.deviceTtlSeconds, 7 * 86400);
    assert.ok(r.deviceId);
    assert.ok(r.expiresAt <= Date.now() + 601000 && r.expiresAt > Date.now() + 590000, 'the link lives 10 minutes');
    const link = pairLink(r);
    const inLink = decodePairUrl(link.pairUrl);
    assert.equal(inLink.token, r.token);
    assert.equal(inLink.workspaceId, 'ws-ext-devices-1');
    assert.equal(new URL(link.pairUrl).port, new URL(s.url).port, 'the link points at this server');
    await waitFor(() => s.model.get(r.deviceId ?? ''), 'the new device in the model (devicesChanged)');

    // the phone uses it: it gets its device token, and the model shows it connected
    const phone = await auth(s, inLink.url, inLink.token, inLink.workspaceId);
    assert.equal(phone.data.success, true, JSON.stringify(phone.data));
    const deviceToken = phone.data.deviceToken;
    assert.equal(typeof deviceToken, 'string');
    const connected = await waitFor(() => {
      const d = s.model.get(r.deviceId ?? '');
      return d && deviceState(d) === 'connected' ? d : undefined;
    }, 'the phone connected in the model');
    assert.equal(connected.name, 'Pixel 8');
    assert.deepEqual(connected.scopes, ['read']);
    assert.ok(connected.expires > Date.now() + 6 * DAY, `expires ${connected.expires}`);
    await waitFor(() => s.t.client.status.clientNames.includes('Pixel 8'), 'the status naming the phone');

    // the link is spent: a second use is refused
    const again = await auth(s, inLink.url, inLink.token, inLink.workspaceId);
    assert.equal(again.data.success, false, JSON.stringify(again.data));

    // a script's long-lived token is another device
    const bridgeTok = await s.t.client.issueToken(pairRequest({ kind: 'token', deviceName: 'WhatsApp', scopes: ['read'], ttlSeconds: 3600, userId: 'bridge-user' }));
    assert.equal(bridgeTok.pairing, false);
    const bridge = await auth(s, s.url, bridgeTok.token, bridgeTok.workspaceId);
    assert.equal(bridge.data.success, true);
    await waitFor(() => s.t.client.status.clientNames.length === 2, 'two named clients');
    // its connection alone (no registry change) shows it connected in the model
    await waitFor(() => {
      const d = s.model.get(bridgeTok.deviceId ?? '');
      return d && deviceState(d) === 'connected';
    }, 'the bridge connected in the model');
    assert.equal(connectedSummary(s.t.client.status.clientNames.sort()), 'Pixel 8, WhatsApp');

    // rename
    await s.model.rename(r.deviceId ?? '', '  Pixel 8 Pro ');
    assert.equal(s.model.get(r.deviceId ?? '')?.name, 'Pixel 8 Pro');
    assert.match(s.t.logger.text(), /device "Pixel 8" \(.*\) renamed to "Pixel 8 Pro"/);

    // revoke: its socket closes with 4001, the other device stays
    await s.model.revoke(r.deviceId ?? '');
    const closed = await Promise.race([phone.ws.closed, new Promise<undefined>((res) => setTimeout(() => res(undefined), 5000))]);
    assert.equal(closed?.code, 4001, JSON.stringify(closed));
    const revoked = await waitFor(() => {
      const d = s.model.get(r.deviceId ?? '');
      return d && deviceState(d) === 'revoked' ? d : undefined;
    }, 'the device revoked in the model');
    assert.equal(deviceContextValue(revoked), 'device:revoked');
    assert.equal(bridge.ws.ws.readyState, bridge.ws.ws.OPEN, 'the other device stays connected');
    await waitFor(() => s.t.client.status.clientNames.join() === 'WhatsApp', 'the status without the phone');
    // the bridge leaves: idle in the model
    bridge.ws.ws.close();
    await waitFor(() => {
      const d = s.model.get(bridgeTok.deviceId ?? '');
      return d && deviceState(d) === 'idle';
    }, 'the bridge idle in the model after it left');
    // its device token is refused from now on
    const back = await auth(s, s.url, String(deviceToken), inLink.workspaceId);
    assert.equal(back.data.success, false, JSON.stringify(back.data));
  });

  it('an unknown id and a bad name are refused with the helper\'s message', async () => {
    const s = await setup('ws-ext-devices-2');
    await assert.rejects(s.model.revoke('no-such-device'), /no such device/);
    await assert.rejects(s.t.client.renameDevice('no-such-device', 'x'), /no such device/);
    const r = await s.t.client.issueToken(pairRequest({ kind: 'token', deviceName: 'Laptop', scopes: ['read'], ttlSeconds: 600 }));
    await waitFor(() => s.model.get(r.deviceId ?? ''), 'the device');
    // the model refuses before asking; the helper refuses as well
    await assert.rejects(s.model.rename(r.deviceId ?? '', 'x'.repeat(65)), /At most 64/);
    await assert.rejects(s.t.client.renameDevice(r.deviceId ?? '', 'a\nb'), /printable|name/i);
    await assert.rejects(s.t.client.issueToken({ userId: 'u', scopes: ['read'], ttlSeconds: 60, deviceName: 'x'.repeat(65) }), /deviceName/);
    assert.equal(s.model.get(r.deviceId ?? '')?.name, 'Laptop');
  });

  it('a corrupt registry file: the helper keeps serving and the model carries its problem (the view\'s warning line)', async () => {
    const dir = path.join(process.env.XDG_STATE_HOME ?? '', 'companion');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'devices-ws-ext-devices-3.json'), '{ this is not json', { mode: 0o600 });
    const s = await setup('ws-ext-devices-3');
    const problem = await waitFor(() => s.model.problem, 'the registry problem in the model');
    assert.match(problem, /devices-ws-ext-devices-3\.json|registry|JSON/i);
    assert.match(s.t.logger.text(), /warn device registry: /);
    // still pairs and lists devices (in memory)
    const r = await s.t.client.issueToken(pairRequest({ kind: 'token', deviceName: 'Tablet', scopes: ['read'], ttlSeconds: 600 }));
    await waitFor(() => s.model.get(r.deviceId ?? ''), 'the device despite the problem');
    assert.ok(s.model.problem);
  });
});
