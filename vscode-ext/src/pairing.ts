/*
 * The Pair Device webview. For a phone: the QR code of the single-use
 * pairing link (the web app the helper serves), its expiry countdown and a
 * Copy link button. For a script or bridge: the QR code of the pairing
 * payload, the URL, workspace id and token with copy buttons. Strict CSP
 * with a nonce; the copy buttons ask the extension (vscode.env.clipboard)
 * to copy, by key, so the page never holds what it does not show.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { isLoopbackHost } from './settingsShape';
import { qrDataUrl, type PairingPayload, type PairLink } from './pairingPayload';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What the panel shows: a phone's pairing link, or a script's long-lived token. */
export type PairingView =
  | { kind: 'phone'; link: PairLink; deviceName: string; scopes: string[] }
  | { kind: 'token'; payload: PairingPayload; deviceName: string; scopes: string[] };

let panel: vscode.WebviewPanel | undefined;
/** What the copy buttons of the open panel copy. */
let values: Record<string, string> = {};

export async function showPairingPanel(v: PairingView, log: vscode.LogOutputChannel): Promise<void> {
  const qr = await qrDataUrl(v.kind === 'phone' ? v.link.pairUrl : v.payload.json);
  if (!panel) {
    panel = vscode.window.createWebviewPanel('companion.pairing', 'Companion: Pair Device', vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [],
      retainContextWhenHidden: false,
    });
    const created = panel;
    const sub = created.webview.onDidReceiveMessage((m: { copy?: string }) => {
      const v = m.copy ? values[m.copy] : undefined;
      if (m.copy && v !== undefined) {
        void vscode.env.clipboard.writeText(v).then(() => {
          vscode.window.setStatusBarMessage('Companion: copied', 2000);
        });
        log.info(`pairing: ${m.copy} copied to the clipboard`);
      }
    });
    created.onDidDispose(() => {
      sub.dispose();
      panel = undefined;
      values = {};
    });
  }
  if (v.kind === 'phone') {
    values = { link: v.link.pairUrl };
    panel.webview.html = phoneHtml(v.link, v.deviceName, v.scopes, qr);
  } else {
    const p = v.payload;
    values = { json: p.json, url: p.connectUrl, token: p.token, workspaceId: p.workspaceId };
    panel.webview.html = tokenHtml(p, v.deviceName, v.scopes, qr);
  }
  panel.reveal();
}

/** Says where the link points when that is this machine only; generic (the address may come from settings). */
function reachNote(address: string): string {
  const host = new URL(address).hostname;
  if (!isLoopbackHost(host)) return '';
  return `<p class="note">This address (${esc(host)}) reaches this machine only: a phone can open it only through a tunnel or forward to this machine (Tailscale serve, VS Code's port forwarding, an SSH forward) with <code>companion.server.publicUrl</code> set to its address, or when Companion listens on a LAN address with <code>companion.server.tls</code> (see docs/remote-access.md). Programs on this machine, such as a chat bridge, can use it as is.</p>`;
}

function page(nonce: string, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${esc(title)}</title>
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 16px; }
.qr { background: #fff; padding: 8px; width: 280px; height: 280px; }
.row { display: flex; gap: 8px; align-items: center; margin: 6px 0; }
.row label { width: 110px; flex: none; }
.row code { flex: 1; overflow-wrap: anywhere; font-size: 12px; }
button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 10px; cursor: pointer; }
.note { color: var(--vscode-descriptionForeground); max-width: 640px; }
.expired { color: var(--vscode-errorForeground); }
</style></head>
<body>
${body}
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
for (const b of document.querySelectorAll('button[data-copy]')) {
  b.addEventListener('click', () => vscode.postMessage({ copy: b.getAttribute('data-copy') }));
}
const left = document.getElementById('left');
if (left) {
  const until = Number(left.getAttribute('data-expires'));
  const tick = () => {
    const s = Math.max(0, Math.floor((until - Date.now()) / 1000));
    if (s === 0) {
      left.textContent = 'expired: run Companion: Pair Device again';
      left.className = 'expired';
      const qr = document.getElementById('qr');
      if (qr) qr.style.opacity = '0.2';
      return;
    }
    left.textContent = Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0') + ' left';
    setTimeout(tick, 1000 - (Date.now() % 1000));
  };
  tick();
}
</script>
</body></html>`;
}

const row = (label: string, key: string, value: string): string =>
  `<div class="row"><label>${esc(label)}</label><code id="v-${key}">${esc(value)}</code><button data-copy="${key}">Copy</button></div>`;

function days(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return `${Math.round(seconds / 60)} minutes`;
}

function phoneHtml(l: PairLink, deviceName: string, scopes: string[], qr: string): string {
  const nonce = randomBytes(16).toString('base64');
  const stays = l.deviceTtlSeconds ? ` Once paired, it stays paired for ${esc(days(l.deviceTtlSeconds))} (revoke it any time in the Devices view).` : '';
  return page(nonce, 'Pair a phone', `<h2>Pair a phone: ${esc(deviceName)}</h2>
<p>Scan this code with the phone's camera: it opens the Companion web app, which pairs by itself. Scopes: <b>${esc(scopes.join(', '))}</b>.</p>
<p>The link works <b>once</b>, until <b id="exp">${esc(new Date(l.expiresAt).toISOString())}</b> (<b id="left" data-expires="${l.expiresAt}">10:00 left</b>).${stays}</p>
<img class="qr" id="qr" alt="QR code of the pairing link" src="${qr}">
${row('Link', 'link', l.pairUrl)}
${reachNote(l.pairUrl)}
<p class="note">Anyone who opens this link first gets the device. If it was opened by someone else, revoke that device in the Devices view.</p>`);
}

function tokenHtml(p: PairingPayload, deviceName: string, scopes: string[], qr: string): string {
  const nonce = randomBytes(16).toString('base64');
  return page(nonce, 'Pair a device', `<h2>Pair a script or bridge: ${esc(deviceName)}</h2>
<p>Give these values to the program (or scan the code). Scopes: <b>${esc(scopes.join(', '))}</b>. Expires: <b id="exp">${esc(new Date(p.expiresAt).toISOString())}</b>.</p>
<img class="qr" id="qr" alt="QR code of the pairing payload" src="${qr}">
${row('Connect URL', 'url', p.connectUrl)}
${row('Workspace id', 'workspaceId', p.workspaceId)}
${row('Token', 'token', p.token)}
${row('JSON', 'json', p.json)}
${reachNote(p.url)}
<p class="note">Anyone with this token can use the workspace with these scopes until it expires. Revoke it in the Devices view; "Companion: Rotate Secret" cancels every token.</p>`);
}
