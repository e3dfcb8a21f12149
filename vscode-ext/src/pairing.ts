/*
 * The Pair Device webview: a QR code of the pairing payload, the URL,
 * workspace id and token with copy buttons. Strict CSP with a nonce; the
 * copy buttons ask the extension (vscode.env.clipboard) to copy.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { isLoopbackHost } from './settingsShape';
import { qrDataUrl, type PairingPayload } from './pairingPayload';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

let panel: vscode.WebviewPanel | undefined;
/** What the copy buttons of the open panel copy. */
let values: Record<string, string> = {};

export async function showPairingPanel(p: PairingPayload, scopes: string[], log: vscode.LogOutputChannel): Promise<void> {
  const qr = await qrDataUrl(p.json);
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
  values = { json: p.json, url: p.connectUrl, token: p.token, workspaceId: p.workspaceId };
  panel.webview.html = html(p, scopes, qr);
  panel.reveal();
}

function html(p: PairingPayload, scopes: string[], qr: string): string {
  const nonce = randomBytes(16).toString('base64');
  const host = new URL(p.url).hostname;
  const loopbackNote = isLoopbackHost(host)
    ? `<p class="note">The server listens on ${esc(host)}: only programs on this machine (such as a chat bridge) can use this URL. To pair a phone, put an HTTPS tunnel in front (Tailscale serve, VS Code port forwarding) and set <code>companion.server.publicUrl</code> to its address, or listen on a LAN address with <code>companion.server.tls</code> (see docs/remote-access.md).</p>`
    : '';
  const row = (label: string, key: string, value: string): string =>
    `<div class="row"><label>${esc(label)}</label><code id="v-${key}">${esc(value)}</code><button data-copy="${key}">Copy</button></div>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Pair Device</title>
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 16px; }
.qr { background: #fff; padding: 8px; width: 280px; height: 280px; }
.row { display: flex; gap: 8px; align-items: center; margin: 6px 0; }
.row label { width: 110px; flex: none; }
.row code { flex: 1; overflow-wrap: anywhere; font-size: 12px; }
button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 10px; cursor: pointer; }
.note { color: var(--vscode-descriptionForeground); max-width: 640px; }
</style></head>
<body>
<h2>Pair a device</h2>
<p>Scan this code with the Companion client, or copy the values below. Scopes: <b>${esc(scopes.join(', '))}</b>. Expires: <b id="exp">${esc(new Date(p.expiresAt).toISOString())}</b>.</p>
<img class="qr" id="qr" alt="QR code of the pairing payload" src="${qr}">
${row('Connect URL', 'url', p.connectUrl)}
${row('Workspace id', 'workspaceId', p.workspaceId)}
${row('Token', 'token', p.token)}
${row('JSON', 'json', p.json)}
${loopbackNote}
<p class="note">Anyone with this token can use the workspace with these scopes until it expires. "Companion: Rotate Secret" cancels every token.</p>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
for (const b of document.querySelectorAll('button[data-copy]')) {
  b.addEventListener('click', () => vscode.postMessage({ copy: b.getAttribute('data-copy') }));
}
</script>
</body></html>`;
}
