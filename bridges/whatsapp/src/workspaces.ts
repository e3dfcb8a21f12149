/**
 * Workspaces added while the bridge runs, through its API (`addWorkspace`):
 * a second VS Code window on the machine adds its own workspace to the one
 * bridge that holds the WhatsApp session, reachable as `@name`.
 *
 * Each is a HelperClient like a configured workspace (same token checks,
 * same relay), with its token given directly: it stays in memory, never in a
 * file, argv, the environment or the log. Each belongs to the API client
 * that added it and is removed when that client's socket closes (the window
 * went away), so a client adds its workspace again after every reconnect.
 *
 * Ownership: WorkspaceRegistry owns the HelperClients it creates (stopped on
 * removal); the relay only routes to them.
 */
import { HelperClient } from './helperClient.js';
import type { HelperClientOptions } from './helperClient.js';
import type { Reporter } from './log.js';
import type { NotifyState } from './notify.js';
import type { Relay } from './relay.js';

/** The most workspaces a bridge serves, configured and added together. */
export const MAX_WORKSPACES = 16;
/** A workspace's name: like a configured one's (letters, digits, _ . -), at most this long. */
export const MAX_NAME_CHARS = 64;
export const NAME_RE = /^[A-Za-z0-9_.-]+$/;

export interface AddWorkspaceRequest {
  name: string;
  url: string;
  token: string;
  workspaceId?: string | undefined;
}

export type AddWorkspaceError = 'NAME_TAKEN' | 'TOO_MANY' | 'HELPER_AUTH_FAILED' | 'BUSY';

export type AddWorkspaceResult =
  | { ok: true; name: string; online: boolean; replaced: boolean }
  | { ok: false; code: AddWorkspaceError; error: string };

export type RemoveWorkspaceResult = { ok: true; name: string } | { ok: false; code: 'UNKNOWN_WORKSPACE'; error: string };

/** What the API asks of the bridge; `owner` is the API client (any object, compared by identity). */
export interface WorkspaceHost {
  add(owner: object, req: AddWorkspaceRequest): Promise<AddWorkspaceResult>;
  remove(owner: object, name: string): Promise<RemoveWorkspaceResult>;
  /** The client went away: its workspaces go too. */
  removeAll(owner: object): Promise<void>;
}

interface Entry {
  owner: object;
  helper: HelperClient;
  /** false while its first connection is tried. */
  active: boolean;
  /** A replacement (the same client, a fresh token) is being connected. */
  renewing: boolean;
}

export interface RegistryOptions {
  relay: Relay;
  reporter: Reporter;
  notify: NotifyState;
  /** The configured workspaces' names: never taken by an added one. */
  configured: readonly string[];
  /** Every HelperClient the bridge stops at the end; added ones are pushed and spliced here. */
  helpers: HelperClient[];
  /** Options given to each HelperClient (reconnect delays, pace). */
  helperOptions: Omit<HelperClientOptions, 'name' | 'url' | 'token' | 'tokenFile' | 'workspaceId' | 'reporter'>;
  maxWorkspaces?: number;
  /** How long add() waits for the helper's first verdict (accepted, refused, unreachable). Default 10 s. */
  firstConnectMs?: number;
}

/** How the first connection went. */
type Outcome = 'ready' | 'unreachable' | 'timeout' | { code: string; message: string };

export class WorkspaceRegistry implements WorkspaceHost {
  /** Added workspaces by lower-cased name (pending ones too: the name is reserved). */
  private readonly entries = new Map<string, Entry>();
  private readonly configured: Set<string>;
  private readonly max: number;
  private readonly firstConnectMs: number;

  constructor(private readonly opts: RegistryOptions) {
    this.configured = new Set(opts.configured.map((n) => n.toLowerCase()));
    this.max = opts.maxWorkspaces ?? MAX_WORKSPACES;
    this.firstConnectMs = opts.firstConnectMs ?? 10000;
  }

  /** Names of the added workspaces, active ones only. */
  get names(): string[] {
    return [...this.entries.values()].filter((e) => e.active).map((e) => e.helper.name);
  }

  async add(owner: object, req: AddWorkspaceRequest): Promise<AddWorkspaceResult> {
    const key = req.name.toLowerCase();
    if (this.configured.has(key)) {
      return { ok: false, code: 'NAME_TAKEN', error: `"${req.name}" is a workspace of the bridge's own configuration; choose another name` };
    }
    const old = this.entries.get(key);
    if (old && old.owner !== owner) return { ok: false, code: 'NAME_TAKEN', error: `"${req.name}" was added by another client of the bridge; choose another name` };
    if (old && (!old.active || old.renewing)) return { ok: false, code: 'BUSY', error: `"${req.name}" is being added already; wait for that answer` };
    if (!old && this.configured.size + this.entries.size >= this.max) {
      return { ok: false, code: 'TOO_MANY', error: `the bridge serves at most ${this.max} workspaces` };
    }
    const helper = new HelperClient({
      ...this.opts.helperOptions,
      name: req.name,
      url: req.url,
      token: req.token,
      workspaceId: req.workspaceId,
      reporter: this.opts.reporter,
    });
    // The name is reserved while the first connection is tried (a replacement keeps the old one serving).
    const entry: Entry = { owner, helper, active: false, renewing: false };
    if (old) old.renewing = true;
    else this.entries.set(key, entry);
    this.opts.helpers.push(helper);
    const outcome = await this.firstConnect(helper);
    if (old) old.renewing = false;
    const gone = old ? this.entries.get(key) !== old : this.entries.get(key) !== entry;
    if (gone) {
      // The client went away (or removed it) meanwhile.
      await this.dispose(helper);
      return { ok: false, code: 'BUSY', error: `"${req.name}" was removed while it was being added` };
    }
    if (typeof outcome === 'object') {
      if (!old) this.entries.delete(key);
      await this.dispose(helper);
      this.opts.reporter.log('warn', `api: workspace "${req.name}" not added: the helper at ${req.url} refused its token (${outcome.code})`);
      return { ok: false, code: 'HELPER_AUTH_FAILED', error: `the helper at ${req.url} refused the token (${outcome.code}: ${outcome.message})` };
    }
    entry.active = true;
    this.entries.set(key, entry);
    this.opts.notify.bindWorkspaceId(req.name, req.workspaceId);
    this.opts.relay.addWorkspace(helper, old?.helper);
    if (old) await this.dispose(old.helper);
    const online = outcome === 'ready';
    this.opts.reporter.log('info', `api: workspace @${req.name} ${old ? 'renewed' : 'added'} (${req.url}${online ? '' : ', not reachable yet: retrying'})`);
    return { ok: true, name: req.name, online, replaced: old !== undefined };
  }

  async remove(owner: object, name: string): Promise<RemoveWorkspaceResult> {
    const key = name.toLowerCase();
    const e = this.entries.get(key);
    if (!e || e.owner !== owner) {
      return { ok: false, code: 'UNKNOWN_WORKSPACE', error: `"${name}" is not a workspace this client added` };
    }
    await this.drop(key, e);
    return { ok: true, name: e.helper.name };
  }

  async removeAll(owner: object): Promise<void> {
    const mine = [...this.entries].filter(([, e]) => e.owner === owner);
    await Promise.all(mine.map(([key, e]) => this.drop(key, e)));
  }

  private async drop(key: string, e: Entry): Promise<void> {
    this.entries.delete(key);
    // A pending one is stopped by add() when its first connection ends.
    if (!e.active) return;
    this.opts.relay.removeWorkspace(e.helper);
    this.opts.reporter.log('info', `api: workspace @${e.helper.name} removed`);
    await this.dispose(e.helper);
  }

  private async dispose(helper: HelperClient): Promise<void> {
    const i = this.opts.helpers.indexOf(helper);
    if (i >= 0) this.opts.helpers.splice(i, 1);
    await helper.stop();
  }

  /** Starts the client and waits for its first verdict. */
  private firstConnect(helper: HelperClient): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const done = (o: Outcome): void => {
        clearTimeout(timer);
        helper.off('ready', onReady);
        helper.off('authFailed', onFailed);
        helper.off('unreachable', onUnreachable);
        resolve(o);
      };
      const onReady = (): void => { done('ready'); };
      const onFailed = (f: { code: string; message: string }): void => { done(f); };
      const onUnreachable = (): void => { done('unreachable'); };
      const timer = setTimeout(() => { done('timeout'); }, this.firstConnectMs);
      helper.on('ready', onReady);
      helper.on('authFailed', onFailed);
      helper.on('unreachable', onUnreachable);
      helper.start();
    });
  }
}
