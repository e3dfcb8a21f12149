/* The status bar item: stopped / starting / running on :PORT with clients (the tooltip names them) / error. */
import * as vscode from 'vscode';
import type { ClientStatus } from './client';
import { connectedSummary } from './devices';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor() {
    this.item = vscode.window.createStatusBarItem('companion.status', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'Companion';
    this.item.command = 'companion.showStatus';
    this.stopped();
    this.item.show();
  }

  /** Untrusted workspace: nothing runs, and this says why. */
  restricted(): void {
    this.item.text = '$(shield) Companion: restricted mode';
    this.item.tooltip = 'Companion does not start in an untrusted workspace (its tasks come from workspace settings). Trust the workspace to use it.';
    this.item.backgroundColor = undefined;
  }

  stopped(): void {
    this.item.text = '$(circle-slash) Companion: stopped';
    this.item.tooltip = 'Companion server is stopped. Click for status; run "Companion: Start Server" to start it.';
    this.item.backgroundColor = undefined;
  }

  update(s: ClientStatus): void {
    switch (s.state) {
      case 'stopped':
        this.stopped();
        return;
      case 'starting':
        this.item.text = '$(sync~spin) Companion: starting';
        this.item.tooltip = s.error ?? 'Starting companion-helper';
        this.item.backgroundColor = undefined;
        return;
      case 'running': {
        const n = s.clients;
        const warnings = s.warnings ?? [];
        const icon = warnings.length ? '$(warning)' : '$(broadcast)';
        this.item.text = `${icon} Companion :${s.port ?? '?'} · ${n} client${n === 1 ? '' : 's'}`;
        const who = connectedSummary(s.clientNames);
        this.item.tooltip =
          `Companion is listening on ${s.url ?? '?'} with ${n} authenticated client${n === 1 ? '' : 's'}.` +
          `${who ? `\nConnected: ${who}` : ''}\nClick for status.` +
          warnings.map((w) => `\n\nWarning: ${w}`).join('');
        this.item.backgroundColor = warnings.length ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
        return;
      }
      case 'error':
        this.item.text = '$(error) Companion: error';
        this.item.tooltip = s.error ?? 'Companion failed; click for status, or see Companion: Show Logs.';
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        return;
    }
  }

  dispose(): void {
    this.item.dispose();
  }
}
