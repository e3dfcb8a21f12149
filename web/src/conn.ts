/* One WebSocket session with a helper: authentication, requests matched by
 * id, streams, events with `since`, and reconnection with exponential
 * backoff and jitter. The screens never touch the socket. */
import type { AuthOk, Envelope, ErrorInfo, EventData } from './protocol';
import { isObject, num, str } from './protocol';

export type Phase = 'connecting' | 'authenticating' | 'online' | 'waiting' | 'auth-failed' | 'stopped';

export interface ConnStatus {
  phase: Phase;
  /** When the next attempt starts (phase "waiting"). */
  retryAt?: number;
  /** Failed attempts in a row. */
  attempts: number;
  /** Why the last connection ended, in words. */
  reason?: string;
  /** Why authentication failed (phase "auth-failed"). */
  authError?: ErrorInfo;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StreamHandlers {
  onStart?: (data: Record<string, unknown>) => void;
  /** approval_pending: a `confirm` task waits for an approval before stream_start. */
  onPending?: (data: Record<string, unknown>) => void;
  onChunk: (data: Record<string, unknown>) => void;
  onEnd: (data: Record<string, unknown>) => void;
  onError: (err: ProtocolError) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: ProtocolError) => void;
  stream?: StreamHandlers;
}

export interface ConnOptions {
  url: string;
  workspaceId: string;
  token: string;
  /** Event kinds to subscribe to, given the session's scopes. */
  eventKinds: (scopes: string[]) => string[];
  getLastSeq: () => number | null;
  setLastSeq: (seq: number) => void;
  onDeviceToken: (token: string) => void;
  onEvent: (e: EventData) => void;
  onOnline: (session: AuthOk) => void;
  /** An `agent_update` of a followed conversation. */
  onAgentUpdate?: (data: Record<string, unknown>) => void;
}

const AUTH_FATAL = new Set(['AUTH_INVALID', 'AUTH_EXPIRED', 'WORKSPACE_MISMATCH']);
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
const PING_EVERY_MS = 25000;
const PONG_WITHIN_MS = 8000;
const OPEN_WITHIN_MS = 10000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Full jitter on an exponential step: half to all of min(cap, base·2^n). */
export function backoffDelay(attempt: number, random = Math.random): number {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(step * (0.5 + random() * 0.5));
}

function closeReason(code: number): string {
  switch (code) {
    case 1000: return 'closed by the editor';
    case 1001: return 'the helper stopped or moved';
    case 1006: return 'could not reach the helper';
    case 1008: return 'the connection fell behind';
    case 1009: return 'a message was too large';
    case 4001: return 'authentication ended';
    case 4002: return 'heartbeat timed out';
    case 4008: return 'too many requests';
    default: return `connection closed (${code})`;
  }
}

export class Connection {
  status: ConnStatus = { phase: 'connecting', attempts: 0 };
  session: AuthOk | null = null;
  /** Goes up each time a session is established: screens reload on it. */
  epoch = 0;
  private ws: WebSocket | null = null;
  private token: string;
  private pending = new Map<string, Pending>();
  private nextId = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private openTimer: ReturnType<typeof setTimeout> | undefined;
  private blockedByCsp = false;
  private authFailed: ErrorInfo | null = null;
  private listeners = new Set<() => void>();
  private readonly onVisible = () => {
    if (document.visibilityState === 'visible') this.nudge();
  };
  private readonly onNetOnline = () => {
    this.nudge();
  };
  /* The page's Content-Security-Policy (the helper's: connect only to
   * 'self') forbids a helper on another origin; say so instead of
   * "connecting" for ever. */
  private readonly onCsp = (e: SecurityPolicyViolationEvent) => {
    if (!this.ws || !e.blockedURI) return;
    try {
      if (new URL(e.blockedURI).host !== new URL(this.opts.url).host) return;
    } catch {
      return;
    }
    this.blockedByCsp = true;
    const ws = this.ws;
    this.ws = null;
    ws.close();
    this.onClosed(1006);
  };

  constructor(private readonly opts: ConnOptions) {
    this.token = opts.token;
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }

  private setStatus(s: ConnStatus): void {
    this.status = s;
    this.emit();
  }

  start(): void {
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('online', this.onNetOnline);
    document.addEventListener('securitypolicyviolation', this.onCsp);
    this.open();
  }

  stop(): void {
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('online', this.onNetOnline);
    document.removeEventListener('securitypolicyviolation', this.onCsp);
    clearTimeout(this.retryTimer);
    this.stopTimers();
    this.setStatus({ phase: 'stopped', attempts: 0 });
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    this.failPending('DISCONNECTED', 'The app left this workspace.');
  }

  /** Try now: after a wake-up, a network change or the user's tap. */
  nudge(): void {
    if (this.status.phase === 'waiting') {
      clearTimeout(this.retryTimer);
      this.open();
    } else if (this.status.phase === 'online') {
      this.checkAlive();
    }
  }

  /** Tries again after an authentication failure (the user asked). */
  retryAuth(): void {
    if (this.status.phase !== 'auth-failed') return;
    this.authFailed = null;
    this.open();
  }

  private open(): void {
    this.authFailed = null;
    this.setStatus({ ...this.status, phase: 'connecting', retryAt: undefined });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url);
    } catch {
      this.scheduleRetry('the helper\'s address is not valid');
      return;
    }
    this.ws = ws;
    clearTimeout(this.openTimer);
    this.openTimer = setTimeout(() => {
      if (this.ws === ws && ws.readyState === WebSocket.CONNECTING) {
        this.ws = null;
        ws.close();
        this.onClosed(1006);
      }
    }, OPEN_WITHIN_MS);
    ws.onopen = () => {
      clearTimeout(this.openTimer);
      if (this.ws !== ws) return;
      this.setStatus({ ...this.status, phase: 'authenticating' });
      this.sendRaw({ type: 'auth', id: `auth${++this.nextId}`, data: { token: this.token, workspaceId: this.opts.workspaceId } });
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let msg: unknown;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (isObject(msg) && typeof msg.type === 'string') this.onMessage(msg as unknown as Envelope);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClosed(ev.code);
    };
  }

  private onClosed(code: number): void {
    clearTimeout(this.openTimer);
    const wasOnline = this.status.phase === 'online';
    this.stopTimers();
    this.session = null;
    this.failPending('DISCONNECTED', 'The connection was lost.');
    if (this.authFailed) {
      this.setStatus({ phase: 'auth-failed', attempts: 0, authError: this.authFailed, reason: closeReason(code) });
      return;
    }
    // A session the helper ended with 4001 (the token expired, the secret
    // changed): authenticate again at once, and the answer says which.
    if (wasOnline && code === 4001) {
      this.status = { phase: 'waiting', attempts: 0, reason: closeReason(code) };
      this.open();
      return;
    }
    if (this.blockedByCsp) {
      this.blockedByCsp = false;
      this.scheduleRetry(`this page may not connect to ${new URL(this.opts.url).host}: open the app from that helper's address`);
      return;
    }
    this.scheduleRetry(closeReason(code));
  }

  private scheduleRetry(reason: string): void {
    const attempts = this.status.attempts + 1;
    const delay = backoffDelay(attempts - 1);
    this.setStatus({ phase: 'waiting', attempts, reason, retryAt: Date.now() + delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.open();
    }, delay);
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = undefined;
    this.pongTimer = undefined;
  }

  /** A ping that must be answered soon, or the socket is given up. */
  private checkAlive(): void {
    const ws = this.ws;
    if (!ws || this.pongTimer !== undefined) return;
    this.sendRaw({ type: 'ping', id: `ping${++this.nextId}` });
    this.pongTimer = setTimeout(() => {
      this.pongTimer = undefined;
      if (this.ws === ws) {
        this.ws = null;
        ws.close();
        this.onClosed(4002);
      }
    }, PONG_WITHIN_MS);
  }

  private sendRaw(obj: unknown): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  private failPending(code: string, message: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      const err = new ProtocolError(code, message);
      if (p.stream) p.stream.onError(err);
      else p.reject(err);
    }
  }

  private onMessage(msg: Envelope): void {
    const data = isObject(msg.data) ? msg.data : {};
    const id = msg.id === undefined ? undefined : String(msg.id);
    switch (msg.type) {
      case 'auth_response':
        this.onAuth(data);
        return;
      case 'pong':
        clearTimeout(this.pongTimer);
        this.pongTimer = undefined;
        return;
      case 'subscribed': {
        const seq = num(data.seq, 0);
        if (this.opts.getLastSeq() === null) this.opts.setLastSeq(seq);
        return;
      }
      case 'event':
        this.onEventMessage(data);
        return;
      case 'agent_update':
        this.opts.onAgentUpdate?.(data);
        return;
      default:
        break;
    }
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (!p) return;
    if (msg.type === 'command_response') {
      this.pending.delete(id);
      if (data.success === true) {
        if (p.stream) p.stream.onEnd(isObject(data.result) ? data.result : {});
        else p.resolve(data.result);
      } else {
        const e = isObject(data.error) ? data.error : {};
        const err = new ProtocolError(str(e.code, 'PROCESSING_ERROR'), str(e.message, 'The command failed.'));
        if (p.stream) p.stream.onError(err);
        else p.reject(err);
      }
    } else if (msg.type === 'error') {
      this.pending.delete(id);
      const err = new ProtocolError(str(data.code, 'PROCESSING_ERROR'), str(data.message, 'The helper refused the message.'));
      if (p.stream) p.stream.onError(err);
      else p.reject(err);
    } else if (p.stream) {
      if (msg.type === 'stream_start') p.stream.onStart?.(data);
      else if (msg.type === 'approval_pending') p.stream.onPending?.(data);
      else if (msg.type === 'stream_chunk') p.stream.onChunk(data);
      else if (msg.type === 'stream_end') {
        this.pending.delete(id);
        p.stream.onEnd(data);
      }
    }
  }

  private onAuth(data: Record<string, unknown>): void {
    if (data.success !== true) {
      const e = isObject(data.error) ? data.error : {};
      const code = str(e.code, 'AUTH_INVALID');
      const info = { code, message: str(e.message, 'Authentication failed.') };
      if (AUTH_FATAL.has(code)) this.authFailed = info;
      return; // the helper closes with 4001 next
    }
    const deviceToken = typeof data.deviceToken === 'string' && data.deviceToken !== '' ? data.deviceToken : undefined;
    if (deviceToken) {
      this.token = deviceToken;
      this.opts.onDeviceToken(deviceToken);
    }
    const session: AuthOk = {
      success: true,
      sessionId: str(data.sessionId),
      userId: str(data.userId),
      workspaceId: str(data.workspaceId),
      scopes: Array.isArray(data.scopes) ? data.scopes.filter((s): s is string => typeof s === 'string') : ['read'],
      heartbeatIntervalMs: num(data.heartbeatIntervalMs, 25000),
      expiresAt: num(data.expiresAt, 0),
    };
    this.session = session;
    this.epoch++;
    this.setStatus({ phase: 'online', attempts: 0 });
    this.stopTimers();
    this.pingTimer = setInterval(() => {
      this.checkAlive();
    }, PING_EVERY_MS);
    // Only the kinds this token may receive: the helper refuses a whole
    // subscribe that names one it may not (an approve-only token, say).
    const events = this.opts.eventKinds(session.scopes);
    if (events.length > 0) {
      const since = this.opts.getLastSeq();
      const sub: Record<string, unknown> = { events };
      if (since !== null) sub.since = since;
      this.sendRaw({ type: 'subscribe', id: `sub${++this.nextId}`, data: sub });
    }
    this.opts.onOnline(session);
  }

  private onEventMessage(data: Record<string, unknown>): void {
    const event = str(data.event);
    const seq = num(data.seq, -1);
    if (!event || seq < 0) return;
    if (event === 'resync') {
      // Events were missed (or the helper restarted and numbers anew):
      // continue from the helper's numbering, and let the views refresh.
      this.opts.setLastSeq(seq);
      this.opts.onEvent({ event, seq });
      return;
    }
    const last = this.opts.getLastSeq();
    if (last !== null && seq <= last) return; // already seen
    this.opts.setLastSeq(seq);
    this.opts.onEvent({ event, seq, payload: isObject(data.payload) ? data.payload : {} });
  }

  private request(name: string, args: Record<string, unknown> | undefined, stream?: StreamHandlers): { id: string; promise: Promise<unknown> } {
    const id = `c${++this.nextId}`;
    const promise = new Promise<unknown>((resolve, reject) => {
      if (this.status.phase !== 'online') {
        reject(new ProtocolError('OFFLINE', 'Not connected.'));
        return;
      }
      const msg: Envelope = { type: 'command', id, data: args ? { name, args } : { name } };
      this.pending.set(id, { resolve, reject, stream });
      if (!this.sendRaw(msg)) {
        this.pending.delete(id);
        reject(new ProtocolError('OFFLINE', 'Not connected.'));
      }
    });
    return { id, promise };
  }

  /** A command; RATE_LIMITED is retried with backoff a few times. */
  async command<T>(name: string, args?: Record<string, unknown>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.request(name, args).promise) as T;
      } catch (e) {
        if (e instanceof ProtocolError && e.code === 'RATE_LIMITED' && attempt < 4) {
          await sleep(backoffDelay(attempt));
          continue;
        }
        throw e;
      }
    }
  }

  /** A streamed command (task.run, agent.prompt); returns its id. */
  stream(name: string, args: Record<string, unknown>, handlers: StreamHandlers): string {
    const { id, promise } = this.request(name, args, handlers);
    promise.catch((e: unknown) => {
      handlers.onError(e instanceof ProtocolError ? e : new ProtocolError('PROCESSING_ERROR', String(e)));
    });
    return id;
  }
}
