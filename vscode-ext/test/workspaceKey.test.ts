/*
 * Each workspace's tokens are signed and checked with a key derived for it
 * from the stored secret; the raw stored secret never reaches the helper.
 * The formula is pinned by vectors computed outside Node (openssl); the rest
 * runs against the real helper over real pipes and sockets.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { HelperSettings } from '../src/protocol';
import { toHelperSettings } from '../src/settingsShape';
import { WORKSPACE_KEY_CONTEXT, workspaceKey } from '../src/workspaceKey';
import { connectWs, makeClient, signJwt, type TestClient } from './util';

describe('workspaceKey', () => {
  it('matches vectors computed with openssl', () => {
    // printf 'companion-workspace-key/v1:9b35bbfecf0429a8' \
    //   | openssl dgst -sha256 -hmac 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
    assert.equal(
      workspaceKey('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', '9b35bbfecf0429a8'),
      '415729a8be7edbd97ce896924c8abb401b809e37e10fbca67a233de420c9a3e0',
    );
    // UTF-8 on both sides: printf 'companion-workspace-key/v1:no-folder:ünïcode' | openssl dgst -sha256 -hmac 'sécret'
    assert.equal(
      workspaceKey('sécret', 'no-folder:ünïcode'),
      '7c8e8f5696d2743e0d1537a7ebfb926bf92ee290fad4acd7a29c9811ab572921',
    );
    assert.equal(WORKSPACE_KEY_CONTEXT, 'companion-workspace-key/v1:');
  });

  it('differs per workspace and per secret, and refuses empty inputs', () => {
    const s = 'ab'.repeat(32);
    assert.match(workspaceKey(s, 'a'), /^[0-9a-f]{64}$/);
    assert.notEqual(workspaceKey(s, 'a'), workspaceKey(s, 'b'));
    assert.notEqual(workspaceKey(s, 'a'), workspaceKey('cd'.repeat(32), 'a'));
    assert.throws(() => workspaceKey('', 'a'), /stored secret is empty/);
    assert.throws(() => workspaceKey(s, ''), /workspace id is empty/);
  });

  it('is what toHelperSettings sends as auth.secret, never the stored secret', () => {
    const stored = 'ab'.repeat(32);
    const s = toHelperSettings(() => undefined, { storedSecret: stored, workspaceId: 'w1' });
    assert.deepEqual(s, { auth: { secret: workspaceKey(stored, 'w1') } });
    assert.ok(!JSON.stringify(s).includes(stored));
  });
});

async function authWith(url: string, token: string, workspaceId: string): Promise<{ success: boolean; code?: string }> {
  const c = await connectWs(url);
  c.send({ type: 'auth', id: 'a1', data: { token, workspaceId } });
  const res = await c.next((m) => m.id === 'a1');
  const data = res.data as { success: boolean; error?: { code: string } };
  c.ws.close();
  return { success: data.success, code: data.error?.code };
}

describe('per-workspace keys against the real helper', { timeout: 60000 }, () => {
  const stored = randomBytes(32).toString('hex');
  const live: TestClient[] = [];
  after(async () => {
    for (const t of live) await t.client.dispose();
  });
  /** A helper initialized as the extension does: settings from toHelperSettings. */
  function extensionLike(workspaceId: string): TestClient {
    const flat: Record<string, unknown> = { 'server.host': '127.0.0.1', 'server.port': 0 };
    const settings = (): HelperSettings => toHelperSettings((k) => flat[k], { storedSecret: stored, workspaceId });
    const t = makeClient({}, {}, { workspaceId, settings });
    live.push(t);
    return t;
  }
  const a = extensionLike('aaaaaaaaaaaaaaaa');
  const b = extensionLike('bbbbbbbbbbbbbbbb');
  const now = Math.floor(Date.now() / 1000);
  const claims = (ws: string): Record<string, unknown> =>
    ({ sub: 'x', workspaceId: ws, scope: 'read run editor', iat: now, exp: now + 600 });
  let urlA = '';
  let urlB = '';
  before(async () => {
    urlA = (await a.client.startServer()).url;
    urlB = (await b.client.startServer()).url;
  });

  it('accepts a token minted by auth/issueToken', async () => {
    const issued = await a.client.issueToken({ userId: 'phone', scopes: ['read'], ttlSeconds: 600 });
    assert.deepEqual(await authWith(urlA, issued.token, issued.workspaceId), { success: true, code: undefined });
    // and one signed here with the derived key: the key is the whole contract
    const own = signJwt('HS256', workspaceKey(stored, 'aaaaaaaaaaaaaaaa'), claims('aaaaaaaaaaaaaaaa'));
    assert.deepEqual(await authWith(urlA, own, 'aaaaaaaaaaaaaaaa'), { success: true, code: undefined });
  });

  it('refuses a token signed with the raw stored secret (AUTH_INVALID)', async () => {
    const raw = signJwt('HS256', stored, claims('aaaaaaaaaaaaaaaa'));
    assert.deepEqual(await authWith(urlA, raw, 'aaaaaaaaaaaaaaaa'), { success: false, code: 'AUTH_INVALID' });
  });

  it("refuses at workspace B a token made with workspace A's key, and A's own tokens", async () => {
    const aKey = (a.initialized?.settings.auth as { secret: string }).secret;
    assert.equal(aKey, workspaceKey(stored, 'aaaaaaaaaaaaaaaa'));
    const forged = signJwt('HS256', aKey, claims('bbbbbbbbbbbbbbbb'));
    assert.deepEqual(await authWith(urlB, forged, 'bbbbbbbbbbbbbbbb'), { success: false, code: 'AUTH_INVALID' });
    const issued = await a.client.issueToken({ userId: 'phone', scopes: ['read'], ttlSeconds: 600 });
    assert.equal((await authWith(urlB, issued.token, issued.workspaceId)).success, false);
  });
});
