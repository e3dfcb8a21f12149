/* Pairing links: `/#pair=<base64url of {v, url, workspaceId, token}>`.
 * The fragment never reaches a server; the app takes it out of the address
 * bar before doing anything else with it. */

export interface PairingPayload {
  v: number;
  url: string;
  workspaceId: string;
  token: string;
}

export class PairingError extends Error {}

function base64UrlDecode(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const bin = atob(padded);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** The helper's WebSocket URL when the payload has none: this page's host. */
export function derivedUrl(loc: Location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

export function parsePairing(encoded: string, loc: Location): PairingPayload {
  let obj: unknown;
  try {
    obj = JSON.parse(base64UrlDecode(decodeURIComponent(encoded)));
  } catch {
    throw new PairingError('The pairing link is damaged: it is not base64url-encoded JSON.');
  }
  if (typeof obj !== 'object' || obj === null) throw new PairingError('The pairing link holds no pairing data.');
  const o = obj as Record<string, unknown>;
  if (o.v !== 1) throw new PairingError('This pairing link is of a newer version than this app understands.');
  if (typeof o.workspaceId !== 'string' || o.workspaceId === '') throw new PairingError('The pairing link has no workspace id.');
  if (typeof o.token !== 'string' || o.token === '') throw new PairingError('The pairing link has no token.');
  let url = derivedUrl(loc);
  if (o.url !== undefined && o.url !== null && o.url !== '') {
    if (typeof o.url !== 'string') throw new PairingError('The pairing link has a bad URL.');
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw new PairingError('The pairing link has a bad URL.');
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new PairingError('The pairing link\'s URL is not ws:// or wss://.');
    url = u.toString();
  }
  return { v: 1, url, workspaceId: o.workspaceId, token: o.token };
}

/** Reads and removes `#pair=…` from the address bar; null when absent. */
export function takePairingFragment(): string | null {
  const m = /^#pair=(.+)$/.exec(location.hash);
  if (!m?.[1]) return null;
  history.replaceState(history.state, '', location.pathname + location.search);
  return m[1];
}
