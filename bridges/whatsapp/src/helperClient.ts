/**
 * A WebSocket client of one companion-helper, in chat mode: authenticates with
 * a token (re-read from --token-file whenever it changes), reconnects with
 * backoff and jitter, answers the helper's heartbeat (ws replies to PING
 * frames with PONG on its own), paces its chat messages under the helper's
 * commandsPerSecond and retries those refused with RATE_LIMITED.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import WebSocket from 'ws';
import { Backoff } from './backoff.js';
import type { Reporter } from './log.js';
import type { HelperEvent } from './notify.js';

export type HelperState = 'stopped' | 'connecting' | 'ready' | 'offline' | 'authFailed';

export interface HelperClientOptions {
  name: string;
  url: string;
  tokenFile?: string | undefined;
  /** A token given directly (used when there is no token file). */
  token?: string | undefined;
  workspaceId?: string | undefined;
  reporter: Reporter;
  /** Reconnect delays: initialMs doubling to maxMs, +-20 %. Default 1 s to 30 s. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** How often the token file is checked for a new token. Default 2000 ms. */
  tokenPollMs?: number;
  /** Chat messages sent per second at most (the helper allows 20 by default). Default 10. */
  sendsPerSecond?: number;
  /** A chat message refused RATE_LIMITED this many times fails. Default 10. */
  maxRateLimitRetries?: number;
}

export class HelperOfflineError extends Error {
  constructor(message = 'workspace offline') { super(message); this.name = 'HelperOfflineError'; }
}

export class HelperError extends Error {
  constructor(readonly code: string, message: string) { super(message); this.name = 'HelperError'; }
}

export interface AuthFailure { code: string; message: string }

interface Pending {
  id: string;
  seq: number;
  text: string;
  chat: string | undefined;
  parts: Map<number, string>;
  firstDone: boolean;
  resolve: (parts: string[]) => void;
  reject: (err: Error) => void;
  onLater: ((parts: string[]) => void) | undefined;
  rateLimited: number;
  quiet: ChatQuiet | undefined;
  quietTimer: NodeJS.Timeout | null;
  /** quiet.fn was called: the first reply group goes to onLater too. */
  handedOver: boolean;
}

/**
 * When the helper took a chat message (did not refuse it) and has not
 * answered within afterMs, fn is called once; from then on the first reply
 * group goes to onLater like the later ones (synchronously, so groups stay
 * in order) and the promise resolves with [].
 */
export interface ChatQuiet { afterMs: number; fn: () => void }

interface ServerMessage {
  type?: string;
  id?: string | number;
  data?: {
    success?: boolean;
    text?: string;
    part?: number;
    parts?: number;
    code?: string;
    message?: string;
    heartbeatIntervalMs?: number;
    error?: { code?: string; message?: string };
    event?: number | string;
    seq?: number;
    payload?: Record<string, unknown>;
    scopes?: unknown;
    result?: unknown;
  };
}

/** A command sent with HelperClient.command(), waiting for its command_response. */
interface PendingCommand {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const MAX_LINGERING = 256;

export interface HelperClientEvents {
  ready: () => void;
  offline: (why: string) => void;
  authFailed: (failure: AuthFailure) => void;
  /** The first connection attempts failed (the helper is not reachable); the client keeps retrying. */
  unreachable: () => void;
  /** A chat_reply without an id and without data.event (a notice from the helper). */
  notice: (text: string) => void;
  /** The helper confirmed a subscription; seq is its newest event. */
  subscribed: (seq: number) => void;
  /** An event pushed by the helper (including `resync`). */
  event: (event: HelperEvent) => void;
}

/**
 * What to subscribe to after every authentication; since() is read each
 * time, and events() gets the scopes the helper granted the token (kinds
 * the token may not receive must not be asked for: the helper refuses the
 * whole subscription).
 */
export interface EventSubscription {
  events: (scopes: ReadonlySet<string>) => readonly string[];
  since: () => number | null;
}

export class HelperClient extends EventEmitter {
  readonly name: string;
  private readonly opts: HelperClientOptions;
  private readonly reporter: Reporter;
  private ws: WebSocket | null = null;
  private stateValue: HelperState = 'stopped';
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private heartbeatMs = 25000;
  private token: string | null = null;
  private tokenUsed: string | null = null;
  private authFailure: AuthFailure | null = null;
  private authFailureReported = false;
  /** Set once the helper was reported unreachable, or once it was reached. */
  private unreachableReported = false;
  private readonly pending = new Map<string, Pending>();
  private readonly commands = new Map<string, PendingCommand>();
  private readonly queue: string[] = [];
  private pumpTimer: NodeJS.Timeout | null = null;
  private lastSendAt = 0;
  private pausedUntil = 0;
  private lastSlowdownAt = 0;
  /** Chat messages per second now (0: unpaced); lowered when the helper says RATE_LIMITED. */
  private rate: number;
  private seq = 0;
  private reauthSeq = 0;
  /** The helper refused a token refresh on the live session: reconnect with it rather than give up. */
  private refreshRefused = false;
  private subscription: EventSubscription | null = null;
  /** The kinds last asked for on this connection (what `unsubscribe` names). */
  private subscribedEvents: readonly string[] = [];
  private subSeq = 0;
  private scopeSet: ReadonlySet<string> = new Set();
  /** Counts, for logs and tests. */
  readonly stats = { connects: 0, rateLimited: 0, sent: 0 };

  constructor(opts: HelperClientOptions) {
    super();
    this.opts = opts;
    this.name = opts.name;
    this.reporter = opts.reporter;
    this.backoff = new Backoff(opts.reconnectInitialMs ?? 1000, opts.reconnectMaxMs ?? 30000);
    this.rate = opts.sendsPerSecond ?? 10;
  }

  override on<K extends keyof HelperClientEvents>(event: K, listener: HelperClientEvents[K]): this {
    return super.on(event, listener);
  }

  get state(): HelperState {
    return this.stateValue;
  }

  /** Whether the token comes from a token file (else it was given directly, e.g. through the bridge's API). */
  get hasTokenFile(): boolean {
    return this.opts.tokenFile !== undefined;
  }

  isReady(): boolean {
    return this.stateValue === 'ready';
  }

  /** The scopes the helper granted the token, as its last auth_response said (empty before). */
  get scopes(): ReadonlySet<string> {
    return this.scopeSet;
  }

  start(): void {
    if (this.stateValue !== 'stopped') return;
    this.token = this.readToken();
    if (this.opts.tokenFile) {
      watchFile(this.opts.tokenFile, { interval: this.opts.tokenPollMs ?? 2000 }, () => { this.onTokenFileChanged(); });
    }
    this.connect();
  }

  /** Closes the connection for good; pending requests fail as offline. */
  async stop(): Promise<void> {
    this.stateValue = 'stopped';
    if (this.opts.tokenFile) unwatchFile(this.opts.tokenFile);
    this.clearTimers();
    this.failPending('stopping');
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { ws.terminate(); resolve(); }, 1000);
        ws.once('close', () => { clearTimeout(t); resolve(); });
        ws.close(1000, 'bridge stopping');
      });
    }
  }

  /**
   * Sends text in chat mode. Resolves with the parts of the first reply
   * group, in order; later groups with the same id (a task's end) go to
   * onLater. Rejects with HelperOfflineError when the helper is not reachable
   * or goes away before answering. `chat` names the WhatsApp chat (an opaque
   * key), so the helper keeps one agent conversation per chat.
   */
  chat(text: string, onLater?: (parts: string[]) => void, onId?: (id: string) => void, quiet?: ChatQuiet, chat?: string): Promise<string[]> {
    if (!this.isReady()) return Promise.reject(new HelperOfflineError());
    const seq = ++this.seq;
    const id = `wa${seq}-${Math.random().toString(36).slice(2, 8)}`;
    onId?.(id);
    return new Promise<string[]>((resolve, reject) => {
      this.pending.set(id, { id, seq, text, chat, parts: new Map(), firstDone: false, resolve, reject, onLater, rateLimited: 0, quiet, quietTimer: null, handedOver: false });
      this.queue.push(id);
      this.pump();
    });
  }

  /**
   * Sends one protocol command (`{type:"command", data:{name, args}}`) and
   * resolves with its result; a refusal rejects with HelperError (the
   * helper's code and message), a helper that is not reachable or goes away
   * with HelperOfflineError, no answer within timeoutMs with HelperError
   * TIMEOUT. Not paced like chat: the bridge sends one per `file` / `diff
   * file` word, which the chat's own rate limit already bounds.
   */
  command(name: string, args: Record<string, unknown>, timeoutMs = 30000): Promise<unknown> {
    if (!this.isReady()) return Promise.reject(new HelperOfflineError());
    const id = `wacmd${++this.seq}-${Math.random().toString(36).slice(2, 8)}`;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.commands.delete(id);
        reject(new HelperError('TIMEOUT', `no answer to ${name} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.commands.set(id, { resolve, reject, timer });
      this.stats.sent++;
      this.send({ type: 'command', id, data: { name, args } });
    });
  }

  /**
   * Subscribes to events now (when connected) and after every
   * (re)authentication, with since() as `since` (omitted when null);
   * null unsubscribes.
   */
  setSubscription(sub: EventSubscription | null): void {
    const prev = this.subscription;
    this.subscription = sub;
    if (!this.isReady()) return;
    if (sub) this.sendSubscribe();
    else if (prev && this.subscribedEvents.length > 0) {
      this.send({ type: 'unsubscribe', id: `unsub${++this.subSeq}`, data: { events: this.subscribedEvents } });
      this.subscribedEvents = [];
    }
  }

  get subscribedTo(): EventSubscription | null {
    return this.subscription;
  }

  private sendSubscribe(): void {
    const sub = this.subscription;
    if (!sub) return;
    const events = sub.events(this.scopeSet);
    this.subscribedEvents = events;
    const data: { events: readonly string[]; since?: number } = { events };
    const since = sub.since();
    if (since !== null) data.since = since;
    this.reporter.log('debug', `[${this.name}] subscribing to ${events.join(', ')}${since !== null ? ` since ${since}` : ''}`);
    this.send({ type: 'subscribe', id: `sub${++this.subSeq}`, data });
  }

  private readToken(): string | null {
    if (this.opts.tokenFile) {
      try {
        const t = readFileSync(this.opts.tokenFile, 'utf8').trim();
        return t.length > 0 ? t : null;
      } catch (e) {
        this.reporter.log('warn', `[${this.name}] cannot read token file ${this.opts.tokenFile}: ${(e as Error).message}`);
        return null;
      }
    }
    return this.opts.token ?? null;
  }

  private onTokenFileChanged(): void {
    if (this.stateValue === 'stopped') return;
    const t = this.readToken();
    if (!t || t === this.token) return;
    this.token = t;
    this.reporter.log('info', `[${this.name}] token file changed`);
    if (this.stateValue === 'ready' && this.ws) {
      // Refresh the live session (same user only); a refusal closes it 4001.
      this.send({ type: 'auth', id: `reauth${++this.reauthSeq}`, data: this.authData(t) });
      this.tokenUsed = t;
    } else if (this.stateValue === 'authFailed' || this.stateValue === 'offline') {
      this.backoff.reset();
      this.scheduleReconnect(0);
    }
  }

  private authData(token: string): Record<string, string> {
    const d: Record<string, string> = { token };
    if (this.opts.workspaceId) d.workspaceId = this.opts.workspaceId;
    return d;
  }

  private connect(): void {
    this.stateValue = 'connecting';
    this.authFailure = null;
    const token = this.token ?? this.readToken();
    this.token = token;
    if (!token) {
      this.onAuthFailed({ code: 'NO_TOKEN', message: `no token (${this.opts.tokenFile ? `token file ${this.opts.tokenFile} is missing or empty` : 'none configured'})` });
      return;
    }
    this.stats.connects++;
    const ws = new WebSocket(this.opts.url, { handshakeTimeout: 10000 });
    this.ws = ws;
    ws.on('open', () => {
      this.tokenUsed = token;
      this.send({ type: 'auth', id: 'auth', data: this.authData(token) });
      this.armLiveness();
    });
    ws.on('ping', () => { this.armLiveness(); });
    ws.on('message', (data) => {
      this.armLiveness();
      let msg: ServerMessage;
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
      try { msg = JSON.parse(text) as ServerMessage; } catch { return; }
      this.onMessage(msg);
    });
    ws.on('error', (e) => {
      this.reporter.log('debug', `[${this.name}] socket error: ${e.message}`);
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose(code, reason.toString());
    });
  }

  private onMessage(msg: ServerMessage): void {
    const id = msg.id === undefined ? undefined : String(msg.id);
    switch (msg.type) {
      case 'auth_response': {
        if (msg.data?.success) {
          const before = [...this.scopeSet].sort().join(' ');
          if (Array.isArray(msg.data.scopes)) this.scopeSet = new Set(msg.data.scopes.filter((x): x is string => typeof x === 'string'));
          if (id === 'auth') {
            this.heartbeatMs = msg.data.heartbeatIntervalMs ?? 25000;
            this.stateValue = 'ready';
            this.unreachableReported = true;
            this.backoff.reset();
            if (this.authFailureReported) this.reporter.log('info', `[${this.name}] authenticated again`);
            this.authFailureReported = false;
            this.reporter.log('info', `[${this.name}] connected to ${this.opts.url}`);
            this.reporter.event('status', { workspace: this.name, helper: 'online' });
            this.sendSubscribe();
            this.emit('ready');
            this.pump();
          } else {
            this.reporter.log('info', `[${this.name}] session token refreshed`);
            // New scopes may change what the subscription may ask for (approve: the approvals).
            const after = [...this.scopeSet].sort().join(' ');
            if (after !== before) {
              this.reporter.log('info', `[${this.name}] the token's scopes are now: ${after}`);
              this.sendSubscribe();
            }
          }
        } else {
          const err = msg.data?.error ?? {};
          if (id?.startsWith('reauth')) {
            // A refresh may not change the user (a token minted with another --user):
            // the helper closes the session, and the new token gets a session of its own.
            this.refreshRefused = true;
            this.reporter.log('info', `[${this.name}] the helper refused the new token on the live session (${err.code ?? 'AUTH_INVALID'}: ${err.message ?? ''}); starting a new session with it`);
            return;
          }
          this.authFailure = { code: err.code ?? 'AUTH_INVALID', message: err.message ?? 'authentication failed' };
        }
        return;
      }
      case 'command_response': {
        const c = id !== undefined ? this.commands.get(id) : undefined;
        if (!c) return;
        this.commands.delete(id!);
        clearTimeout(c.timer);
        if (msg.data?.success === true) c.resolve(msg.data.result);
        else c.reject(new HelperError(msg.data?.error?.code ?? 'ERROR', msg.data?.error?.message ?? 'the command failed'));
        return;
      }
      case 'chat_reply':
        if (id === undefined) {
          // The helper's own chat `notify on` pushes (data.event): the bridge
          // handles notifications itself through `subscribe`, so these are ignored.
          if (msg.data?.event !== undefined) {
            this.reporter.log('debug', `[${this.name}] ignored an unsolicited chat notification (event ${String(msg.data.event)})`);
            return;
          }
          if (typeof msg.data?.text === 'string') this.emit('notice', msg.data.text);
          return;
        }
        this.onChatReply(id, msg.data ?? {});
        return;
      case 'subscribed':
        if (typeof msg.data?.seq === 'number') this.emit('subscribed', msg.data.seq);
        return;
      case 'event': {
        const d = msg.data;
        if (typeof d?.event !== 'string' || typeof d.seq !== 'number') return;
        this.emit('event', { event: d.event, seq: d.seq, payload: d.payload ?? {} });
        return;
      }
      case 'error': {
        const code = msg.data?.code ?? 'ERROR';
        const c = id !== undefined ? this.commands.get(id) : undefined;
        if (c) {
          this.commands.delete(id!);
          clearTimeout(c.timer);
          c.reject(new HelperError(code, msg.data?.message ?? code));
          return;
        }
        const p = id !== undefined ? this.pending.get(id) : undefined;
        if (!p) {
          if (id?.startsWith('sub')) {
            this.reporter.log('warn', `[${this.name}] the helper refused the event subscription (${code}: ${msg.data?.message ?? ''})`);
            return;
          }
          if (code === 'AUTH_REQUIRED') this.authFailure = { code, message: msg.data?.message ?? 'authentication required' };
          this.reporter.log('debug', `[${this.name}] error ${code}: ${msg.data?.message ?? ''}`);
          return;
        }
        this.stopQuiet(p);
        if (code === 'RATE_LIMITED' && !p.firstDone) {
          this.stats.rateLimited++;
          p.rateLimited++;
          if (p.rateLimited > (this.opts.maxRateLimitRetries ?? 10)) {
            this.pending.delete(p.id);
            p.reject(new HelperError(code, 'the workspace is busy; try again in a moment'));
            return;
          }
          // Back off: the whole queue pauses, sends are spaced further apart,
          // and this message goes back in its place (commands keep their order).
          const now = Date.now();
          const delay = Math.min(5000, 250 * 2 ** Math.min(p.rateLimited - 1, 5));
          this.pausedUntil = Math.max(this.pausedUntil, now + delay);
          if (now - this.lastSlowdownAt > 1000) {
            this.lastSlowdownAt = now;
            this.rate = this.rate <= 0 ? 10 : Math.max(1, this.rate / 2);
          }
          let at = this.queue.findIndex((qid) => (this.pending.get(qid)?.seq ?? Infinity) > p.seq);
          if (at < 0) at = this.queue.length;
          this.queue.splice(at, 0, p.id);
          this.reporter.log('debug', `[${this.name}] RATE_LIMITED, retrying in ${delay} ms`);
          this.pump();
          return;
        }
        if (!p.firstDone) {
          this.pending.delete(p.id);
          p.reject(new HelperError(code, msg.data?.message ?? code));
        }
        return;
      }
      default:
        return;
    }
  }

  private onChatReply(id: string, data: NonNullable<ServerMessage['data']>): void {
    const p = this.pending.get(id);
    if (!p) {
      this.reporter.log('debug', `[${this.name}] chat_reply for unknown id ${id}`);
      return;
    }
    this.stopQuiet(p);
    const total = Math.max(1, data.parts ?? 1);
    p.parts.set(Math.max(1, data.part ?? 1), data.text ?? '');
    if (p.parts.size < total) return;
    const ordered: string[] = [];
    for (let i = 1; i <= total; i++) ordered.push(p.parts.get(i) ?? '');
    p.parts = new Map();
    if (!p.firstDone) {
      p.firstDone = true;
      if (p.handedOver && p.onLater) {
        p.onLater(ordered);
        p.resolve([]);
      } else {
        p.resolve(ordered);
      }
      this.trimLingering();
    } else if (p.onLater) {
      p.onLater(ordered);
    }
  }

  /** Answered requests stay a while for a later reply group (a task's end); bounded. */
  private trimLingering(): void {
    let lingering = 0;
    for (const p of this.pending.values()) if (p.firstDone) lingering++;
    for (const [id, p] of this.pending) {
      if (lingering <= MAX_LINGERING) break;
      if (p.firstDone) { this.pending.delete(id); lingering--; }
    }
  }

  private pump(): void {
    if (this.pumpTimer || this.stateValue !== 'ready') return;
    const gap = this.rate > 0 ? 1000 / this.rate : 0;
    while (this.queue.length > 0) {
      const now = Date.now();
      const wait = Math.max(this.pausedUntil - now, this.lastSendAt + gap - now);
      if (wait > 0) {
        this.pumpTimer = setTimeout(() => { this.pumpTimer = null; this.pump(); }, wait);
        return;
      }
      const id = this.queue.shift()!;
      const p = this.pending.get(id);
      if (!p) continue;
      this.lastSendAt = now;
      this.stats.sent++;
      this.send({ type: 'chat', id, data: p.chat ? { text: p.text, chat: p.chat } : { text: p.text } });
      const quiet = p.quiet;
      if (quiet) {
        // From this send (a refused one is sent again, and timed again).
        this.stopQuiet(p);
        p.quietTimer = setTimeout(() => {
          p.quietTimer = null;
          if (p.firstDone || this.pending.get(p.id) !== p) return;
          p.handedOver = true;
          quiet.fn();
        }, quiet.afterMs);
      }
    }
  }

  private stopQuiet(p: Pending): void {
    if (p.quietTimer) clearTimeout(p.quietTimer);
    p.quietTimer = null;
  }

  private send(obj: unknown): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  private armLiveness(): void {
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    // The helper pings every heartbeatIntervalMs; silence for much longer means a dead link.
    this.livenessTimer = setTimeout(() => {
      this.reporter.log('warn', `[${this.name}] no heartbeat from the helper; reconnecting`);
      this.ws?.terminate();
    }, Math.max(this.heartbeatMs * 2.5, 30000));
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.reconnectTimer = this.livenessTimer = this.pumpTimer = null;
  }

  private failPending(why: string): void {
    this.queue.length = 0;
    for (const p of this.pending.values()) {
      this.stopQuiet(p);
      if (!p.firstDone) p.reject(new HelperOfflineError(why));
    }
    this.pending.clear();
    for (const c of this.commands.values()) {
      clearTimeout(c.timer);
      c.reject(new HelperOfflineError(why));
    }
    this.commands.clear();
  }

  private onClose(code: number, reason: string): void {
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.livenessTimer = this.pumpTimer = null;
    const wasReady = this.stateValue === 'ready';
    this.failPending(`connection closed (${code})`);
    if (this.stateValue === 'stopped') return;
    if (this.refreshRefused && !this.authFailure) {
      this.refreshRefused = false;
      this.stateValue = 'offline';
      this.scheduleReconnect(0);
      return;
    }
    this.refreshRefused = false;
    if (code === 4001 || this.authFailure) {
      const failure = this.authFailure ?? { code: 'AUTH_CLOSED', message: reason || 'authentication failed or token expired' };
      const fresh = this.readToken();
      if (fresh && fresh !== this.tokenUsed && !this.authFailure) {
        // The session ended (e.g. expiry) but a new token is already there.
        this.token = fresh;
        this.stateValue = 'offline';
        this.scheduleReconnect(0);
        return;
      }
      this.onAuthFailed(failure);
      return;
    }
    this.stateValue = 'offline';
    if (wasReady) {
      this.reporter.log('warn', `[${this.name}] helper connection closed (${code}${reason ? ` ${reason}` : ''}); reconnecting`);
      this.reporter.event('status', { workspace: this.name, helper: 'offline', code });
      this.emit('offline', `closed ${code}`);
    } else if (!this.unreachableReported) {
      this.unreachableReported = true;
      this.reporter.log('warn', `[${this.name}] cannot reach the helper at ${this.opts.url}; retrying with backoff (messages get "Workspace offline." meanwhile)`);
      this.reporter.event('status', { workspace: this.name, helper: 'offline', code });
      this.emit('unreachable');
    }
    this.scheduleReconnect(this.backoff.next());
  }

  private onAuthFailed(failure: AuthFailure): void {
    this.stateValue = 'authFailed';
    if (!this.authFailureReported) {
      this.authFailureReported = true;
      this.reporter.log('error', this.opts.tokenFile
        ? `[${this.name}] helper refused the token (${failure.code}: ${failure.message}); put a fresh token in ${this.opts.tokenFile} (companion-helper token --scope read,run)`
        : `[${this.name}] helper refused the token (${failure.code}: ${failure.message}); the program that gave it must give a fresh one`);
      this.reporter.event('error', { workspace: this.name, code: failure.code, message: failure.message });
      this.reporter.event('status', { workspace: this.name, helper: 'authFailed' });
      this.emit('authFailed', failure);
    }
    // Without a token file there is nothing to wait for: keep retrying slowly.
    if (!this.opts.tokenFile) this.scheduleReconnect(Math.max(this.backoff.next(), 30000));
  }

  private scheduleReconnect(delay: number): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stateValue !== 'stopped') this.connect();
    }, delay);
  }
}
