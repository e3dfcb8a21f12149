/*
 * The `companion` configuration section and the secret. The stored secret is
 * 32 random bytes (hex) kept in SecretStorage, made on first run; it never
 * leaves the extension: the helper gets a key derived from it for its
 * workspace (workspaceKey.ts), inside initialize / didChangeConfiguration
 * params only. Settings that decide who gets in or how much come from the
 * user's own settings only (settingsShape.ts, MACHINE_SCOPED_KEYS).
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { HelperSettings } from './protocol';
import {
  EXTENSION_ONLY_KEYS, HELPER_SETTING_DEFAULTS, readSettings, toHelperSettings, type ReadSettings,
} from './settingsShape';

export const SECTION = 'companion';
const SECRET_KEY = 'companion.auth.secret';

export function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

export class Settings implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the companion settings or the secret change. */
  readonly onDidChange = this.changed.event;
  private warnedKey = '';
  private warnedIgnored = '';

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      this.changed,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(SECTION)) this.changed.fire();
      }),
      secrets.onDidChange((e) => {
        if (e.key === SECRET_KEY) this.changed.fire();
      }),
    );
  }

  /** The secret, made and stored on first use. */
  async secret(): Promise<string> {
    const existing = await this.secrets.get(SECRET_KEY);
    if (existing) return existing;
    const fresh = randomBytes(32).toString('hex');
    await this.secrets.store(SECRET_KEY, fresh);
    return fresh;
  }

  /** A new secret: every token issued so far stops working. */
  async rotateSecret(): Promise<void> {
    await this.secrets.store(SECRET_KEY, randomBytes(32).toString('hex'));
  }

  /**
   * The section as read for Companion: machine-scoped keys from the user's
   * settings only. Names (never values) of the ones a workspace tried to set
   * are logged once per change.
   */
  private read(): ReadSettings {
    const c = config();
    const r = readSettings(c, [...Object.keys(HELPER_SETTING_DEFAULTS), ...EXTENSION_ONLY_KEYS]);
    const ignored = r.ignoredWorkspaceKeys.map((k) => `companion.${k}`).join(', ');
    if (ignored !== this.warnedIgnored) {
      this.warnedIgnored = ignored;
      if (ignored) {
        this.log.warn(
          `workspace settings ignored: ${ignored}. These decide who can connect and how much; ` +
            "only your user settings (in a remote window: the remote machine's settings) can set them.",
        );
      }
    }
    return r;
  }

  /** The settings object for the helper of workspaceId, with that workspace's key as auth.secret. */
  async forHelper(workspaceId: string): Promise<HelperSettings> {
    const r = this.read();
    return toHelperSettings(r.get, { storedSecret: await this.secret(), workspaceId });
  }

  get autoStart(): boolean {
    return config().get<boolean>('autoStart', true);
  }

  get helperPath(): string {
    const v = this.read().get('helper.path');
    return typeof v === 'string' ? v : '';
  }

  get notifyOnConnect(): boolean {
    return config().get<boolean>('notifyOnConnect', false);
  }

  get host(): string {
    const v = this.read().get('server.host');
    return typeof v === 'string' ? v : '127.0.0.1';
  }

  /**
   * Shows the helper's warnings about how the server is reached (listening
   * beyond loopback without TLS, a plain-http public URL), each text once
   * until it goes away.
   */
  warnAbout(warnings: readonly string[]): void {
    const key = warnings.join('\n');
    if (key === this.warnedKey) return;
    this.warnedKey = key;
    for (const w of warnings) {
      void vscode.window
        .showWarningMessage(`Companion: ${w}`, 'Open Settings')
        .then((choice) => {
          if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'companion.server');
        });
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
