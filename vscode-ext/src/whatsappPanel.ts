/*
 * Link WhatsApp in the editor: the commands Link WhatsApp / Unlink WhatsApp,
 * the webview that shows WhatsApp's QR code until the phone links, and a
 * status bar item with WhatsApp's state. The bridge itself is run by
 * WhatsAppSupervisor (whatsapp.ts); this module feeds it a token it mints
 * for the device "WhatsApp" and the machine-scoped setting
 * companion.whatsapp.allow.
 *
 * Ownership: WhatsAppLink owns the supervisor (stopped with the editor), the
 * panel and the status bar item. The device's token lives only in the
 * bridge's private token file (0600, globalStorage) and in memory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { qrDataUrl } from './pairingPayload';
import type { IssueTokenParams, IssueTokenResult, Scope } from './protocol';
import { splitAllow, withAllowed, WhatsAppSupervisor, workspaceName, type WaPairing, type WaStatus } from './whatsapp';
import { revokeLink, revokePending, unlinkAndRevoke, withDevice, type IdStore } from './whatsappDevices';

/** The scopes the bridge needs: read (status, log, diff, events) and run (tasks). */
export const WHATSAPP_SCOPES: Scope[] = ['read', 'run'];
const TOKEN_TTL_S = 7 * 86400;
/** The token is minted again this often (the bridge re-reads its token file). */
const TOKEN_REFRESH_MS = 24 * 3600 * 1000;
const LINKED_KEY = 'companion.whatsapp.linked';
/** Before: the last device minted, in globalState (any workspace's); revoked with the others at Unlink. */
const LEGACY_DEVICE_KEY = 'companion.whatsapp.deviceId';
/** workspaceState: the devices minted for the bridge of the current link, and those an Unlink could not revoke yet. */
const DEVICES_KEY = 'companion.whatsapp.deviceIds';
const PENDING_REVOKE_KEY = 'companion.whatsapp.revokeIds';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const LABEL: Record<WaStatus['state'], string> = {
  stopped: 'not running',
  starting: 'starting',
  linking: 'linking (scan the QR code)',
  linked: 'linked',
  disconnected: 'disconnected',
  loggedOut: 'logged out',
  error: 'error',
};

export class WhatsAppLink implements vscode.Disposable {
  private readonly supervisor: WhatsAppSupervisor;
  private readonly item: vscode.StatusBarItem;
  private panel: vscode.WebviewPanel | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private helperUrl: string | undefined;
  private readonly subs: vscode.Disposable[] = [];
  private busy = false;
  /** The allowlist as this window last wrote it (an approval): no restart for that change. */
  private selfWrittenAllow: string | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly ctl: Controller,
  ) {
    const stateDir = path.join(context.globalStorageUri.fsPath, 'whatsapp');
    const standIn = process.env.COMPANION_WHATSAPP_STANDIN;
    this.supervisor = new WhatsAppSupervisor({
      nodePath: process.execPath,
      bridgeScript: WhatsAppLink.bridgeScript(context.extensionPath),
      stateDir,
      logger: ctl.log,
      // The e2e tests run the bundle on the in-memory stand-in; passed on only when set.
      ...(standIn ? { env: { COMPANION_WHATSAPP_STANDIN: standIn } } : {}),
    });
    this.item = vscode.window.createStatusBarItem('companion.whatsapp', vscode.StatusBarAlignment.Left, 49);
    this.item.name = 'Companion WhatsApp';
    this.item.command = 'companion.linkWhatsApp';
    this.subs.push(
      this.supervisor.onStatus.on((s) => this.onStatus(s)) as vscode.Disposable,
      this.supervisor.onPairing.on((p) => void this.askOwner(p)) as vscode.Disposable,
      this.supervisor.onAllowed.on((n) => void this.addAllowed(n)) as vscode.Disposable,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('companion.whatsapp.allow')) void this.allowChanged();
      }),
      ctl.onDidCreateClient((c) => {
        this.subs.push(c.onStatus.on((st) => this.helperStatus(st.state, st.url)) as vscode.Disposable);
      }),
    );
  }

  /** The bridge bundled in the VSIX; in a development checkout, the bridge's own build. */
  static bridgeScript(extensionPath: string): string {
    const bundled = path.join(extensionPath, 'bridge', 'companion-whatsapp.mjs');
    if (existsSync(bundled)) return bundled;
    return path.join(extensionPath, '..', 'bridges', 'whatsapp', 'dist', 'companion-whatsapp.js');
  }

  get status(): WaStatus {
    return this.supervisor.status;
  }

  /** A list of ids in this workspace's state. */
  private store(key: string): IdStore {
    const ws = this.context.workspaceState;
    return {
      get: () => {
        const v = ws.get<unknown>(key);
        return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
      },
      set: (ids) => ws.update(key, ids.length > 0 ? ids : undefined),
    };
  }

  /** The helper runs (again): start the bridge if WhatsApp was linked before; follow a new URL. */
  private helperStatus(state: string, url: string | undefined): void {
    if (state !== 'running' || !url) return;
    // Devices an Unlink could not revoke (the server was not running): now.
    if (this.store(PENDING_REVOKE_KEY).get().length > 0) {
      void revokePending(this.ctl.helper, this.store(PENDING_REVOKE_KEY), this.ctl.log).catch((e: unknown) =>
        this.ctl.log.warn(`whatsapp: revoking the unlinked devices failed: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
    const linked = this.context.globalState.get<boolean>(LINKED_KEY) === true;
    const changed = this.helperUrl !== undefined && this.helperUrl !== url;
    this.helperUrl = url;
    if (!linked || this.busy) return;
    const st = this.supervisor.status.state;
    // A new URL: the bridge (this window's, or the one attached to) must reach the server there.
    if (st === 'stopped' || changed) {
      this.ctl.log.info(changed ? 'whatsapp: the server moved; linking again' : 'whatsapp: starting the bridge (linked before)');
      void this.link({ show: false });
    }
  }

  /** A new WhatsApp sender's pairing code: the owner approves or denies it here. */
  private async askOwner(p: WaPairing): Promise<void> {
    const who = p.name ? `${p.name} (${p.from})` : p.from;
    const mins = Math.max(1, Math.round((p.expiresAt - Date.now()) / 60000));
    this.ctl.log.info(`whatsapp: ${p.from} asks for access (code ${p.code}, ${mins} min)`);
    const choice = await vscode.window.showInformationMessage(
      `WhatsApp: ${who} asks to use Companion (code ${p.code}, valid ${mins} min). Approve, and they may send commands like the numbers in companion.whatsapp.allow.`,
      'Approve',
      'Deny',
    );
    if (!choice) return;
    const r = await this.supervisor.decidePairing(p.code, choice === 'Approve');
    if (r.ok) this.ctl.log.info(`whatsapp: ${choice === 'Approve' ? 'approved' : 'denied'} ${r.number ?? p.from}`);
    else void vscode.window.showWarningMessage(`Companion: the code ${p.code} could not be ${choice === 'Approve' ? 'approved' : 'denied'}: ${r.error ?? 'unknown error'}`);
  }

  /** An approved sender (from here or the owner's chat) joins companion.whatsapp.allow. */
  private async addAllowed(entry: string): Promise<void> {
    if (splitAllow([entry]).numbers.length !== 1) {
      // A LID without a number: the bridge allows it until it restarts.
      this.ctl.log.info(`whatsapp: ${entry} was approved; it has no phone number, so it is not added to companion.whatsapp.allow`);
      return;
    }
    const cfg = vscode.workspace.getConfiguration('companion');
    const next = withAllowed(cfg.inspect<unknown>('whatsapp.allow')?.globalValue, entry);
    this.selfWrittenAllow = JSON.stringify(next);
    await cfg.update('whatsapp.allow', next, vscode.ConfigurationTarget.Global);
    this.ctl.log.info(`whatsapp: ${entry} added to companion.whatsapp.allow`);
  }

  private async allowChanged(): Promise<void> {
    const now = JSON.stringify(vscode.workspace.getConfiguration('companion').inspect<unknown>('whatsapp.allow')?.globalValue ?? []);
    if (this.selfWrittenAllow !== undefined && now === this.selfWrittenAllow) {
      // The bridge allowed that sender already: no restart.
      this.selfWrittenAllow = undefined;
      return;
    }
    this.selfWrittenAllow = undefined;
    if (this.supervisor.status.role !== 'owner' || this.busy) return;
    this.ctl.log.info('whatsapp: companion.whatsapp.allow changed; restarting the bridge');
    await this.link({ show: false });
  }

  private allow(): { numbers: string[]; groups: string[] } | undefined {
    const raw = vscode.workspace.getConfiguration('companion').inspect<unknown>('whatsapp.allow');
    // Machine scope: only the user's own (global) value counts, never a workspace's.
    const { numbers, groups, bad } = splitAllow(raw?.globalValue ?? raw?.defaultValue ?? []);
    if (bad.length > 0) {
      void vscode.window.showErrorMessage(
        `Companion: companion.whatsapp.allow: not a phone number (+15551234567) or chat id (…@g.us): ${bad.slice(0, 3).join(', ')}`,
        'Open Settings',
      ).then((c) => {
        if (c) void vscode.commands.executeCommand('workbench.action.openSettings', 'companion.whatsapp.allow');
      });
      return undefined;
    }
    return { numbers, groups };
  }

  private async mint(): Promise<IssueTokenResult | undefined> {
    const client = this.ctl.helper;
    if (!client) return undefined;
    // deviceName names the device for helpers with a device registry; older ones ignore it.
    const params: IssueTokenParams & { deviceName: string } = {
      userId: 'whatsapp',
      scopes: WHATSAPP_SCOPES,
      ttlSeconds: TOKEN_TTL_S,
      deviceName: 'WhatsApp',
    };
    const r = await client.issueToken(params);
    const deviceId = (r as IssueTokenResult & { deviceId?: unknown }).deviceId;
    // Every mint is a new device: all of them are revoked at Unlink.
    if (typeof deviceId === 'string') await this.store(DEVICES_KEY).set(withDevice(this.store(DEVICES_KEY).get(), deviceId));
    this.ctl.log.info(`whatsapp: token minted for the device "WhatsApp" (${WHATSAPP_SCOPES.join(' ')}), expires ${new Date(r.expiresAt).toISOString()}`);
    return r;
  }

  /** Link WhatsApp: mint, run the bridge, show the QR code until the phone links. */
  async link(opts: { show: boolean; relink?: boolean }): Promise<void> {
    if (!this.ctl.trusted) {
      void vscode.window.showWarningMessage('Companion does not run in an untrusted workspace (restricted mode).');
      return;
    }
    const allow = this.allow();
    if (!allow) return;
    if (this.busy) return;
    this.busy = true;
    try {
      if (this.ctl.status?.state !== 'running') {
        const started = await this.ctl.start();
        if (!started) return;
      }
      const r = await this.mint();
      if (!r) return;
      this.helperUrl = r.url;
      if (opts.show) await this.showPanel();
      await this.supervisor.stop();
      const folder = vscode.workspace.workspaceFolders?.[0];
      const role = await this.supervisor.start({
        allow: allow.numbers,
        groups: allow.groups,
        workspace: { name: workspaceName(folder?.name ?? 'workspace'), url: r.url, workspaceId: r.workspaceId, token: r.token },
        relink: opts.relink ?? this.context.globalState.get<boolean>(LINKED_KEY) !== true,
      });
      await this.context.globalState.update(LINKED_KEY, true);
      if (role === 'attached') {
        const as = this.supervisor.status.reachableAs;
        void vscode.window.showInformationMessage(
          as
            ? `Companion: WhatsApp is already linked by another VS Code window on this machine; this window's workspace is added to it, reachable from WhatsApp as @${as} (e.g. "@${as} status").`
            : `Companion: WhatsApp is already linked by another VS Code window on this machine, but it did not add this workspace${this.supervisor.status.detail ? ` (${this.supervisor.status.detail})` : ''}. See the log.`,
        );
      }
      this.scheduleRefresh();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.ctl.log.error(`whatsapp: link failed: ${message}`);
      void vscode.window.showErrorMessage(`Companion: could not link WhatsApp: ${message}`, 'Show Logs').then((c) => {
        if (c) this.ctl.log.show();
      });
    } finally {
      this.busy = false;
    }
  }

  /** A fresh token before the current one expires; the bridge picks the file up by itself. */
  private scheduleRefresh(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => {
      // Owner: the bridge re-reads the token file; attached: the workspace is added again with it.
      if (this.supervisor.status.state === 'stopped') return;
      this.mint()
        .then((r) => {
          if (r) this.supervisor.refreshToken(r.token);
        })
        .catch((e: unknown) => this.ctl.log.warn(`whatsapp: token refresh failed: ${e instanceof Error ? e.message : String(e)}`));
    }, TOKEN_REFRESH_MS);
    this.refreshTimer.unref();
  }

  async unlink(): Promise<void> {
    const choice = await vscode.window.showWarningMessage(
      'Unlink WhatsApp? The bridge logs this device out of your WhatsApp account and its session is deleted; linking again needs a new QR scan.',
      { modal: true },
      'Unlink',
    );
    if (choice !== 'Unlink') return;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
    // The id the extension kept before (globalState, any workspace's): revoked here if it is this one's.
    const legacy = this.context.globalState.get<unknown>(LEGACY_DEVICE_KEY);
    if (typeof legacy === 'string') {
      await this.store(DEVICES_KEY).set(withDevice(this.store(DEVICES_KEY).get(), legacy));
      await this.context.globalState.update(LEGACY_DEVICE_KEY, undefined);
    }
    const r = await unlinkAndRevoke({
      supervisor: this.supervisor,
      helper: this.ctl.helper,
      current: this.store(DEVICES_KEY),
      pending: this.store(PENDING_REVOKE_KEY),
      log: this.ctl.log,
    });
    await this.context.globalState.update(LINKED_KEY, false);
    const revoked = r.left.length > 0
      ? ' The bridge\'s token is revoked when the Companion server runs again.'
      : r.revoked.length > 0 ? ' Its token is revoked.' : '';
    void vscode.window.showInformationMessage(
      r.confirmed
        ? `Companion: WhatsApp unlinked.${revoked}`
        : `Companion: WhatsApp's session is deleted.${revoked} If the phone still lists the device under Linked devices, remove it there.`,
    );
  }

  /**
   * The window that ran the bridge unlinked WhatsApp: the devices this
   * window minted for it (its workspace's helper) are revoked too, or kept
   * for when the helper runs again.
   */
  private async unlinkedElsewhere(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
    try {
      const r = await revokeLink({
        helper: this.ctl.helper,
        current: this.store(DEVICES_KEY),
        pending: this.store(PENDING_REVOKE_KEY),
        log: this.ctl.log,
      });
      this.ctl.log.info(`whatsapp: unlinked by another window: ${r.revoked.length} device(s) of this workspace revoked${r.left.length > 0 ? `, ${r.left.length} when the server runs again` : ''}`);
    } catch (e) {
      this.ctl.log.warn(`whatsapp: revoking this workspace's devices failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private onStatus(s: WaStatus): void {
    if (s.state === 'stopped' && s.unlinkedElsewhere) void this.unlinkedElsewhere();
    if (s.state === 'stopped') {
      this.item.hide();
    } else {
      const icon = s.state === 'linked' ? '$(comment-discussion)' : s.state === 'linking' || s.state === 'starting' ? '$(sync~spin)' : '$(warning)';
      const attached = s.role === 'attached' && s.reachableAs ? ` · @${s.reachableAs}` : '';
      this.item.text = `${icon} WhatsApp: ${s.state === 'linking' ? 'linking' : LABEL[s.state]}${attached}`;
      const who = s.role === 'attached' ? ' — run by another VS Code window, this workspace attached to it' : '';
      const reach = s.reachableAs ? `. This workspace: @${s.reachableAs}` : '';
      this.item.tooltip = `WhatsApp bridge: ${LABEL[s.state]}${s.detail ? ` (${s.detail})` : ''}${who}${reach}. Click to show.`;
      this.item.backgroundColor = s.state === 'error' || s.state === 'loggedOut' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
      this.item.show();
    }
    if (s.state === 'loggedOut') {
      void vscode.window.showWarningMessage('Companion: WhatsApp logged this device out.', 'Link Again').then((c) => {
        if (c) void this.link({ show: true, relink: true });
      });
    }
    void this.renderPanel();
  }

  async showPanel(): Promise<void> {
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel('companion.whatsapp', 'Companion: Link WhatsApp', vscode.ViewColumn.Active, {
        enableScripts: false,
        localResourceRoots: [],
      });
      this.panel.onDidDispose(() => {
        this.panel = undefined;
      });
    }
    await this.renderPanel();
    this.panel.reveal();
  }

  private async renderPanel(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const s = this.supervisor.status;
    const qr = s.state === 'linking' && s.qr ? await qrDataUrl(s.qr) : undefined;
    if (this.panel !== panel) return;
    panel.webview.html = html(s, qr);
  }

  dispose(): void {
    void this.shutdown();
  }

  /** Stops the bridge (the device stays linked); called at deactivate. */
  async shutdown(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const d of this.subs) d.dispose();
    this.subs.length = 0;
    this.panel?.dispose();
    this.item.dispose();
    await this.supervisor.dispose();
  }
}

function html(s: WaStatus, qr: string | undefined): string {
  const nonce = randomBytes(16).toString('base64');
  let body: string;
  if (s.state === 'linking' && qr) {
    body = `<p>On your phone: WhatsApp &gt; Settings &gt; <b>Linked devices</b> &gt; <b>Link a device</b>, and scan this code.</p>
<img class="qr" id="qr" alt="WhatsApp QR code" src="${qr}">
<p class="note">WhatsApp shows a new code every 20 s or so while it is not scanned; this one follows it.</p>`;
  } else if (s.state === 'linked') {
    const attached = s.role === 'attached'
      ? s.reachableAs
        ? `<p id="attached">Another VS Code window runs the bridge; this window's workspace is added to it: send <code>@${esc(s.reachableAs)} status</code>.</p>`
        : `<p id="attached">Another VS Code window runs the bridge; this window's workspace is not added to it${s.detail ? ` (${esc(s.detail)})` : ''}.</p>`
      : '';
    body = `<p class="ok" id="linked">Linked ✓</p>
<p>Send <code>status</code> in your own "Message yourself" chat; numbers in <code>companion.whatsapp.allow</code> may command too.</p>
${attached}`;
  } else {
    body = `<p id="state">${esc(LABEL[s.state])}${s.detail ? `: ${esc(s.detail)}` : ''}</p>`;
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Link WhatsApp</title>
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 16px; }
.qr { background: #fff; padding: 8px; width: 280px; height: 280px; }
.ok { font-size: 1.4em; }
.note { color: var(--vscode-descriptionForeground); max-width: 640px; }
</style></head>
<body data-state="${esc(s.state)}">
<h2>Link WhatsApp</h2>
${body}
<p class="note">The bridge runs on this machine with the editor and keeps the session in the extension's storage. Companion: Unlink WhatsApp logs the device out.</p>
</body></html>`;
}

export function registerWhatsApp(context: vscode.ExtensionContext, ctl: Controller): WhatsAppLink {
  const link = new WhatsAppLink(context, ctl);
  context.subscriptions.push(
    link,
    vscode.commands.registerCommand('companion.linkWhatsApp', async () => {
      const st = link.status.state;
      if (st === 'linked' || st === 'linking' || st === 'starting') await link.showPanel();
      else await link.link({ show: true });
      return link.status.state;
    }),
    vscode.commands.registerCommand('companion.unlinkWhatsApp', () => link.unlink()),
    // For tests and scripts: the state without the QR payload.
    vscode.commands.registerCommand('companion.whatsappStatus', () => ({
      state: link.status.state,
      role: link.status.role,
      reachableAs: link.status.reachableAs,
    })),
  );
  return link;
}
