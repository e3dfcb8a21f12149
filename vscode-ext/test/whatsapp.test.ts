/*
 * Link WhatsApp, the pure parts of whatsapp.ts: the state machine over the
 * bridge API's frames, the bridge's argv, environment and config, the API
 * port line, the lock file and the allowlist setting.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  bridgeArgs, bridgeConfig, bridgeEnv, ensureApiToken, nextStatus, pairingFrame, parseApiPort, parseLock, readLiveLock, splitAllow,
  takeLock, withAllowed, workspaceName, type WaStatus,
} from '../src/whatsapp';

describe('whatsapp: state machine', () => {
  const start: WaStatus = { state: 'starting', role: 'owner' };

  it('qr -> linking with the QR, connected -> linked', () => {
    let s = nextStatus(start, { type: 'status', status: 'connecting' });
    assert.equal(s.state, 'starting');
    s = nextStatus(s, { type: 'status', status: 'qr' });
    assert.equal(s.state, 'linking');
    s = nextStatus(s, { type: 'qr', qr: 'abc' });
    assert.deepEqual(s, { state: 'linking', qr: 'abc', role: 'owner' });
    // WhatsApp rotates the code; "connecting" in between keeps the code up.
    s = nextStatus(s, { type: 'status', status: 'connecting' });
    assert.equal(s.qr, 'abc');
    s = nextStatus(s, { type: 'qr', qr: 'def' });
    assert.equal(s.qr, 'def');
    s = nextStatus(s, { type: 'status', status: 'connected' });
    assert.deepEqual(s, { state: 'linked', role: 'owner' });
  });

  it('disconnects: reconnecting, fatal, logged out', () => {
    const linked: WaStatus = { state: 'linked', role: 'owner' };
    assert.deepEqual(nextStatus(linked, { type: 'status', status: 'disconnected', detail: 'net', willReconnect: true }), {
      state: 'disconnected', detail: 'net', role: 'owner',
    });
    assert.equal(nextStatus(linked, { type: 'status', status: 'disconnected', detail: 'replaced', willReconnect: false }).state, 'error');
    const out = nextStatus(linked, { type: 'status', status: 'logged_out', detail: 'x' });
    assert.equal(out.state, 'loggedOut');
    assert.equal(out.detail, 'x');
  });

  it('ignores frames it does not know and malformed ones', () => {
    const linked: WaStatus = { state: 'linked' };
    assert.equal(nextStatus(linked, { type: 'message', text: 'hi' }), linked);
    assert.equal(nextStatus(linked, { type: 'status', status: 42 }), linked);
    assert.equal(nextStatus(linked, { type: 'status', status: 'bogus' }), linked);
    assert.equal(nextStatus(linked, { type: 'qr', qr: 7 }), linked);
  });
});

describe('whatsapp: the bridge process', () => {
  it('argv names the config and the API port, never a token', () => {
    assert.deepEqual(bridgeArgs('/x/b.mjs', '/s/bridge.json', false), ['/x/b.mjs', '--config', '/s/bridge.json', '--api-port', '0', '--stop-with-parent']);
    assert.deepEqual(bridgeArgs('/x/b.mjs', '/s/bridge.json', true).slice(-1), ['--relink']);
  });

  it('env: the editor runtime as Node, no BRIDGE_TOKEN or NODE_OPTIONS from the editor', () => {
    const env = bridgeEnv({ PATH: '/bin', BRIDGE_TOKEN: 'secret-secret-secret', NODE_OPTIONS: '--inspect' }, { COMPANION_WHATSAPP_STANDIN: '10' });
    assert.equal(env.ELECTRON_RUN_AS_NODE, '1');
    assert.equal(env.PATH, '/bin');
    assert.equal(env.BRIDGE_TOKEN, undefined);
    assert.equal(env.NODE_OPTIONS, undefined);
    assert.equal(env.COMPANION_WHATSAPP_STANDIN, '10');
  });

  it('config: the session under the state folder, token by file, any API port', () => {
    const c = bridgeConfig({
      stateDir: '/s',
      allow: ['+15551234567'],
      groups: ['1203-1@g.us'],
      workspaces: [{ name: 'app', url: 'ws://127.0.0.1:3001/ws', workspaceId: 'w1', tokenFile: '/s/tokens/app.token' }],
    });
    assert.deepEqual(c, {
      allow: ['+15551234567'],
      groups: ['1203-1@g.us'],
      authDir: '/s/auth',
      stateDir: '/s',
      apiPort: 0,
      allowManaged: true,
      workspaces: [{ name: 'app', url: 'ws://127.0.0.1:3001/ws', workspaceId: 'w1', tokenFile: '/s/tokens/app.token' }],
    });
    assert.ok(!JSON.stringify(c).includes('"token"'), 'no token value in the config');
  });

  it('the API port line', () => {
    assert.equal(parseApiPort('2026-12-06T02:44:21.721Z info: api: listening on 127.0.0.1:32823'), 32823);
    assert.equal(parseApiPort('2026-12-06T02:44:21.721Z info: api: listening on 0.0.0.0:32823'), undefined);
    assert.equal(parseApiPort('info: api: listening on 127.0.0.1:0'), undefined);
    assert.equal(parseApiPort('info: api: listening on 127.0.0.1:99999'), undefined);
    assert.equal(parseApiPort('somebody said api: listening on 127.0.0.1:80 and more'), undefined);
  });

  it('workspace names the bridge accepts', () => {
    assert.equal(workspaceName('my project (2)'), 'my-project-2');
    assert.equal(workspaceName('app'), 'app');
    assert.equal(workspaceName('  '), 'workspace');
    assert.match(workspaceName('x'.repeat(100)), /^x{40}$/);
  });
});

describe('whatsapp: pairing codes from the bridge', () => {
  it('frames: pairing, allowed and pairingResult are told apart; malformed ones are nothing', () => {
    assert.deepEqual(pairingFrame({ type: 'pairing', code: 'K7Q2XM', from: '+15550001111', expiresAt: 5 }),
      { kind: 'pairing', pairing: { code: 'K7Q2XM', from: '+15550001111', expiresAt: 5 } });
    assert.deepEqual(pairingFrame({ type: 'pairing', code: 'K7Q2XM', from: '+1', expiresAt: 5, name: 'Ana' }),
      { kind: 'pairing', pairing: { code: 'K7Q2XM', from: '+1', expiresAt: 5, name: 'Ana' } });
    assert.deepEqual(pairingFrame({ type: 'allowed', number: '+15550001111' }), { kind: 'allowed', number: '+15550001111' });
    assert.deepEqual(pairingFrame({ type: 'pairingResult', action: 'approve', code: 'K7Q2XM', ok: true, number: '+1' }),
      { kind: 'result', code: 'K7Q2XM', ok: true, number: '+1' });
    assert.deepEqual(pairingFrame({ type: 'pairingResult', action: 'deny', code: 'X', ok: false, reason: 'UNKNOWN', error: 'no such code' }),
      { kind: 'result', code: 'X', ok: false, error: 'no such code' });
    for (const bad of [{ type: 'pairing', code: 1, from: '+1', expiresAt: 5 }, { type: 'pairing', code: 'A', from: '+1' },
      { type: 'allowed' }, { type: 'pairingResult', code: 'A' }, { type: 'status', status: 'connected' }]) {
      assert.equal(pairingFrame(bad), undefined, JSON.stringify(bad));
    }
  });

  it('an approved number joins the allowlist once; other entries are kept', () => {
    assert.deepEqual(withAllowed(undefined, '+15550001111'), ['+15550001111']);
    assert.deepEqual(withAllowed(['+1555000', 15557770000, 'garbage'], '+15550001111'), ['+1555000', 15557770000, 'garbage', '+15550001111']);
    assert.deepEqual(withAllowed(['+15550001111'], '+15550001111'), ['+15550001111']);
    assert.deepEqual(withAllowed(['+1 (555) 000-1111'], '+15550001111'), ['+1 (555) 000-1111'], 'the same number, spelled otherwise');
    assert.deepEqual(withAllowed([15550001111], '+15550001111'), [15550001111]);
  });
});

describe('whatsapp: companion.whatsapp.allow', () => {
  it('numbers (strings, numbers, JIDs) and groups; the rest named as bad', () => {
    const r = splitAllow(['+1 (555) 123-4567', 447700900123, '15550001111@s.whatsapp.net', '120363025246125486@g.us', 'bob', '', '+12']);
    assert.deepEqual(r.numbers, ['+15551234567', '+447700900123', '+15550001111']);
    assert.deepEqual(r.groups, ['120363025246125486@g.us']);
    assert.deepEqual(r.bad, ['bob', '', '+12']);
  });
  it('not a list', () => {
    assert.deepEqual(splitAllow(undefined), { numbers: [], groups: [], bad: [] });
    assert.deepEqual(splitAllow('+15551234567').bad, ['"+15551234567"']);
    assert.deepEqual(splitAllow([{ n: 1 }]).bad, ['{"n":1}']);
  });
  it('duplicates once', () => {
    assert.deepEqual(splitAllow(['+15551234567', '15551234567']).numbers, ['+15551234567']);
  });
});

describe('whatsapp: lock and tokens', () => {
  it('parseLock takes only a well-formed lock', () => {
    assert.deepEqual(parseLock('{"pid":12,"apiPort":3456,"startedAt":1}'), { pid: 12, apiPort: 3456, startedAt: 1 });
    for (const bad of ['', 'garbage', '[]', 'null', '{"pid":"12","apiPort":1,"startedAt":1}', '{"pid":0,"apiPort":1,"startedAt":1}',
      '{"pid":1,"apiPort":70000,"startedAt":1}', '{"pid":1.5,"apiPort":1,"startedAt":1}', '{"pid":1,"apiPort":1}']) {
      assert.equal(parseLock(bad), undefined, bad);
    }
  });

  it('takeLock: once; a live one refuses, a stale or broken one is replaced', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-walock-'));
    const alive = new Set<number>([process.pid]);
    const io = { isAlive: (pid: number) => alive.has(pid) };
    assert.equal(takeLock(dir, io), true);
    assert.equal(statSync(path.join(dir, 'bridge.lock')).mode & 0o777, 0o600);
    assert.equal(takeLock(dir, io), false, 'our own live lock');
    assert.equal(readLiveLock(dir, io)?.pid, process.pid);
    writeFileSync(path.join(dir, 'bridge.lock'), JSON.stringify({ pid: 999999, apiPort: 1234, startedAt: 1 }));
    assert.equal(readLiveLock(dir, io), undefined, 'its process is gone');
    assert.equal(takeLock(dir, io), true, 'a stale lock is replaced');
    writeFileSync(path.join(dir, 'bridge.lock'), 'not json');
    assert.equal(takeLock(dir, io), true, 'a broken lock is replaced');
    alive.add(4242);
    writeFileSync(path.join(dir, 'bridge.lock'), JSON.stringify({ pid: 4242, apiPort: 1234, startedAt: 1 }));
    assert.equal(takeLock(dir, io), false);
    assert.equal(readLiveLock(dir, io)?.apiPort, 1234);
  });

  it('the API token file: created 0600 once, refused when others may read it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'companion-watok-'));
    const t = ensureApiToken(dir);
    assert.ok(t.length >= 40);
    assert.equal(statSync(path.join(dir, 'api-token')).mode & 0o777, 0o600);
    assert.equal(ensureApiToken(dir), t);
    assert.equal(readFileSync(path.join(dir, 'api-token'), 'utf8').trim(), t);
    writeFileSync(path.join(dir, 'api-token'), 'x'.repeat(40), { mode: 0o644 });
    chmodSync(path.join(dir, 'api-token'), 0o644);
    assert.throws(() => ensureApiToken(dir), /chmod 600/);
  });
});
