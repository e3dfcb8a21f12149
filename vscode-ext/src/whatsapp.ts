/*
 * Link WhatsApp: the supervisor of the bundled WhatsApp bridge
 * (companion-whatsapp). It writes the bridge's private files in its state
 * folder (the extension's globalStorage/whatsapp, mode 0700), runs the bridge
 * with the editor's own Node runtime, reads the API port from its stderr,
 * follows its API (QR code, status) over a WebSocket, and restarts it when it
 * dies (backoff 1 s doubling to 30 s; after 5 crashes in 3 minutes it gives
 * up), like client.ts does for the helper. No vscode import: it runs (and is
 * tested) in plain Node against the real bridge and helper.
 *
 * Secrets: the helper token is written to <state>/tokens/<name>.token (0600)
 * and named to the bridge with --config; the API token is <state>/api-token
 * (0600, read by the bridge itself). Neither is ever in argv, the
 * environment, the log, or a workspace file.
 *
 * One bridge per machine: <state>/bridge.lock (0600) names the pid and API
 * port of the bridge that runs. A second window finds a live lock and
 * attaches to that bridge instead of starting another: it adds its own
 * workspace through the bridge's API (`addWorkspace`, the token only on that
 * authenticated loopback socket), reachable from WhatsApp as `@name`, and
 * adds it again after every reconnect (the bridge drops a client's
 * workspaces when its socket closes). When that bridge goes away and no
 * live lock is left (its window closed), an attached window takes over: it
 * runs the bridge itself, on the same session.
 *
 * Ownership: WhatsAppSupervisor owns the child process, the API socket, the
 * lock file while it holds it, and its timers; the files it writes in the
 * state folder are rewritten at each start and removed on unlink.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants as fsc, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Emitter, parseStderrLine, type Logger } from './client';

/** What the status bar and the panel show. */
export type WaState =
  | 'stopped' // no bridge
  | 'starting' // the bridge process starts / WhatsApp connects
  | 'linking' // a QR code waits for the phone
  | 'linked' // WhatsApp is connected
  | 'disconnected' // WhatsApp dropped (the bridge reconnects), or the bridge restarts after a crash
  | 'loggedOut' // the device was removed: Link again
  | 'error'; // gave up, or a start failed

export interface WaStatus {
  state: WaState;
  /** Why (for disconnected, loggedOut, error). */
  detail?: string;
  /** The current QR payload while linking. */
  qr?: string;
  /** This window runs the bridge (owner) or follows one another window runs (attached). */
  role?: 'owner' | 'attached';
  /** This window's workspace is reachable from WhatsApp as `@<reachableAs>`. */
  reachableAs?: string;
  /** Stopped because the window that ran the bridge unlinked WhatsApp (this window's devices are to be revoked). */
  unlinkedElsewhere?: true;
}

/** A frame of the bridge's API (bridges/whatsapp/src/api.ts). */
export type ApiFrame = { type: string; [k: string]: unknown };

/** The next status, given the current one and a frame from the bridge's API. Pure. */
export function nextStatus(cur: WaStatus, frame: ApiFrame): WaStatus {
  const keep = { ...(cur.role ? { role: cur.role } : {}), ...(cur.reachableAs ? { reachableAs: cur.reachableAs } : {}) };
  if (frame.type === 'qr' && typeof frame.qr === 'string') return { state: 'linking', qr: frame.qr, ...keep };
  if (frame.type !== 'status' || typeof frame.status !== 'string') return cur;
  const detail = typeof frame.detail === 'string' ? frame.detail : undefined;
  switch (frame.status) {
    case 'starting':
    case 'connecting':
      // A QR code stays up while WhatsApp rotates it.
      return cur.state === 'linking' ? cur : { state: 'starting', ...keep };
    case 'qr':
      return { state: 'linking', ...(cur.qr ? { qr: cur.qr } : {}), ...keep };
    case 'connected':
      return { state: 'linked', ...keep };
    case 'logged_out':
      return { state: 'loggedOut', detail: detail ?? 'this device was logged out', ...keep };
    case 'disconnected':
      if (frame.willReconnect === false) return { state: 'error', detail: detail ?? 'WhatsApp closed the connection', ...keep };
      return { state: 'disconnected', ...(detail ? { detail } : {}), ...keep };
    default:
      return cur;
  }
}

/** A new sender waiting for the owner's approval (the bridge's `pairing` frame). */
export interface WaPairing {
  code: string;
  /** The sender: +E.164, or a LID when WhatsApp gave no number. */
  from: string;
  name?: string;
  expiresAt: number;
}

/** What a frame of the bridge's API says about pairing codes, if anything. Pure. */
export function pairingFrame(frame: ApiFrame):
  | { kind: 'pairing'; pairing: WaPairing }
  | { kind: 'allowed'; number: string }
  | { kind: 'result'; code: string; ok: boolean; number?: string; error?: string }
  | undefined {
  if (frame.type === 'pairing' && typeof frame.code === 'string' && typeof frame.from === 'string' && typeof frame.expiresAt === 'number') {
    return { kind: 'pairing', pairing: { code: frame.code, from: frame.from, expiresAt: frame.expiresAt, ...(typeof frame.name === 'string' ? { name: frame.name } : {}) } };
  }
  if (frame.type === 'allowed' && typeof frame.number === 'string') return { kind: 'allowed', number: frame.number };
  if (frame.type === 'pairingResult' && typeof frame.code === 'string' && typeof frame.ok === 'boolean') {
    return {
      kind: 'result',
      code: frame.code,
      ok: frame.ok,
      ...(typeof frame.number === 'string' ? { number: frame.number } : {}),
      ...(typeof frame.error === 'string' ? { error: frame.error } : {}),
    };
  }
  return undefined;
}

/** The allowlist with `entry` added, every other entry kept as the user wrote it
 * (unchanged when the number is there already, in any spelling). Pure. */
export function withAllowed(allow: unknown, entry: string): unknown[] {
  const list: unknown[] = Array.isArray(allow) ? [...(allow as unknown[])] : [];
  const have = splitAllow(list.filter((x) => splitAllow([x]).bad.length === 0)).numbers;
  const want = splitAllow([entry]).numbers[0] ?? entry;
  return have.includes(want) ? list : [...list, entry];
}

/** "2026-12-06T02:00:00.000Z info: api: listening on 127.0.0.1:PORT" -> PORT. */
export function parseApiPort(line: string): number | undefined {
  const m = /api: listening on 127\.0\.0\.1:(\d{1,5})\s*$/.exec(line);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n > 0 && n < 65536 ? n : undefined;
}

export interface BridgeLock {
  pid: number;
  apiPort: number;
  startedAt: number;
}

/** The lock file's content, or undefined when it is not a lock (missing fields, wrong types, garbage). Pure. */
export function parseLock(text: string): BridgeLock | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const { pid, apiPort, startedAt } = o;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  if (typeof apiPort !== 'number' || !Number.isInteger(apiPort) || apiPort < 0 || apiPort > 65535) return undefined;
  if (typeof startedAt !== 'number' || !Number.isFinite(startedAt)) return undefined;
  return { pid, apiPort, startedAt };
}

/** Numbers and chat ids of companion.whatsapp.allow, split for the bridge; bad entries named. Pure. */
export function splitAllow(allow: unknown): { numbers: string[]; groups: string[]; bad: string[] } {
  const numbers: string[] = [];
  const groups: string[] = [];
  const bad: string[] = [];
  if (!Array.isArray(allow)) return { numbers, groups, bad: allow === undefined || allow === null ? [] : [JSON.stringify(allow)] };
  for (const raw of allow) {
    const s = typeof raw === 'number' ? `+${raw}` : typeof raw === 'string' ? raw.trim() : '';
    const digits = s.replace(/[\s()\-.]/g, '');
    if (/^\+?\d{5,15}$/.test(digits)) numbers.push(`+${digits.replace(/^\+/, '')}`);
    else if (/^\d{5,15}@s\.whatsapp\.net$/.test(s)) numbers.push(`+${s.split('@')[0]!}`);
    else if (/^[0-9-]{5,40}@g\.us$/.test(s)) groups.push(s);
    else bad.push(typeof raw === 'string' ? raw : JSON.stringify(raw));
  }
  return { numbers: [...new Set(numbers)], groups: [...new Set(groups)], bad };
}

export interface BridgeWorkspace {
  /** Reachable as @name from WhatsApp. */
  name: string;
  url: string;
  workspaceId: string;
  tokenFile: string;
}

/** The bridge's --config (written by the extension, never by the user). Pure. */
export function bridgeConfig(o: {
  stateDir: string;
  allow: string[];
  groups: string[];
  workspaces: BridgeWorkspace[];
}): Record<string, unknown> {
  return {
    allow: o.allow,
    groups: o.groups,
    authDir: path.join(o.stateDir, 'auth'),
    stateDir: o.stateDir,
    apiPort: 0,
    // The editor's companion.whatsapp.allow is the list: an approved sender
    // is announced (`allowed`), and the extension adds it there.
    allowManaged: true,
    workspaces: o.workspaces.map((w) => ({ name: w.name, url: w.url, workspaceId: w.workspaceId, tokenFile: w.tokenFile })),
  };
}

/** argv of the bridge (no secret in it; it stops when our end of its stdin closes). Pure. */
export function bridgeArgs(script: string, configFile: string, relink: boolean): string[] {
  return [script, '--config', configFile, '--api-port', '0', '--stop-with-parent', ...(relink ? ['--relink'] : [])];
}

/** The bridge's environment: the editor's own Node runtime as plain Node, and no BRIDGE_TOKEN (the token file is used). Pure. */
export function bridgeEnv(base: NodeJS.ProcessEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...extra, ELECTRON_RUN_AS_NODE: '1' };
  delete env.BRIDGE_TOKEN;
  delete env.NODE_OPTIONS;
  return env;
}

/** A workspace name the bridge accepts (letters, digits, _ . -). Pure. */
export function workspaceName(folderName: string): string {
  const n = folderName.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return n.length > 0 ? n : 'workspace';
}

/** Writes a private file (0600) atomically: through a temporary file and a rename. */
export function writePrivate(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** <state>/api-token: created (0600, 32 random bytes) when missing; refused when others may read it. */
export function ensureApiToken(stateDir: string): string {
  const file = path.join(stateDir, 'api-token');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  try {
    const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o077) !== 0) throw new Error(`${file} must be a regular file only you can read (chmod 600)`);
    return readFileSync(fd, 'utf8').trim();
  } finally {
    closeSync(fd);
  }
}

export interface LockIo {
  isAlive(pid: number): boolean;
}

const defaultLockIo: LockIo = {
  isAlive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
};

/** The live lock of a bridge another window runs, or undefined (none, garbage, or its process is gone). */
export function readLiveLock(stateDir: string, io: LockIo = defaultLockIo): BridgeLock | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(stateDir, 'bridge.lock'), 'utf8');
  } catch {
    return undefined;
  }
  const lock = parseLock(text);
  return lock && io.isAlive(lock.pid) ? lock : undefined;
}

/** Takes the lock (O_EXCL) for this process; a stale or broken lock is replaced. False when a live one is there. */
export function takeLock(stateDir: string, io: LockIo = defaultLockIo): boolean {
  const file = path.join(stateDir, 'bridge.lock');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, apiPort: 0, startedAt: Date.now() }));
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (readLiveLock(stateDir, io)) return false;
      // Stale (its window died) or not a lock: replace it.
      try {
        unlinkSync(file);
      } catch {
        /* another window took it first */
      }
    }
  }
  return false;
}

export interface SupervisorOptions {
  /** The Node runtime: the editor's own (process.execPath, run with ELECTRON_RUN_AS_NODE=1). */
  nodePath: string;
  /** The bundled bridge (dist/companion-whatsapp.js in the VSIX). */
  bridgeScript: string;
  /** globalStorage/whatsapp: the bridge's state folder. */
  stateDir: string;
  logger: Logger;
  /** Extra environment for the bridge (tests select the stand-in transport with it). */
  env?: Record<string, string>;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  crashWindowMs?: number;
  maxCrashes?: number;
  /** How long the bridge has to print its API port (default 20 s). */
  startTimeoutMs?: number;
  killTimeoutMs?: number;
}

export interface LinkParams {
  /** companion.whatsapp.allow, already split. */
  allow: string[];
  groups: string[];
  workspace: { name: string; url: string; workspaceId: string; token: string };
  /** Forget a stored session first (after a logout). */
  relink?: boolean;
}

export class WhatsAppSupervisor {
  private readonly opts: Required<Omit<SupervisorOptions, 'env'>> & { env: Record<string, string> };
  private child: ChildProcess | undefined;
  private ws: WebSocket | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private crashes: number[] = [];
  private params: LinkParams | undefined;
  private stopping = false;
  private holdsLock = false;
  /** The pid written in the lock while this window holds it: its own, then its bridge's. */
  private lockPid: number | undefined;
  private current: WaStatus = { state: 'stopped' };
  private apiPort: number | undefined;
  /** The first spawn of a start(): its failure goes to start()'s caller, not to a restart. */
  private initial = false;
  readonly onStatus = new Emitter<WaStatus>();
  /** A new sender asks for access (a pairing code the owner may approve). */
  readonly onPairing = new Emitter<WaPairing>();
  /** A sender was approved (here or from the owner's chat): add it to the allowlist. */
  readonly onAllowed = new Emitter<string>();
  private decisions = new Map<string, (r: { ok: boolean; number?: string; error?: string }) => void>();
  /** Waits for the answer to this window's addWorkspace. */
  private addWaiter: ((f: ApiFrame) => void) | undefined;
  /** addWorkspace requests go one at a time (a token refresh may come during a reconnect's). */
  private adding: Promise<void> = Promise.resolve();
  /** Attached and the bridge went away: the next look at the lock (follow again, or take over). */
  private followTimer: NodeJS.Timeout | undefined;
  private followAttempts = 0;

  constructor(opts: SupervisorOptions) {
    this.opts = {
      backoffInitialMs: 1000,
      backoffMaxMs: 30000,
      crashWindowMs: 180000,
      maxCrashes: 5,
      startTimeoutMs: 20000,
      killTimeoutMs: 3000,
      env: {},
      ...opts,
    };
  }

  get status(): WaStatus {
    return this.current;
  }

  /** The pid of the bridge this window runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get port(): number | undefined {
    return this.apiPort;
  }

  private setStatus(s: WaStatus): void {
    const prev = this.current;
    this.current = s;
    if (prev.state !== s.state || prev.qr !== s.qr || prev.detail !== s.detail || prev.role !== s.role || prev.reachableAs !== s.reachableAs) {
      if (prev.state !== s.state) this.opts.logger.info(`whatsapp: ${s.state}${s.detail ? ` (${s.detail})` : ''}`);
      this.onStatus.fire(s);
    }
  }

  private get lockFile(): string {
    return path.join(this.opts.stateDir, 'bridge.lock');
  }

  /**
   * Link: runs the bridge (or, when another window runs one, follows it).
   * Resolves once the bridge's API answers; the QR code and "linked" come
   * through onStatus.
   */
  async start(p: LinkParams): Promise<'owner' | 'attached'> {
    this.stopping = false;
    this.params = p;
    this.crashes = [];
    this.clearFollow();
    const live = readLiveLock(this.opts.stateDir);
    if (live && live.apiPort > 0 && live.pid !== this.lockPid) {
      this.opts.logger.info(`whatsapp: a bridge already runs on this machine (pid ${live.pid}, API port ${live.apiPort}); attaching this workspace to it`);
      this.setStatus({ state: 'starting', role: 'attached' });
      await this.connectApi(live.apiPort, 'attached');
      return 'attached';
    }
    if (!this.holdsLock && !takeLock(this.opts.stateDir)) throw new Error('another window is starting the WhatsApp bridge; try again in a moment');
    this.holdsLock = true;
    this.lockPid = process.pid;
    this.initial = true;
    try {
      await this.spawnBridge(p.relink ?? false);
    } catch (e) {
      const child = this.child;
      this.child = undefined;
      if (child) await this.kill(child);
      this.releaseLock();
      this.setStatus({ state: 'error', detail: e instanceof Error ? e.message : String(e), role: 'owner' });
      throw e;
    } finally {
      this.initial = false;
    }
    return 'owner';
  }

  /** Whether a WhatsApp session is stored (a bridge may run on it without a new QR scan). */
  private hasSession(): boolean {
    return existsSync(path.join(this.opts.stateDir, 'auth', 'creds.json'));
  }

  private clearFollow(): void {
    if (this.followTimer) clearTimeout(this.followTimer);
    this.followTimer = undefined;
  }

  /** Attached, and the bridge's API went away: look at the lock again after a while. */
  private scheduleFollow(): void {
    if (this.stopping || this.followTimer) return;
    const n = this.followAttempts++;
    const delay = Math.min(this.opts.backoffInitialMs * 2 ** Math.min(n, 10), this.opts.backoffMaxMs);
    this.followTimer = setTimeout(() => {
      this.followTimer = undefined;
      void this.follow();
    }, delay);
  }

  /**
   * The bridge this window followed went away. A live lock with a port: a
   * bridge runs (restarted, or another window's): attach to it again. A live
   * lock without a port: its window is (re)starting it: wait. No live lock
   * (that window closed): take over, running the bridge here on the stored
   * session; with no session left (it was unlinked) there is nothing to run.
   */
  private async follow(): Promise<void> {
    const p = this.params;
    if (this.stopping || !p) return;
    const live = readLiveLock(this.opts.stateDir);
    if (live && live.apiPort > 0 && live.pid !== this.lockPid) {
      try {
        await this.connectApi(live.apiPort, 'attached');
        this.followAttempts = 0;
        this.opts.logger.info(`whatsapp: attached again to the bridge (pid ${live.pid})`);
      } catch (e) {
        this.opts.logger.warn(`whatsapp: cannot reach the bridge's API: ${e instanceof Error ? e.message : String(e)}; trying again`);
        this.scheduleFollow();
      }
      return;
    }
    if (live) {
      this.scheduleFollow();
      return;
    }
    if (!this.hasSession()) {
      this.setStatus({ state: 'stopped', detail: 'the window that ran the bridge unlinked WhatsApp', unlinkedElsewhere: true });
      return;
    }
    this.opts.logger.info('whatsapp: the window that ran the bridge is gone; this window runs it now');
    try {
      const role = await this.start({ ...p, relink: false });
      this.followAttempts = 0;
      this.opts.logger.info(`whatsapp: took over (${role})`);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (/another window is starting/.test(message)) {
        // Another attached window took it first: follow that one.
        this.setStatus({ state: 'disconnected', detail: 'another window starts the bridge', role: 'attached' });
        this.scheduleFollow();
        return;
      }
      this.opts.logger.error(`whatsapp: taking over the bridge failed: ${message}`);
    }
  }

  /**
   * Adds this window's workspace to the bridge it attached to (again after
   * every reconnect: the bridge drops it when this socket closes). A name
   * another window uses already gets a suffix ("app-2").
   */
  private addWorkspace(ws: WebSocket): Promise<void> {
    const next = this.adding.then(() => this.addWorkspaceNow(ws));
    this.adding = next.catch(() => undefined);
    return next;
  }

  private async addWorkspaceNow(ws: WebSocket): Promise<void> {
    if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
    const p = this.params;
    if (!p) return;
    const base = p.workspace.name;
    for (let i = 1; i <= 9; i++) {
      const name = i === 1 ? base : `${base.slice(0, 60)}-${i}`;
      const answer = await new Promise<ApiFrame | undefined>((resolve) => {
        const t = setTimeout(() => {
          this.addWaiter = undefined;
          resolve(undefined);
        }, 20000);
        this.addWaiter = (f) => {
          clearTimeout(t);
          this.addWaiter = undefined;
          resolve(f);
        };
        ws.send(
          JSON.stringify({ type: 'addWorkspace', name, url: p.workspace.url, workspaceId: p.workspace.workspaceId, token: p.workspace.token }),
        );
      });
      if (this.ws !== ws) return;
      if (answer?.type === 'workspaceAdded') {
        const online = answer.online !== false;
        this.opts.logger.info(`whatsapp: this workspace is reachable from WhatsApp as @${name}${online ? '' : ' (its server is not reachable yet)'}`);
        this.setStatus({ ...this.current, reachableAs: name });
        return;
      }
      if (answer?.code === 'NAME_TAKEN') continue;
      const why = answer ? `${String(answer.code)}: ${String(answer.error)}` : 'no answer from the bridge';
      this.opts.logger.error(`whatsapp: the bridge did not add this workspace (${why})`);
      const rest: WaStatus = { ...this.current, detail: `this workspace is not reachable from WhatsApp (${why})` };
      delete rest.reachableAs;
      this.setStatus(rest);
      return;
    }
    this.opts.logger.error(`whatsapp: the bridge did not add this workspace: the names ${base} to ${base}-9 are taken`);
  }

  private writeFiles(p: LinkParams): string {
    const dir = this.opts.stateDir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    ensureApiToken(dir);
    const tokenFile = path.join(dir, 'tokens', `${p.workspace.name}.token`);
    writePrivate(tokenFile, `${p.workspace.token}\n`);
    const configFile = path.join(dir, 'bridge.json');
    const cfg = bridgeConfig({
      stateDir: dir,
      allow: p.allow,
      groups: p.groups,
      workspaces: [{ name: p.workspace.name, url: p.workspace.url, workspaceId: p.workspace.workspaceId, tokenFile }],
    });
    writePrivate(configFile, `${JSON.stringify(cfg, null, 2)}\n`);
    return configFile;
  }

  private async spawnBridge(relink: boolean): Promise<void> {
    const p = this.params;
    if (!p) throw new Error('not linking');
    const configFile = this.writeFiles(p);
    this.setStatus({ state: 'starting', role: 'owner' });
    const args = bridgeArgs(this.opts.bridgeScript, configFile, relink);
    const child = spawn(this.opts.nodePath, args, {
      cwd: this.opts.stateDir,
      env: bridgeEnv(process.env, this.opts.env),
      // stdin is a pipe the bridge watches (--stop-with-parent): if this editor dies, it stops too.
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    this.child = child;
    this.apiPort = undefined;
    const port = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the WhatsApp bridge did not start its API within ${this.opts.startTimeoutMs / 1000} s`));
      }, this.opts.startTimeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`the WhatsApp bridge exited at start (${sig ?? `code ${String(code)}`})`));
      });
      const rl = createInterface({ input: child.stderr });
      rl.on('line', (line) => {
        const got = parseApiPort(line);
        if (got !== undefined && this.apiPort === undefined) {
          clearTimeout(timer);
          resolve(got);
        }
        // Only the bridge's own log lines (timestamped); the terminal QR art is left out.
        if (!/^\d{4}-\d\d-\d\dT/.test(line) && !line.startsWith('companion-whatsapp:')) return;
        const { level, text } = parseStderrLine(line);
        this.opts.logger[level](`whatsapp: ${text}`);
      });
    });
    port.catch(() => undefined);
    child.once('exit', (code, sig) => this.onExit(child, code, sig));
    let apiPort: number;
    try {
      apiPort = await port;
    } catch (e) {
      await this.kill(child);
      throw e;
    }
    this.apiPort = apiPort;
    // The lock names the bridge: it is live as long as the bridge runs.
    this.lockPid = child.pid;
    writePrivate(this.lockFile, JSON.stringify({ pid: child.pid, apiPort, startedAt: Date.now() }));
    this.opts.logger.info(`whatsapp: bridge pid ${String(child.pid)}, API on 127.0.0.1:${apiPort}`);
    await this.connectApi(apiPort, 'owner');
    // Its own workspace is one of the bridge's configured ones.
    this.setStatus({ ...this.current, reachableAs: p.workspace.name });
  }

  /** Connects to the bridge's API and follows its frames. */
  private connectApi(port: number, role: 'owner' | 'attached'): Promise<void> {
    const token = ensureApiToken(this.opts.stateDir);
    this.apiPort = port;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { handshakeTimeout: 5000 });
      this.ws = ws;
      let authed = false;
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
      ws.on('message', (data: Buffer) => {
        let frame: ApiFrame;
        try {
          frame = JSON.parse(data.toString('utf8')) as ApiFrame;
        } catch {
          return;
        }
        if (frame.type === 'auth' && frame.ok === true) {
          authed = true;
          if (role === 'attached') {
            // Resolved once the bridge answered (or not) for this window's workspace.
            this.addWorkspace(ws).then(resolve, () => resolve());
          } else {
            resolve();
          }
          return;
        }
        if (frame.type === 'workspaceAdded' || (frame.type === 'error' && typeof frame.name === 'string')) {
          this.addWaiter?.(frame);
          return;
        }
        if (frame.type === 'error' && !authed) {
          reject(new Error(`the bridge refused the API token (${String(frame.code)})`));
          return;
        }
        if (this.ws !== ws) return;
        const p = pairingFrame(frame);
        if (p?.kind === 'pairing') this.onPairing.fire(p.pairing);
        else if (p?.kind === 'allowed') this.onAllowed.fire(p.number);
        else if (p?.kind === 'result') {
          const done = this.decisions.get(p.code.toUpperCase());
          this.decisions.delete(p.code.toUpperCase());
          done?.(p);
        } else this.setStatus({ ...nextStatus(this.current, frame), role });
      });
      ws.on('error', (e) => {
        if (!authed) reject(e);
      });
      ws.on('close', () => {
        if (!authed) reject(new Error('the bridge closed its API'));
        if (this.ws === ws) this.ws = undefined;
        // An attached window loses its bridge when the owner window stops it (or the bridge restarts):
        // attach again, or take over when that window is gone.
        if (role === 'attached' && authed && !this.stopping && this.ws === undefined) {
          this.setStatus({ state: 'disconnected', detail: 'the bridge of the other window went away', role });
          this.scheduleFollow();
        }
      });
    });
  }

  private onExit(child: ChildProcess, code: number | null, sig: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.ws?.close();
    this.ws = undefined;
    if (this.stopping || this.initial) return;
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < this.opts.crashWindowMs);
    this.crashes.push(now);
    const n = this.crashes.length;
    this.opts.logger.warn(`whatsapp: the bridge exited unexpectedly (${sig ?? `code ${String(code)}`}); ${n} crash(es) recently`);
    if (n >= this.opts.maxCrashes) {
      this.releaseLock();
      this.setStatus({ state: 'error', detail: `the WhatsApp bridge crashed ${n} times and is no longer restarted`, role: 'owner' });
      return;
    }
    const delay = Math.min(this.opts.backoffInitialMs * 2 ** (n - 1), this.opts.backoffMaxMs);
    // Held by this window while the bridge is down, so no other window starts one meanwhile.
    this.lockPid = process.pid;
    writePrivate(this.lockFile, JSON.stringify({ pid: process.pid, apiPort: 0, startedAt: Date.now() }));
    this.setStatus({ state: 'disconnected', detail: `the bridge restarts in ${Math.round(delay / 100) / 10} s`, role: 'owner' });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawnBridge(false).catch((e: unknown) => {
        this.opts.logger.error(`whatsapp: restart failed: ${e instanceof Error ? e.message : String(e)}`);
        // The child's exit (if it ran at all) schedules the next try; a failed spawn ends here.
        if (!this.child && !this.restartTimer) {
          this.releaseLock();
          this.setStatus({ state: 'error', detail: e instanceof Error ? e.message : String(e), role: 'owner' });
        }
      });
    }, delay);
  }

  private kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), this.opts.killTimeoutMs);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  private releaseLock(): void {
    if (!this.holdsLock) return;
    this.holdsLock = false;
    let mine = true;
    try {
      const lock = parseLock(readFileSync(this.lockFile, 'utf8'));
      mine = !lock || lock.pid === this.lockPid || lock.pid === process.pid;
    } catch {
      mine = false;
    }
    if (mine) rmSync(this.lockFile, { force: true });
    this.lockPid = undefined;
  }

  /** A fresh helper token for the running bridge: it re-reads its token file within 2 s. */
  refreshToken(token: string): void {
    const p = this.params;
    if (!p) return;
    p.workspace = { ...p.workspace, token };
    if (!this.holdsLock) {
      // Attached: the bridge holds the token in memory; adding the workspace again renews it.
      const ws = this.ws;
      if (ws && ws.readyState === WebSocket.OPEN) void this.addWorkspace(ws);
      return;
    }
    writePrivate(path.join(this.opts.stateDir, 'tokens', `${p.workspace.name}.token`), `${token}\n`);
  }

  /** Stops the bridge this window runs (the device stays linked), or stops following another window's. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clearFollow();
    this.followAttempts = 0;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.ws?.close();
    this.ws = undefined;
    const child = this.child;
    if (child) await this.kill(child);
    this.child = undefined;
    this.releaseLock();
    this.apiPort = undefined;
    this.setStatus({ state: 'stopped' });
  }

  /**
   * Unlink: asks the running bridge to log the device out (WhatsApp forgets
   * it), stops it, and deletes the session folder whatever happened.
   * Returns whether WhatsApp confirmed the logout.
   */
  async unlink(timeoutMs = 10000): Promise<boolean> {
    let confirmed = false;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      confirmed = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), timeoutMs);
        const onMsg = (data: Buffer): void => {
          try {
            const f = JSON.parse(data.toString('utf8')) as ApiFrame;
            if (f.type === 'logout' && f.ok === true) {
              clearTimeout(t);
              resolve(true);
            } else if (f.type === 'error' && typeof f.error === 'string' && f.error.startsWith('logout')) {
              clearTimeout(t);
              resolve(false);
            }
          } catch {
            /* not JSON: ignored */
          }
        };
        ws.on('message', onMsg);
        ws.send(JSON.stringify({ type: 'logout' }));
      });
    }
    await this.stop();
    rmSync(path.join(this.opts.stateDir, 'auth'), { recursive: true, force: true });
    rmSync(path.join(this.opts.stateDir, 'tokens'), { recursive: true, force: true });
    // Pending pairing codes were the unlinked account's strangers'.
    rmSync(path.join(this.opts.stateDir, 'pairing.json'), { force: true });
    this.opts.logger.info(`whatsapp: unlinked${confirmed ? '' : ' (WhatsApp did not confirm: remove the device under Linked devices on the phone if it is still listed)'}; session deleted`);
    this.setStatus({ state: 'stopped' });
    return confirmed;
  }

  /** Approves or denies a pending code through the bridge's API. */
  decidePairing(code: string, approve: boolean, timeoutMs = 5000): Promise<{ ok: boolean; number?: string; error?: string }> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve({ ok: false, error: 'the WhatsApp bridge is not running' });
    const key = code.toUpperCase();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.decisions.delete(key);
        resolve({ ok: false, error: 'the bridge did not answer' });
      }, timeoutMs);
      this.decisions.set(key, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      ws.send(JSON.stringify({ type: approve ? 'approvePairing' : 'denyPairing', code }));
    });
  }

  dispose(): Promise<void> {
    this.onStatus.clear();
    this.onPairing.clear();
    this.onAllowed.clear();
    return this.stop();
  }
}
