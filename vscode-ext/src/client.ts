/*
 * The control plane and its supervisor: spawns `companion-helper --stdio`,
 * talks JSON-RPC to it with vscode-jsonrpc over its stdio, writes its stderr
 * to the log, and restarts it when it dies unexpectedly (backoff 1 s doubling
 * to 30 s; after 5 crashes in 3 minutes it gives up). No vscode import: the
 * editor is reached through the small interfaces below, so this module runs
 * (and is tested) in plain Node against the real helper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  PORT_TAKEN,
  type Approval,
  type ApprovalDecideResult,
  type ApprovalOption,
  type ApprovalResolvedParams,
  type ApprovalsListResult,
  type ClientEventParams,
  type CommandExecutedParams,
  type DevicesListResult,
  type EditorDiagnosticsParams,
  type EditorExecuteCommandParams,
  type EditorHandlers,
  type EditorOpenParams,
  type EditorShowMessageParams,
  type HelperSettings,
  type InitializeParams,
  type InitializeResult,
  type IssueTokenParams,
  type IssueTokenResult,
  type LogMessageParams,
  type StartResult,
  type StatusResult,
  type WorkspaceFolderParam,
} from './protocol';
import { attachLm, type LmService } from './lm';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export type ClientState = 'stopped' | 'starting' | 'running' | 'error';

export interface ClientStatus {
  /** stopped: no server; starting: spawning/restarting; running: server listening; error. */
  state: ClientState;
  helperRunning: boolean;
  port?: number;
  url?: string;
  /** The helper's warnings about how the server is reached (server/start, server/status). */
  warnings?: string[];
  /** Authenticated clients, from companion/clientConnected/Disconnected. */
  clients: number;
  /** Who they are: each one's device name, else its user id (one entry per session). */
  clientNames: string[];
  error?: string;
  /** Set when the supervisor stopped retrying after too many crashes. */
  gaveUp: boolean;
}

export interface HelperClientOptions {
  helperPath: string;
  /** Called before every spawn: the settings and secret may have changed. */
  initializeParams(): Promise<InitializeParams>;
  logger: Logger;
  editor?: EditorHandlers;
  /** Answers editor/lm and editor/lmCancel (vscode-lm agents). */
  lm?: LmService;
  cwd?: string;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  maxCrashes?: number;
  crashWindowMs?: number;
  /** shutdown + exit, then SIGKILL after this long. */
  killTimeoutMs?: number;
  requestTimeoutMs?: number;
}

type Listener<T> = (value: T) => void;

export class Emitter<T> {
  private listeners = new Set<Listener<T>>();
  on(l: Listener<T>): { dispose(): void } {
    this.listeners.add(l);
    return { dispose: () => this.listeners.delete(l) };
  }
  fire(v: T): void {
    for (const l of [...this.listeners]) {
      try {
        l(v);
      } catch {
        /* a listener's failure must not stop the others */
      }
    }
  }
  clear(): void {
    this.listeners.clear();
  }
}

export function isPortTaken(e: unknown): e is ResponseError<{ port?: number }> {
  return e instanceof ResponseError && e.code === PORT_TAKEN;
}

/** A helper stderr line "2026-11-21T22:50:00.123Z info: text" -> level and text. */
export function parseStderrLine(line: string): { level: keyof Logger; text: string } {
  const m = /^\S+Z (error|warn|info|debug): (.*)$/.exec(line);
  if (!m) return { level: 'info', text: line };
  return { level: m[1] as keyof Logger, text: m[2] as string };
}

/** What decides how the server is reached: a change is followed by server/start (a re-bind, new URL and warnings). */
function listenKeyOf(settings: HelperSettings): string {
  const server = (settings.server ?? {}) as {
    host?: string; port?: number; publicUrl?: string; tls?: { certFile?: string; keyFile?: string };
  };
  return JSON.stringify([server.host ?? '127.0.0.1', server.port ?? 3001, server.publicUrl ?? '',
    server.tls?.certFile ?? '', server.tls?.keyFile ?? '']);
}

interface Running {
  gen: number;
  child: ChildProcess;
  conn: MessageConnection;
  exited: Promise<void>;
  expectedExit: boolean;
  initialized: boolean;
  exitHandled: boolean;
  resolveExit: () => void;
  /** editor/lm on this connection: its turns end with the process. */
  lm?: { dispose(): void };
}

export class HelperClient {
  private readonly opts: Required<Omit<HelperClientOptions, 'editor' | 'lm' | 'cwd'>> &
    Pick<HelperClientOptions, 'editor' | 'lm' | 'cwd'>;
  private run: Running | undefined;
  private gen = 0;
  private wantServer = false;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  /** Authenticated sessions: id -> device name (else user id). */
  private sessions = new Map<string, string>();
  private disposed = false;
  private current: ClientStatus = { state: 'stopped', helperRunning: false, clients: 0, clientNames: [], gaveUp: false };
  private startingHelper: Promise<Running> | undefined;
  /** host:port of the settings the helper has, to notice a re-bind. */
  private listenKey = '';

  readonly onStatus = new Emitter<ClientStatus>();
  readonly onClientConnected = new Emitter<ClientEventParams>();
  readonly onClientDisconnected = new Emitter<ClientEventParams>();
  readonly onCommandExecuted = new Emitter<CommandExecutedParams>();
  readonly onLogMessage = new Emitter<LogMessageParams>();
  /** Fired after each unexpected exit, with the delay before the restart (undefined: gave up). */
  readonly onCrash = new Emitter<{ code: number | null; signal: string | null; restartInMs?: number }>();
  readonly onGaveUp = new Emitter<{ crashes: number }>();
  /** companion/approvalRequested: an approval exists and waits for an answer. */
  readonly onApprovalRequested = new Emitter<Approval>();
  /** companion/approvalResolved: it ended, whoever decided. */
  readonly onApprovalResolved = new Emitter<ApprovalResolvedParams>();
  /** companion/devicesChanged: a device paired, was revoked or renamed, connected or left. */
  readonly onDevicesChanged = new Emitter<void>();
  /** A helper process has been initialized (first start and every restart). */
  readonly onReady = new Emitter<void>();
  /** The helper process ended (expected or not): what it held (pending approvals) is gone. */
  readonly onHelperExited = new Emitter<void>();

  constructor(options: HelperClientOptions) {
    this.opts = {
      backoffInitialMs: 1000,
      backoffMaxMs: 30000,
      maxCrashes: 5,
      crashWindowMs: 180000,
      killTimeoutMs: 2000,
      requestTimeoutMs: 15000,
      ...options,
    };
  }

  get status(): ClientStatus {
    return { ...this.current, clientNames: [...this.current.clientNames] };
  }

  /** The helper's process id while it runs. */
  get pid(): number | undefined {
    return this.run?.child.pid;
  }

  setHelperPath(p: string): void {
    this.opts.helperPath = p;
  }

  private setStatus(patch: Partial<ClientStatus>): void {
    this.current = { ...this.current, ...patch, clients: this.sessions.size, clientNames: [...this.sessions.values()] };
    this.onStatus.fire(this.status);
  }

  /** Delay before the next restart, given the crashes in the window. */
  backoffDelay(crashesInWindow: number): number {
    const n = Math.max(1, crashesInWindow);
    return Math.min(this.opts.backoffInitialMs * 2 ** (n - 1), this.opts.backoffMaxMs);
  }

  /* ---------- process ---------- */

  private ensureHelper(): Promise<Running> {
    if (this.run?.initialized) return Promise.resolve(this.run);
    if (!this.startingHelper) {
      this.startingHelper = this.spawnHelper().finally(() => {
        this.startingHelper = undefined;
      });
    }
    return this.startingHelper;
  }

  private async spawnHelper(): Promise<Running> {
    if (this.disposed) throw new Error('the Companion client is disposed');
    const gen = ++this.gen;
    const log = this.opts.logger;
    this.setStatus({ state: 'starting', error: undefined });
    const child = spawn(this.opts.helperPath, ['--stdio'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: this.opts.cwd,
      env: process.env,
    });
    let resolveExit: () => void = () => undefined;
    const exited = new Promise<void>((r) => (resolveExit = r));
    const conn = createMessageConnection(
      new StreamMessageReader(child.stdout),
      new StreamMessageWriter(child.stdin),
    );
    const run: Running = {
      gen,
      child,
      conn,
      exited,
      expectedExit: false,
      initialized: false,
      exitHandled: false,
      resolveExit,
    };
    this.run = run;

    let spawnError: Error | undefined;
    child.on('error', (e) => {
      spawnError = e;
      log.error(`companion-helper: ${e.message}`);
      // A failed spawn is an error to report, not a crash to retry; and
      // 'exit' does not follow it.
      if (child.pid === undefined) {
        run.expectedExit = true;
        this.onExit(run, null, null);
      }
    });
    child.on('exit', (code, signal) => this.onExit(run, code, signal));
    child.stdin.on('error', () => {
      /* EPIPE when the helper is gone: the exit handler reports it */
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      const { level, text } = parseStderrLine(line);
      log[level](`[helper] ${text}`);
    });

    conn.onNotification('window/logMessage', (p: LogMessageParams) => this.onLogMessage.fire(p));
    conn.onNotification('companion/clientConnected', (p: ClientEventParams) => {
      this.sessions.set(p.sessionId, p.deviceName || p.userId);
      this.setStatus({});
      this.onClientConnected.fire(p);
    });
    conn.onNotification('companion/clientDisconnected', (p: ClientEventParams) => {
      this.sessions.delete(p.sessionId);
      this.setStatus({});
      this.onClientDisconnected.fire(p);
    });
    conn.onNotification('companion/commandExecuted', (p: CommandExecutedParams) =>
      this.onCommandExecuted.fire(p),
    );
    // The helper's queue to us filled (we were not reading): a gap in the
    // audit trail must not be silent.
    conn.onNotification('companion/notificationsDropped', (p: { count?: number; total?: number }) => {
      this.opts.logger.warn(
        `companion-helper dropped ${Number(p?.count) || 0} notification(s) while the editor was not reading ` +
          `(${Number(p?.total) || 0} in all): the audit lines of some commands are missing`,
      );
    });
    const ed = this.opts.editor;
    if (ed) {
      conn.onRequest('editor/open', (p: EditorOpenParams) => ed.open(p));
      conn.onRequest('editor/showMessage', (p: EditorShowMessageParams) => ed.showMessage(p));
      conn.onRequest('editor/diagnostics', (p: EditorDiagnosticsParams | null) => ed.diagnostics(p ?? {}));
      conn.onRequest('editor/executeCommand', (p: EditorExecuteCommandParams) => ed.executeCommand(p));
    }
    if (this.opts.lm) run.lm = attachLm(conn, this.opts.lm);
    conn.onNotification('companion/approvalRequested', (p: Approval) => this.onApprovalRequested.fire(p));
    conn.onNotification('companion/approvalResolved', (p: ApprovalResolvedParams) =>
      this.onApprovalResolved.fire(p),
    );
    conn.onNotification('companion/devicesChanged', () => this.onDevicesChanged.fire());
    conn.onError(([e]) => log.debug(`control plane: ${e.message}`));
    conn.listen();

    try {
      // Nothing is written before the process exists (a failed spawn would
      // leave writes to a destroyed pipe behind).
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      const params = await this.opts.initializeParams();
      this.listenKey = listenKeyOf(params.settings);
      const result = await this.withTimeout(
        conn.sendRequest<InitializeResult>('initialize', params),
        'initialize',
      );
      await conn.sendNotification('initialized', {});
      run.initialized = true;
      log.info(
        `companion-helper ${result.serverInfo.version} (pid ${child.pid ?? '?'}) initialized`,
      );
      this.setStatus({ helperRunning: true, state: this.wantServer ? 'starting' : 'stopped' });
      this.onReady.fire();
      return run;
    } catch (e) {
      const err = spawnError ?? e;
      // Died during initialize: the exit handler counted a crash and owns the state.
      if (run.exitHandled && !run.expectedExit) throw err;
      // The helper is alive but refused us (bad settings): end it; not a crash.
      if (this.run === run && run.child.exitCode === null && run.child.signalCode === null) {
        await this.terminate(run);
      }
      const message = err instanceof Error ? err.message : String(err);
      this.setStatus({ state: 'error', error: message, helperRunning: false });
      throw err;
    }
  }

  private onExit(run: Running, code: number | null, signal: string | null): void {
    if (run.exitHandled) return;
    run.exitHandled = true;
    run.resolveExit();
    run.lm?.dispose();
    try {
      run.conn.dispose();
    } catch {
      /* already closed */
    }
    if (this.run !== run) return; // an older process
    this.run = undefined;
    this.sessions.clear();
    this.onHelperExited.fire();
    const log = this.opts.logger;
    if (run.expectedExit || this.disposed) {
      log.info(`companion-helper exited (code ${code ?? '-'}${signal ? `, ${signal}` : ''})`);
      this.setStatus({ helperRunning: false, port: undefined, url: undefined,
        state: this.current.state === 'error' ? 'error' : 'stopped' });
      return;
    }
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < this.opts.crashWindowMs);
    this.crashes.push(now);
    const n = this.crashes.length;
    log.error(
      `companion-helper exited unexpectedly (code ${code ?? '-'}${signal ? `, signal ${signal}` : ''}); ` +
        `${n} crash(es) in the last ${Math.round(this.opts.crashWindowMs / 1000)} s`,
    );
    if (n >= this.opts.maxCrashes) {
      const message = `companion-helper crashed ${n} times in ${Math.round(
        this.opts.crashWindowMs / 60000,
      )} minutes; not restarting it`;
      log.error(message);
      this.setStatus({ state: 'error', error: message, helperRunning: false, gaveUp: true,
        port: undefined, url: undefined });
      this.onCrash.fire({ code, signal });
      this.onGaveUp.fire({ crashes: n });
      return;
    }
    const delay = this.backoffDelay(n);
    log.warn(`restarting companion-helper in ${delay} ms`);
    this.setStatus({ state: 'starting', helperRunning: false, port: undefined, url: undefined,
      error: `restarting after a crash (in ${Math.round(delay / 100) / 10} s)` });
    this.onCrash.fire({ code, signal, restartInMs: delay });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restartAfterCrash();
    }, delay);
  }

  private async restartAfterCrash(): Promise<void> {
    if (this.disposed) return;
    try {
      await this.ensureHelper();
      if (this.wantServer) await this.startServerOn();
      else this.setStatus({ state: 'stopped' });
    } catch (e) {
      // When the new process died as well, its exit handler has taken over.
      this.opts.logger.error(`restart failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** shutdown, exit, and SIGKILL after killTimeoutMs. */
  private async terminate(run: Running): Promise<void> {
    run.expectedExit = true;
    const killer = setTimeout(() => {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        this.opts.logger.warn('companion-helper did not exit in time: killing it');
        run.child.kill('SIGKILL');
      }
    }, this.opts.killTimeoutMs);
    try {
      if (run.initialized) {
        await Promise.race([
          run.conn.sendRequest('shutdown'),
          run.exited,
          new Promise((r) => setTimeout(r, this.opts.killTimeoutMs)),
        ]);
        await run.conn.sendNotification('exit').catch(() => undefined);
      } else {
        run.child.kill('SIGTERM');
      }
    } catch {
      /* the connection may already be gone */
    }
    try {
      run.child.stdin?.end();
    } catch {
      /* closed */
    }
    await run.exited;
    clearTimeout(killer);
  }

  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`companion-helper did not answer ${what} in time`)),
        this.opts.requestTimeoutMs,
      );
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  private async request<T>(method: string, params?: unknown): Promise<T> {
    const run = await this.ensureHelper();
    return this.withTimeout(
      params === undefined ? run.conn.sendRequest<T>(method) : run.conn.sendRequest<T>(method, params),
      method,
    );
  }

  /* ---------- public API ---------- */

  /** Spawns and initializes the helper if needed; starts the server when asked. */
  async start(opts: { server: boolean }): Promise<StartResult | undefined> {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    if (opts.server) return this.startServer();
    await this.ensureHelper();
    return undefined;
  }

  async startServer(): Promise<StartResult> {
    this.wantServer = true;
    if (this.current.gaveUp) {
      this.crashes = [];
      this.setStatus({ gaveUp: false });
    }
    await this.ensureHelper();
    return this.startServerOn();
  }

  private async startServerOn(): Promise<StartResult> {
    this.setStatus({ state: 'starting', error: undefined });
    const run = this.run;
    try {
      const r = await this.request<StartResult>('server/start', {});
      this.sessions.clear();
      this.setStatus({ state: 'running', port: r.port, url: r.url, warnings: r.warnings ?? [], error: undefined });
      return r;
    } catch (e) {
      // The helper died meanwhile: the supervisor restarts it (and the server).
      if (!run || run.exitHandled) throw e;
      this.wantServer = false;
      const message = isPortTaken(e)
        ? `port ${e.data?.port ?? '?'} is already in use`
        : e instanceof Error
          ? e.message
          : String(e);
      this.setStatus({ state: 'error', error: message, port: undefined, url: undefined });
      throw e;
    }
  }

  async stopServer(): Promise<void> {
    this.wantServer = false;
    if (!this.run?.initialized) {
      this.setStatus({ state: 'stopped', port: undefined, url: undefined, error: undefined });
      return;
    }
    await this.request('server/stop', {});
    this.sessions.clear();
    this.setStatus({ state: 'stopped', port: undefined, url: undefined, error: undefined });
  }

  /** Ends the helper (shutdown, exit, kill after the timeout). */
  async stop(): Promise<void> {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    if (this.startingHelper) await this.startingHelper.catch(() => undefined);
    const run = this.run;
    if (run) await this.terminate(run);
    this.setStatus({ state: 'stopped', helperRunning: false, port: undefined, url: undefined,
      error: undefined });
  }

  /** A fresh helper with a fresh crash count; the server is started. */
  async restart(): Promise<StartResult> {
    await this.stop();
    this.crashes = [];
    this.setStatus({ gaveUp: false, error: undefined });
    return this.startServer();
  }

  async serverStatus(): Promise<StatusResult> {
    const s = await this.request<StatusResult>('server/status', {});
    if (s.state === 'running' && typeof s.port === 'number') {
      this.setStatus({ state: 'running', port: s.port, url: s.url ?? undefined, warnings: s.warnings ?? [] });
    }
    return s;
  }

  issueToken(p: IssueTokenParams): Promise<IssueTokenResult> {
    return this.request<IssueTokenResult>('auth/issueToken', p);
  }

  async disconnect(sessionId: string, reason: string): Promise<void> {
    await this.request('server/disconnect', { sessionId, reason });
  }

  broadcast(type: string, data: unknown): Promise<{ delivered: number }> {
    return this.request('server/broadcast', { type, data });
  }

  /** approval/decide: the person at the editor answers an approval. */
  decideApproval(approvalId: number, decision: ApprovalOption): Promise<ApprovalDecideResult> {
    return this.request<ApprovalDecideResult>('approval/decide', { approvalId, decision });
  }

  /** approvals/list: the approvals waiting now (none when the helper is not running). */
  async listApprovals(): Promise<ApprovalsListResult> {
    if (!this.run?.initialized) return { approvals: [] };
    return this.request<ApprovalsListResult>('approvals/list', {});
  }

  /** devices/list: the paired devices; undefined when the helper is not running (it is not started for this). */
  async listDevices(): Promise<DevicesListResult | undefined> {
    if (!this.run?.initialized) return undefined;
    return this.request<DevicesListResult>('devices/list', {});
  }

  /** devices/revoke: closes the device's sessions (4001) and refuses its tokens from now on. */
  revokeDevice(id: string): Promise<{ revoked: boolean }> {
    return this.request<{ revoked: boolean }>('devices/revoke', { id });
  }

  /** devices/rename. */
  renameDevice(id: string, name: string): Promise<{ renamed: boolean }> {
    return this.request<{ renamed: boolean }>('devices/rename', { id, name });
  }

  /** workspace/didChangeConfiguration; a new host or port re-binds, which is followed. */
  async sendConfiguration(settings: HelperSettings): Promise<void> {
    const run = this.run;
    if (!run?.initialized) return; // sent in initialize when it starts
    const before = this.listenKey;
    this.listenKey = listenKeyOf(settings);
    await run.conn.sendNotification('workspace/didChangeConfiguration', { settings });
    if (this.current.state === 'running' && before !== this.listenKey) {
      await this.followRebind();
    }
  }

  /**
   * After a host/port change: server/start completes a re-bind in progress
   * (it is idempotent), so its answer is the new address, or -32001 when the
   * new port is taken (then the server is stopped and the error is thrown).
   */
  private async followRebind(): Promise<void> {
    await this.startServerOn();
  }

  async didChangeWorkspaceFolders(added: WorkspaceFolderParam[], removed: WorkspaceFolderParam[]): Promise<void> {
    if (!this.run?.initialized) return;
    await this.run.conn.sendNotification('workspace/didChangeWorkspaceFolders', {
      event: { added, removed },
    });
  }

  async didSaveTextDocument(uri: string): Promise<void> {
    if (!this.run?.initialized) return;
    await this.run.conn.sendNotification('workspace/didSaveTextDocument', { uri });
  }

  /** Stops the helper and forgets every listener. */
  /**
   * A control method this helper may not have (an older helper): its result,
   * or undefined when the helper answers "method not found" (-32601).
   */
  async requestIfSupported<T>(method: string, params?: unknown): Promise<T | undefined> {
    try {
      return await this.request<T>(method, params);
    } catch (e) {
      if (e instanceof ResponseError && e.code === -32601) return undefined;
      throw e;
    }
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.disposed = true;
    for (const e of [this.onStatus, this.onClientConnected, this.onClientDisconnected,
      this.onCommandExecuted, this.onLogMessage, this.onCrash, this.onGaveUp,
      this.onApprovalRequested, this.onApprovalResolved, this.onDevicesChanged, this.onReady, this.onHelperExited]) {
      (e as Emitter<unknown>).clear();
    }
  }
}
