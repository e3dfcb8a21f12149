/*
 * What a device scans to pair: JSON {v: 1, url, workspaceId, token, expiresAt}
 * (the payload docs/protocol.md defines, as `companion-helper serve` prints it), and
 * the same as a ready-to-use URL (ws://host:port/ws?token=…&workspaceId=…),
 * which the helper accepts on the upgrade request. No vscode import.
 */
import QRCode from 'qrcode';
import type { IssueTokenResult } from './protocol';

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
