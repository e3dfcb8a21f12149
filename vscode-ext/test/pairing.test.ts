/* The pairing payload from a real auth/issueToken, and its QR code. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pairingPayload, qrDataUrl } from '../src/pairingPayload';
import { connectWs, makeClient } from './util';

describe('pairing', { timeout: 30000 }, () => {
  const t = makeClient();
  after(() => t.client.dispose());

  it('issues a token whose connect URL authenticates on the upgrade request', async () => {
    const started = await t.client.start({ server: true });
    assert.ok(started);
    const r = await t.client.issueToken({ userId: 'my-phone', scopes: ['read', 'run'], ttlSeconds: 300 });
    const p = pairingPayload(r);
    const json = JSON.parse(p.json) as { v: number; url: string; workspaceId: string; token: string; expiresAt: number };
    assert.equal(json.v, 1, 'the payload version of docs/protocol.md');
    assert.equal(json.url, started.url);
    assert.equal(json.workspaceId, 'ws-ext-test');
    assert.equal(json.token, r.token);
    assert.ok(json.expiresAt > Date.now() + 290000 && json.expiresAt <= Date.now() + 301000);
    const c = await connectWs(p.connectUrl);
    const res = await c.next((m) => m.type === 'auth_response');
    const data = res.data as { success: boolean; userId: string; scopes: string[] };
    assert.equal(data.success, true);
    assert.equal(data.userId, 'my-phone');
    assert.deepEqual([...data.scopes].sort(), ['read', 'run']);
    c.ws.close();
  });

  it('renders the payload as an SVG QR code data URL', async () => {
    const url = await qrDataUrl('{"url":"ws://127.0.0.1:3001/ws","token":"x"}');
    assert.match(url, /^data:image\/svg\+xml;base64,/);
    const svg = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64').toString('utf8');
    assert.match(svg, /^<svg[^>]*viewBox="0 0 (\d+) \1"/);
    assert.match(svg, /<path[^>]*d="M/);
  });
});
