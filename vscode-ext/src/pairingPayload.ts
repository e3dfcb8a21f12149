/*
 * What a device scans to pair: JSON {v: 1, url, workspaceId, token, expiresAt}
 * (the payload docs/protocol.md defines, as `companion-helper serve` prints it), and
 * the same as a ready-to-use URL (ws://host:port/ws?token=…&workspaceId=…),
 * which the helper accepts on the upgrade request; for a phone, the
 * single-use pairing link (http(s)://HOST:PORT/#pair=…) to the web app the
 * helper serves. No vscode import.
 */
import QRCode from 'qrcode';
import type { IssueTokenParams, IssueTokenResult, Scope } from './protocol';

export interface PairingPayload {
  json: string;
  connectUrl: string;
  url: string;
  workspaceId: string;
  token: string;
  expiresAt: number;
}

export function pairingPayload(r: IssueTokenResult): PairingPayload {
  const json = JSON.stringify({ v: 1, url: r.url, workspaceId: r.workspaceId, token: r.token, expiresAt: r.expiresAt });
  const u = new URL(r.url);
  u.searchParams.set('token', r.token);
  u.searchParams.set('workspaceId', r.workspaceId);
  return { json, connectUrl: u.toString(), url: r.url, workspaceId: r.workspaceId, token: r.token, expiresAt: r.expiresAt };
}

/** An SVG QR code of text, as a data: URL for an <img>. */
export async function qrDataUrl(text: string): Promise<string> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`;
}

/** The two kinds Pair Device offers. */
export type PairKind = 'phone' | 'token';

export interface PairChoice {
  kind: PairKind;
  deviceName: string;
  scopes: Scope[];
  /** How long the device's token lives (for a phone: the one it gets when it uses the link). */
  ttlSeconds: number;
  /** The token's user id; defaults to the device name. */
  userId?: string;
}

/**
 * auth/issueToken's params for a choice: a phone gets a single-use pairing
 * token (`pairing: true`, 10 minutes) and the link to the web app; a script
 * or bridge gets the long-lived token itself. Both name the device.
 */
export function pairRequest(c: PairChoice): IssueTokenParams {
  const deviceName = c.deviceName.trim();
  return {
    userId: (c.userId ?? deviceName).trim(),
    scopes: [...c.scopes],
    ttlSeconds: c.ttlSeconds,
    deviceName,
    pairing: c.kind === 'phone',
  };
}

export interface PairLink {
  /** http(s)://HOST:PORT/#pair=…: opens the phone web app, which pairs with the token in the fragment. */
  pairUrl: string;
  /** When the link stops working (single use, 10 minutes). */
  expiresAt: number;
  /** How long the phone stays paired once it used the link. */
  deviceTtlSeconds?: number;
  deviceName?: string;
}

/** The link of a pairing answer; refuses an answer without an http(s) pairUrl carrying a #pair= fragment. */
export function pairLink(r: IssueTokenResult): PairLink {
  if (typeof r.pairUrl !== 'string') {
    throw new Error('the helper did not answer a pairing link (pairUrl): is it older than this extension?');
  }
  const u = new URL(r.pairUrl);
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hash.startsWith('#pair=')) {
    throw new Error(`the helper answered an unexpected pairing link (${u.protocol}//${u.host}/...)`);
  }
  return {
    pairUrl: r.pairUrl,
    expiresAt: r.expiresAt,
    ...(typeof r.deviceTtlSeconds === 'number' ? { deviceTtlSeconds: r.deviceTtlSeconds } : {}),
    ...(r.deviceName ? { deviceName: r.deviceName } : {}),
  };
}

/** The payload inside a pairing link's #pair= fragment ({v, url, workspaceId, token, expiresAt}). */
export function decodePairUrl(pairUrl: string): { v: number; url: string; workspaceId: string; token: string; expiresAt?: number } {
  const hash = new URL(pairUrl).hash;
  if (!hash.startsWith('#pair=')) throw new Error('not a pairing link (no #pair= fragment)');
  const v = JSON.parse(Buffer.from(hash.slice('#pair='.length), 'base64url').toString('utf8')) as Record<string, unknown>;
  if (typeof v.token !== 'string' || typeof v.url !== 'string' || typeof v.workspaceId !== 'string') {
    throw new Error('the pairing link does not hold {url, workspaceId, token}');
  }
  return v as { v: number; url: string; workspaceId: string; token: string; expiresAt?: number };
}
