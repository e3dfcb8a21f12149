/*
 * Lifecycle: finds the helper, owns the HelperClient, follows settings,
 * workspace folders, saves and Workspace Trust, and turns failures into
 * messages with actions. Nothing starts in an untrusted workspace.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { HelperClient, isPortTaken, type ClientStatus } from './client';
import { discoverHelper, HelperNotFoundError } from './discovery';
import { editorHandlers } from './editor';
import { LmService } from './lm';
import { vscodeLmBackend } from './lmVscode';
import type { HelperSettings, InitializeParams, StartResult, WorkspaceFolderParam } from './protocol';
import { Settings } from './settings';
import { workspaceIdFor } from './settingsShape';
import type { StatusBar } from './statusBar';

function folderParam(f: vscode.WorkspaceFolder): WorkspaceFolderParam {
  return { uri: f.uri.toString(), name: f.name };
}

export class Controller implements vscode.Disposable {
  private client: HelperClient | undefined;
  private helperPath: string | undefined;
  /** The workspace id the helper was last initialized with: its key is derived from it. */
  private helperWorkspaceId: string | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private clientSubs: { dispose(): void }[] = [];
  private readonly clientCreated = new vscode.EventEmitter<HelperClient>();
  /** editor/lm (vscode-lm agents): VS Code's language models, asked for the helper. */
  private readonly lm: LmService;
  /** A new HelperClient (first start, or another helper binary): views follow it. */
  readonly onDidCreateClient = this.clientCreated.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
    readonly settings: Settings,
    private readonly statusBar: StatusBar,
  ) {
    this.lm = new LmService({ backend: vscodeLmBackend(), log: (line) => this.log.info(line) });
    this.disposables.push(
      this.clientCreated,
      this.lm,
      settings.onDidChange(() => void this.settingsChanged()),
      vscode.workspace.onDidChangeWorkspaceFolders((e) => {
        void this.client?.didChangeWorkspaceFolders(e.added.map(folderParam), e.removed.map(folderParam));
        void this.followWorkspaceId();
      }),
      vscode.workspace.onDidSaveTextDocument((doc) => {
        if (doc.uri.scheme === 'file') void this.client?.didSaveTextDocument(doc.uri.toString());
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.log.info('workspace trusted');
        this.statusBar.stopped();
        if (this.settings.autoStart) void this.start();
      }),
    );
  }

  get trusted(): boolean {
    return vscode.workspace.isTrusted;
  }

  get status(): ClientStatus | undefined {
    return this.client?.status;
  }

  get helper(): HelperClient | undefined {
    return this.client;
  }

  /** At activation: start when autoStart is on and the workspace is trusted. */
  activate(): void {
    if (!this.trusted) {
      this.log.info('untrusted workspace: Companion stays off (restricted mode)');
      this.statusBar.restricted();
      return;
    }
    if (this.settings.autoStart) void this.start();
  }

  workspaceId(): string {
    const first = vscode.workspace.workspaceFolders?.[0];
    return workspaceIdFor(first?.uri.fsPath, `no-folder:${vscode.env.machineId}`);
  }

  /**
   * Where the extension keeps its own files (storage, logs): the helper must
   * never serve anything under them, even when a workspace folder holds them.
   */
  private privatePaths(): string[] {
    const uris = [this.context.globalStorageUri, this.context.storageUri, this.context.logUri];
    return uris.filter((u): u is vscode.Uri => u?.scheme === 'file').map((u) => u.fsPath);
  }

  private async initializeParams(): Promise<InitializeParams> {
    const ext = this.context.extension.packageJSON as { version: string };
    // The id and the key derived from it go together, at every (re)start.
    const workspaceId = this.workspaceId();
    const settings = await this.settings.forHelper(workspaceId);
    const privatePaths = this.privatePaths();
    this.helperWorkspaceId = workspaceId;
    this.log.info(`workspace ${workspaceId}; files the helper must not serve: ${privatePaths.join(', ')}`);
    return {
      processId: process.pid,
      clientInfo: { name: vscode.env.appName, version: `${vscode.version} companion ${ext.version}` },
      workspaceId,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map(folderParam),
      settings,
      privatePaths,
    };
  }

  /** Settings for the running helper, with the key of the workspace id it has. */
  helperSettings(): Promise<HelperSettings> {
    return this.settings.forHelper(this.helperWorkspaceId ?? this.workspaceId());
  }

  /**
   * The helper learns its workspace id at initialize only. When the folders
   * change it (VS Code usually restarts extensions then), a fresh helper
   * gets the new id and the key derived from it.
   */
  private async followWorkspaceId(): Promise<void> {
    const client = this.client;
    if (!client?.status.helperRunning || this.helperWorkspaceId === this.workspaceId()) return;
    this.log.info('the workspace id changed with the folders: restarting the helper with the new id and key');
    if (client.status.state === 'running') await this.restart();
    else await client.stop();
  }

  /** The client for the helper in force; finds (and checks) the helper. */
  async ensureClient(): Promise<HelperClient> {
    const ext = this.context.extension.packageJSON as { version: string };
    const found = await discoverHelper({
      settingPath: this.settings.helperPath,
      extensionPath: this.context.extensionPath,
      expectedVersion: ext.version,
    });
    if (this.client && this.helperPath === found.path) return this.client;
    if (this.client) {
      this.log.info(`helper changed to ${found.path}: restarting it`);
      await this.disposeClient();
    }
    this.log.info(`using companion-helper ${found.version} at ${found.path} (${found.source})`);
    this.helperPath = found.path;
    const folder = vscode.workspace.workspaceFolders?.[0];
    const client = new HelperClient({
      helperPath: found.path,
      logger: this.log,
      initializeParams: () => this.initializeParams(),
      editor: editorHandlers(this.log),
      lm: this.lm,
      cwd: folder?.uri.scheme === 'file' ? folder.uri.fsPath : path.dirname(found.path),
    });
    this.clientSubs = [
      client.onStatus.on((s) => {
        this.statusBar.update(s);
        if (s.state === 'running') this.settings.warnAbout(s.warnings ?? []);
      }),
      client.onClientConnected.on((p) => {
        const who = p.deviceName || p.userId;
        this.log.info(`client connected: ${who}${p.deviceId ? ` (device ${p.deviceId})` : ''} from ${p.remoteAddress} (session ${p.sessionId})`);
        if (this.settings.notifyOnConnect) {
          void vscode.window.showInformationMessage(`Companion: ${who} connected from ${p.remoteAddress}`);
        }
      }),
      client.onClientDisconnected.on((p) => {
        const who = p.deviceName || p.userId;
        this.log.info(`client disconnected: ${who} (${p.reason ?? 'closed'})`);
        if (this.settings.notifyOnConnect) {
          void vscode.window.showInformationMessage(`Companion: ${who} disconnected`);
        }
      }),
      client.onLogMessage.on((p) => {
        // A live settings change the helper refused keeps the old settings: say so.
        if (p.type === 1 && p.message.startsWith('settings refused')) {
          void vscode.window.showErrorMessage(`Companion: ${p.message}`, 'Open Settings').then((c) => {
            if (c) void vscode.commands.executeCommand('companion.openSettings');
          });
        }
      }),
      client.onCommandExecuted.on((p) => {
        this.log.info(`${p.userId} ran ${p.name}: ${p.success ? 'ok' : 'failed'} in ${p.durationMs} ms`);
      }),
      client.onGaveUp.on(({ crashes }) => {
        void vscode.window
          .showErrorMessage(
            `Companion: companion-helper crashed ${crashes} times in 3 minutes and is no longer restarted.`,
            'Show Logs',
            'Restart',
          )
          .then((choice) => {
            if (choice === 'Show Logs') this.log.show();
            if (choice === 'Restart') void this.restart();
          });
      }),
    ];
    this.client = client;
    this.clientCreated.fire(client);
    return client;
  }

  /** Start Server (also autoStart). Errors become messages; returns undefined then. */
  async start(): Promise<StartResult | undefined> {
    if (!this.trusted) {
      this.statusBar.restricted();
      void vscode.window.showWarningMessage(
        'Companion does not run in an untrusted workspace (restricted mode). Trust the workspace first.',
      );
      return undefined;
    }
    try {
      const client = await this.ensureClient();
      const r = await client.startServer();
      this.log.info(`server listening on ${r.url}`);
      return r;
    } catch (e) {
      this.reportStartError(e);
      return undefined;
    }
  }

  async stop(): Promise<void> {
    await this.client?.stopServer();
    this.log.info('server stopped');
  }

  async restart(): Promise<StartResult | undefined> {
    if (!this.trusted) return this.start();
    try {
      const client = await this.ensureClient();
      const r = await client.restart();
      this.log.info(`restarted; server listening on ${r.url}`);
      return r;
    } catch (e) {
      this.reportStartError(e);
      return undefined;
    }
  }

  reportStartError(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.log.error(`start failed: ${message}`);
    if (e instanceof HelperNotFoundError) {
      this.statusBar.update({ state: 'error', helperRunning: false, clients: 0, clientNames: [], gaveUp: false, error: message });
      void vscode.window.showErrorMessage(`Companion: ${message}`, 'Set Helper Path', 'Show Logs').then((c) => {
        if (c === 'Set Helper Path') void vscode.commands.executeCommand('workbench.action.openSettings', 'companion.helper.path');
        if (c === 'Show Logs') this.log.show();
      });
      return;
    }
    if (isPortTaken(e)) {
      const port = e.data?.port ?? vscode.workspace.getConfiguration('companion').get<number>('server.port');
      void vscode.window
        .showErrorMessage(
          `Companion: port ${String(port)} is already in use by another program. Choose another port (0 picks a free one).`,
          'Change Port',
        )
        .then((c) => {
          if (c === 'Change Port') void vscode.commands.executeCommand('workbench.action.openSettings', 'companion.server.port');
        });
      return;
    }
    void vscode.window.showErrorMessage(`Companion: ${message}`, 'Show Logs').then((c) => {
      if (c === 'Show Logs') this.log.show();
    });
  }

  private async settingsChanged(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const st = client.status;
    if (this.trusted && !st.helperRunning && st.state === 'error' && !st.gaveUp) {
      // The last start failed (settings refused at initialize, port taken...): try again.
      this.log.info('settings changed after a failed start: starting again');
      await this.start();
      return;
    }
    if (this.settings.helperPath && this.settings.helperPath !== this.helperPath) {
      this.log.info('companion.helper.path changed: run "Companion: Restart Server" to use it');
    }
    try {
      await client.sendConfiguration(await this.helperSettings());
      this.log.info('settings sent to the helper');
      if (this.trusted && st.helperRunning && st.state === 'error' && !st.gaveUp) {
        // server/start failed before (port taken): try the new settings.
        await this.start();
      }
    } catch (e) {
      if (isPortTaken(e)) this.reportStartError(e);
      else this.log.error(`could not apply the settings: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async disposeClient(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    for (const s of this.clientSubs) s.dispose();
    this.clientSubs = [];
    await c?.dispose();
  }

  /** deactivate: shutdown, exit, kill after 2 s. */
  async shutdown(): Promise<void> {
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    await this.disposeClient();
  }

  dispose(): void {
    void this.shutdown();
  }
}
