/**
 * The bridge's own API (`--api-port`): a WebSocket server on 127.0.0.1 for
 * local programs (Python clients of the original BridgeServer, the VS Code
 * extension) to see WhatsApp's QR code and status, receive the allowed
 * chats' messages and send text to allowed chats.
 *
 * Wire contract (README "The bridge's API"):
 *   client -> {type:"auth", token}        within authTimeoutMs (5 s), first
 *   bridge -> {type:"auth", ok:true}      then the current status (and QR)
 *   bridge -> {type:"qr", qr} | {type:"status", status, detail?, reason?}
 *           | {type:"message", from, chat, text, timestamp, id, isGroup}
 *   client -> {type:"send", to, text}     -> {type:"sent", to, id} | {type:"error", error, code, to}
 *   client -> {type:"logout"}             -> {type:"logout", ok:true} (the device is unlinked, its session deleted)
 *   bridge -> {type:"pairing", code, from, expiresAt}   a stranger got a pairing code (pending ones after auth too)
 *           | {type:"allowed", number}                  a code was approved: the sender may command
 *   client -> {type:"approvePairing"|"denyPairing", code}
 *          -> {type:"pairingResult", action, code, ok:true, number} | {..., ok:false, error, reason}
 *   client -> {type:"addWorkspace", name, url, token, workspaceId?}
 *          -> {type:"workspaceAdded", name, online, replaced} | {type:"error", code, error, name}
 *             (the bridge serves that helper as `@name` until this client's socket closes)
 *   client -> {type:"removeWorkspace", name} -> {type:"workspaceRemoved", name} | {type:"error", code, error, name}
 * Errors: {type:"error", code, error}. Auth failures close with 4001.
 *
 * Who may connect: loopback only (the listen address is fixed), no Origin
 * header (browsers are refused), a loopback Host with this port (DNS
 * rebinding), and the token. What a client may do is bounded by the relay's
 * allowlist: messages of chats the relay would answer, sends to those chats.
 *
 * Ownership: BridgeApi owns its HTTP server, the WebSocket server and the
 * client sockets; the transport and the allow check belong to the bridge.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, constants as fsc, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import type { Reporter } from './log.js';
import type { PairingCodes, PendingCode } from './pairingCodes.js';
import type { ChatTransport, ConnectionUpdate, IncomingMessage } from './transport.js';
import type { WorkspaceHost } from './workspaces.js';
import { MAX_NAME_CHARS, NAME_RE } from './workspaces.js';
import { bridgeMessageId, isBridgeMessageId, jidToE164, normalizeE164, normalizeJid } from './transport.js';

/** The only address the API listens on. */
export const API_HOST = '127.0.0.1';
export const API_TOKEN_FILE = 'api-token';
/** Close code for a client that did not authenticate (none in time, a wrong token, anything else first). */
export const CLOSE_AUTH = 4001;
/** The shortest token accepted from BRIDGE_TOKEN or the token file. */
export const MIN_TOKEN_LENGTH = 16;

export type ApiStatus = 'starting' | 'connecting' | 'qr' | 'connected' | 'disconnected' | 'logged_out';

export interface ApiTuning {
  /** How long a new client has to authenticate (default 5000 ms). */
  authTimeoutMs?: number;
  /** Longest `text` of a send, in characters (default 16384). */
  maxTextChars?: number;
  /** Sends per client per minute (default 30). */
  sendsPerMinute?: number;
  /** Bytes a client may leave unread before it is dropped (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Connections at once, authenticated or not (default 16). */
  maxClients?: number;
  /** Ping interval; a client that missed the previous pong is dropped (default 30000 ms). */
  pingMs?: number;
  /** Where BRIDGE_TOKEN is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface ApiOptions extends ApiTuning {
  /** 0: any free port. */
  port: number;
  /** The token clients must send; see loadApiToken. */
  token: string;
  transport: ChatTransport;
  reporter: Reporter;
  /** The relay's verdict on an incoming message: may this chat command? (the same allowlist) */
  allows: (m: IncomingMessage) => boolean;
  /** Numbers (E.164) and groups (JIDs) of the allowlist, for checking a send's `to`. */
  allow: readonly string[];
  groups: readonly string[];
  /** Pairing codes: announced to clients, approved or denied by them. */
  pairing?: PairingCodes;
  /** Workspaces added by clients (addWorkspace); none: those requests are refused. */
  workspaces?: WorkspaceHost;
}

/** A problem that stops the API from starting (a bad token file, the port taken, ...): its message is for the user. */
export class ApiStartError extends Error {
  override name = 'ApiStartError';
}

/**
 * The API token: BRIDGE_TOKEN when set (and not empty), else the content of
 * `<stateDir>/api-token`, created on first start (0600, 32 random bytes in
 * base64url). A token file readable by anyone else, not a regular file, or
 * a token shorter than MIN_TOKEN_LENGTH is refused.
 */
export function loadApiToken(stateDir: string, env: NodeJS.ProcessEnv = process.env): { token: string; source: string } {
  const fromEnv = env.BRIDGE_TOKEN;
  if (fromEnv !== undefined && fromEnv.length > 0) {
    if (fromEnv.trim().length < MIN_TOKEN_LENGTH) throw new ApiStartError(`BRIDGE_TOKEN is too short (at least ${MIN_TOKEN_LENGTH} characters)`);
    return { token: fromEnv.trim(), source: 'BRIDGE_TOKEN' };
  }
  const file = path.join(stateDir, API_TOKEN_FILE);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ApiStartError(`cannot create ${stateDir}: ${(e as Error).message}`);
  }
  let fd: number;
  let created = false;
  try {
    fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    created = true;
    try {
      writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ApiStartError(`cannot create ${file}: ${(e as Error).message}`);
  }
  let text: string;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symbolic link' : (e as Error).message;
    throw new ApiStartError(`cannot read ${file}: ${why}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ApiStartError(`${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new ApiStartError(`${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
    }
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new ApiStartError(`${file} belongs to another user`);
    text = readFileSync(fd, 'utf8').trim();
  } finally {
    closeSync(fd);
  }
  if (text.length < MIN_TOKEN_LENGTH) throw new ApiStartError(`the token in ${file} is too short (at least ${MIN_TOKEN_LENGTH} characters)`);
  return { token: text, source: created ? `${file} (created)` : file };
}

/** Constant-time comparison (the digests have one length whatever the inputs). */
function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Host names that reach this machine only: anything else may be a rebound name. */
function hostAllowed(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const m = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/i.exec(host);
  return m !== null && Number(m[2]) === port;
}

interface Client {
  ws: WebSocket;
  authed: boolean;
  authTimer: NodeJS.Timeout | null;
  alive: boolean;
  sends: number[];
}

interface StatusFrame {
  type: 'status';
  status: ApiStatus;
  detail?: string;
  reason?: string;
  willReconnect?: boolean;
}

type ErrorCode = 'AUTH_TIMEOUT' | 'AUTH_FAILED' | 'AUTH_REQUIRED' | 'BAD_JSON' | 'BAD_REQUEST' | 'UNKNOWN_TYPE'
  | 'NOT_ALLOWED' | 'TOO_LONG' | 'RATE_LIMITED' | 'NOT_CONNECTED' | 'SEND_FAILED'
  | 'NAME_TAKEN' | 'TOO_MANY' | 'HELPER_AUTH_FAILED' | 'BUSY' | 'UNKNOWN_WORKSPACE';

/** The longest helper token an addWorkspace may carry. */
const MAX_HELPER_TOKEN_CHARS = 8192;

/**
 * Why a helper URL from addWorkspace is refused, or null: ws:// or wss://,
 * and ws:// (the token in clear) only to this machine.
 */
function helperUrlProblem(u: string): string | null {
  let parsed: URL;
  try { parsed = new URL(u); } catch { return '"url" is not a URL'; }
  // Credentials in a URL end up in logs: the token field is the only place for them.
  if (parsed.username !== '' || parsed.password !== '') return '"url" may not hold a user or password (the token goes in "token")';
  if (parsed.protocol === 'wss:') return null;
  if (parsed.protocol !== 'ws:') return `"url" must be a ws:// or wss:// URL, not ${parsed.protocol}`;
  const h = parsed.hostname.toLowerCase();
  if (h === '127.0.0.1' || h === 'localhost' || h === '[::1]') return null;
  return `"url": ws:// only to this machine (127.0.0.1, localhost, [::1]); use wss:// for ${parsed.hostname}`;
}

/** Chats of allowed messages kept as send destinations (for contacts addressed by LID). */
const MAX_SEEN_CHATS = 1000;
/** A `to` longer than this is no chat id. */
const MAX_TO_CHARS = 128;

export class BridgeApi {
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly seenChats = new Set<string>();
  private readonly allowNumbers: Set<string>;
  private readonly groups: Set<string>;
  private status: StatusFrame = { type: 'status', status: 'starting' };
  private lastQr: string | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private boundPort = 0;
  private readonly authTimeoutMs: number;
  private readonly maxTextChars: number;
  private readonly sendsPerMinute: number;
  private readonly maxBuffered: number;
  private readonly maxClients: number;
  private readonly pingMs: number;
  private readonly onQrBound = (qr: string): void => { this.onQr(qr); };
  private readonly onConnectionBound = (u: ConnectionUpdate): void => { this.onConnection(u); };
  private readonly onMessageBound = (m: IncomingMessage): void => { this.onMessage(m); };
  private readonly onPairingBound = (p: PendingCode): void => { this.broadcast(pairingFrame(p)); };
  private readonly onAllowedBound = (a: { number: string }): void => {
    const e164 = normalizeE164(a.number);
    if (e164 && !a.number.includes('@')) this.allowNumbers.add(e164);
    this.broadcast({ type: 'allowed', number: a.number });
  };

  private constructor(private readonly opts: ApiOptions) {
    this.authTimeoutMs = opts.authTimeoutMs ?? 5000;
    this.maxTextChars = opts.maxTextChars ?? 16384;
    this.sendsPerMinute = opts.sendsPerMinute ?? 30;
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    this.maxClients = opts.maxClients ?? 16;
    this.pingMs = opts.pingMs ?? 30000;
    this.allowNumbers = new Set(opts.allow.map((a) => normalizeE164(a)).filter((a): a is string => a !== null));
    this.groups = new Set(opts.groups);
    // Room for a text of maxTextChars 4-byte characters, JSON-escaped, and the rest of the frame.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.maxTextChars * 6 + 4096 });
    this.server = http.createServer((req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('companion-whatsapp API: WebSocket only\n');
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket, head) => {
      const refuse = (code: number, why: string): void => {
        socket.end(`HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${why}\n`);
      };
      if (req.headers.origin !== undefined) { refuse(403, 'Origin refused: the API is not for browsers'); return; }
      if (!hostAllowed(req.headers.host, this.boundPort)) { refuse(403, 'Host refused: use 127.0.0.1 or localhost'); return; }
      if ((req.url ?? '/').split('?')[0] !== '/') { refuse(404, 'not found (the API is at /)'); return; }
      if (this.clients.size >= this.maxClients || this.closing) { refuse(503, 'too many clients'); return; }
      this.wss.handleUpgrade(req, socket, head, (ws) => { this.accept(ws); });
    });
    this.server.on('clientError', (_e, socket) => { socket.destroy(); });
    opts.transport.on('qr', this.onQrBound);
    opts.transport.on('connection', this.onConnectionBound);
    opts.transport.on('message', this.onMessageBound);
    opts.pairing?.on('pairing', this.onPairingBound);
    opts.pairing?.on('allowed', this.onAllowedBound);
  }

  /** Listens on 127.0.0.1:port and follows the transport's events. */
  static async start(opts: ApiOptions): Promise<BridgeApi> {
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new ApiStartError(`--api-port: not a port: ${opts.port}`);
    const api = new BridgeApi(opts);
    try {
      await new Promise<void>((resolve, reject) => {
        api.server.once('error', reject);
        api.server.listen({ host: API_HOST, port: opts.port, exclusive: true }, () => {
          api.server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      api.detach();
      throw new ApiStartError(`api: cannot listen on ${API_HOST}:${opts.port}: ${(e as Error).message}`);
    }
    api.boundPort = (api.server.address() as AddressInfo).port;
    api.pingTimer = setInterval(() => { api.heartbeat(); }, api.pingMs);
    api.pingTimer.unref();
    opts.reporter.log('info', `api: listening on ${API_HOST}:${api.boundPort}`);
    return api;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Authenticated clients connected now. */
  get clientCount(): number {
    let n = 0;
    for (const c of this.clients) if (c.authed) n++;
    return n;
  }

  /** Closes every client (1001) and stops listening. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.detach();
      if (this.pingTimer) clearInterval(this.pingTimer);
      const gone = [...this.clients].map((c) => new Promise<void>((resolve) => {
        if (c.authTimer) clearTimeout(c.authTimer);
        c.ws.once('close', () => { resolve(); });
        c.ws.close(1001, 'bridge stopping');
        setTimeout(() => { c.ws.terminate(); resolve(); }, 1000).unref();
      }));
      await Promise.all(gone);
      await new Promise<void>((resolve) => { this.server.close(() => { resolve(); }); });
    })();
    return this.closing;
  }

  private detach(): void {
    this.opts.transport.off('qr', this.onQrBound);
    this.opts.transport.off('connection', this.onConnectionBound);
    this.opts.transport.off('message', this.onMessageBound);
    this.opts.pairing?.off('pairing', this.onPairingBound);
    this.opts.pairing?.off('allowed', this.onAllowedBound);
  }

  private accept(ws: WebSocket): void {
    const c: Client = { ws, authed: false, authTimer: null, alive: true, sends: [] };
    this.clients.add(c);
    c.authTimer = setTimeout(() => {
      this.reject(c, 'AUTH_TIMEOUT', `no {type:"auth", token} within ${this.authTimeoutMs / 1000} s`);
    }, this.authTimeoutMs);
    ws.on('pong', () => { c.alive = true; });
    ws.on('message', (data: RawData, isBinary: boolean) => { this.onFrame(c, data, isBinary); });
    ws.on('close', () => {
      if (c.authTimer) clearTimeout(c.authTimer);
      this.clients.delete(c);
      // The workspaces this client added go with it (its window went away).
      if (c.authed) {
        this.opts.workspaces?.removeAll(c).catch((e: unknown) => {
          this.opts.reporter.log('warn', `api: removing a client's workspaces failed: ${(e as Error).message}`);
        });
      }
    });
    ws.on('error', () => { /* 'close' follows */ });
  }

  private heartbeat(): void {
    for (const c of this.clients) {
      if (!c.alive) { c.ws.terminate(); continue; }
      c.alive = false;
      c.ws.ping();
    }
  }

  /** Sends one frame; a client with more than maxBuffered unread is dropped. */
  private sendTo(c: Client, frame: Record<string, unknown>): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    const data = JSON.stringify(frame);
    if (c.ws.bufferedAmount + Buffer.byteLength(data) > this.maxBuffered) {
      this.opts.reporter.log('warn', 'api: dropped a client that does not read what it is sent');
      c.ws.terminate();
      return;
    }
    c.ws.send(data);
  }

  private error(c: Client, code: ErrorCode, error: string, extra: Record<string, unknown> = {}): void {
    this.sendTo(c, { type: 'error', code, error, ...extra });
  }

  private reject(c: Client, code: ErrorCode, error: string): void {
    if (c.authTimer) { clearTimeout(c.authTimer); c.authTimer = null; }
    this.error(c, code, error);
    c.ws.close(CLOSE_AUTH, code === 'AUTH_TIMEOUT' ? 'auth timeout' : 'unauthorized');
  }

  private broadcast(frame: Record<string, unknown>): void {
    for (const c of this.clients) if (c.authed) this.sendTo(c, frame);
  }

  private onFrame(c: Client, data: RawData, isBinary: boolean): void {
    let msg: unknown;
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
    } catch {
      if (!c.authed) { this.reject(c, 'AUTH_REQUIRED', 'the first message must be {"type":"auth","token":"..."}'); return; }
      this.error(c, 'BAD_JSON', 'not a JSON text message');
      return;
    }
    const obj = typeof msg === 'object' && msg !== null && !Array.isArray(msg) ? msg as Record<string, unknown> : null;
    const type = obj && typeof obj.type === 'string' ? obj.type : null;
    if (!c.authed) {
      if (type !== 'auth') { this.reject(c, 'AUTH_REQUIRED', 'the first message must be {"type":"auth","token":"..."}'); return; }
      if (typeof obj!.token !== 'string' || !sameToken(obj!.token, this.opts.token)) { this.reject(c, 'AUTH_FAILED', 'wrong token'); return; }
      if (c.authTimer) { clearTimeout(c.authTimer); c.authTimer = null; }
      c.authed = true;
      this.sendTo(c, { type: 'auth', ok: true });
      this.sendTo(c, { ...this.status });
      if (this.status.status === 'qr' && this.lastQr !== null) this.sendTo(c, { type: 'qr', qr: this.lastQr });
      for (const p of this.opts.pairing?.list() ?? []) this.sendTo(c, pairingFrame(p));
      return;
    }
    if (!obj) { this.error(c, 'BAD_REQUEST', 'a message is a JSON object with a "type"'); return; }
    switch (type) {
      case 'send': this.onSend(c, obj); return;
      case 'logout': this.onLogout(c); return;
      case 'approvePairing': case 'denyPairing': this.onPairingRequest(c, type, obj); return;
      case 'addWorkspace': this.onAddWorkspace(c, obj); return;
      case 'removeWorkspace': this.onRemoveWorkspace(c, obj); return;
      case 'auth': this.error(c, 'BAD_REQUEST', 'already authenticated'); return;
      case null: this.error(c, 'BAD_REQUEST', 'a message is a JSON object with a "type"'); return;
      default: this.error(c, 'UNKNOWN_TYPE', `unknown type "${type.slice(0, 40)}" (known: auth, send, logout, approvePairing, denyPairing, addWorkspace, removeWorkspace)`);
    }
  }

  /** `+15551234567`, `15551234567`, or a JID -> the chat's JID; null when it is none of these. */
  private destination(to: string): string | null {
    if (!to.includes('@')) {
      const e164 = normalizeE164(to);
      return e164 ? `${e164.slice(1)}@s.whatsapp.net` : null;
    }
    const jid = normalizeJid(to);
    if (!jid || !/^[0-9A-Za-z.\-_]+@(s\.whatsapp\.net|g\.us|lid)$/.test(jid)) return null;
    return jid;
  }

  private mayReceive(jid: string): boolean {
    const self = normalizeJid(this.opts.transport.selfChatId());
    if (self !== null && jid === self) return true;
    const e164 = jidToE164(jid);
    if (e164 !== null && this.allowNumbers.has(e164)) return true;
    if (jid.endsWith('@g.us')) return this.groups.has(jid);
    return this.seenChats.has(jid);
  }

  private rateOk(c: Client): boolean {
    const now = Date.now();
    c.sends = c.sends.filter((t) => now - t < 60000);
    if (c.sends.length >= this.sendsPerMinute) return false;
    c.sends.push(now);
    return true;
  }

  private onSend(c: Client, obj: Record<string, unknown>): void {
    const { to, text } = obj;
    if (typeof to !== 'string' || to.length === 0 || to.length > MAX_TO_CHARS) {
      this.error(c, 'BAD_REQUEST', 'send needs "to": a number (+15551234567) or a chat id', typeof to === 'string' ? { to: to.slice(0, MAX_TO_CHARS) } : {});
      return;
    }
    if (typeof text !== 'string' || text.trim().length === 0) { this.error(c, 'BAD_REQUEST', 'send needs a non-empty "text" string', { to }); return; }
    if (text.length > this.maxTextChars) { this.error(c, 'TOO_LONG', `text longer than ${this.maxTextChars} characters`, { to }); return; }
    const jid = this.destination(to);
    if (!jid) { this.error(c, 'BAD_REQUEST', `"to" is not a number (+15551234567) or a chat id: ${to}`, { to }); return; }
    if (!this.mayReceive(jid)) { this.error(c, 'NOT_ALLOWED', 'not an allowed chat (only the allowlist, listed groups and your own chat)', { to }); return; }
    if (!this.rateOk(c)) { this.error(c, 'RATE_LIMITED', `more than ${this.sendsPerMinute} sends a minute`, { to }); return; }
    if (this.status.status !== 'connected') { this.error(c, 'NOT_CONNECTED', `WhatsApp is not connected (${this.status.status})`, { to }); return; }
    this.opts.transport.sendText(jid, text, { id: bridgeMessageId() }).then((sent) => {
      this.sendTo(c, { type: 'sent', to, id: sent.id });
    }, (e: unknown) => {
      this.opts.reporter.log('warn', `api: a send failed: ${(e as Error).message}`);
      this.error(c, 'SEND_FAILED', `WhatsApp did not take it: ${(e as Error).message}`, { to });
    });
  }

  /** Unlinks the device: WhatsApp forgets it and the session files are deleted; the bridge stays up, unlinked. */
  private onLogout(c: Client): void {
    const t = this.opts.transport;
    if (!t.logout) { this.error(c, 'BAD_REQUEST', 'this transport cannot log out'); return; }
    this.opts.reporter.log('info', 'api: logout requested');
    t.logout().then(() => {
      this.sendTo(c, { type: 'logout', ok: true });
    }, (e: unknown) => {
      this.error(c, 'SEND_FAILED', `logout failed: ${(e as Error).message}`);
    });
  }

  private onPairingRequest(c: Client, type: 'approvePairing' | 'denyPairing', obj: Record<string, unknown>): void {
    const action = type === 'approvePairing' ? 'approve' : 'deny';
    const code = typeof obj.code === 'string' ? obj.code.slice(0, 32) : null;
    if (!this.opts.pairing) { this.sendTo(c, { type: 'pairingResult', action, code, ok: false, reason: 'DISABLED', error: 'pairing codes are off' }); return; }
    if (code === null) { this.error(c, 'BAD_REQUEST', `${type} needs a "code" string`); return; }
    const r = action === 'approve' ? this.opts.pairing.approve(code) : this.opts.pairing.deny(code);
    if (r.ok) this.sendTo(c, { type: 'pairingResult', action, code: r.entry.code, ok: true, number: r.entry.from });
    else this.sendTo(c, { type: 'pairingResult', action, code, ok: false, reason: r.error, error: r.message });
  }

  /**
   * Adds the client's workspace: the bridge connects to that helper with the
   * token (which is never logged nor echoed) and answers once the helper has
   * accepted it (online), refused it (HELPER_AUTH_FAILED, not added), or
   * could not be reached (added, offline: it keeps trying).
   */
  private onAddWorkspace(c: Client, obj: Record<string, unknown>): void {
    const { name, url, token, workspaceId } = obj;
    const named = typeof name === 'string' ? { name: name.slice(0, MAX_NAME_CHARS) } : {};
    const bad = (why: string): void => { this.error(c, 'BAD_REQUEST', `addWorkspace: ${why}`, named); };
    if (typeof name !== 'string' || name.length === 0) { bad('needs "name": the workspace\'s name, reachable as @name'); return; }
    if (name.length > MAX_NAME_CHARS || !NAME_RE.test(name)) { bad(`"name" may hold only letters, digits, _ . - (at most ${MAX_NAME_CHARS})`); return; }
    if (typeof url !== 'string' || url.length === 0) { bad('needs "url": the helper\'s ws:// or wss:// URL'); return; }
    const why = helperUrlProblem(url);
    if (why) { bad(why); return; }
    if (typeof token !== 'string' || token.trim().length === 0 || token.length > MAX_HELPER_TOKEN_CHARS) {
      bad(`needs "token": the helper token (a non-empty string, at most ${MAX_HELPER_TOKEN_CHARS} characters)`);
      return;
    }
    if (workspaceId !== undefined && (typeof workspaceId !== 'string' || workspaceId.length === 0 || workspaceId.length > 256)) {
      bad('"workspaceId", when given, is a non-empty string');
      return;
    }
    const host = this.opts.workspaces;
    if (!host) { bad('this bridge does not take workspaces from its API'); return; }
    host.add(c, { name, url, token: token.trim(), workspaceId }).then((r) => {
      if (r.ok) this.sendTo(c, { type: 'workspaceAdded', name: r.name, online: r.online, replaced: r.replaced });
      else this.error(c, r.code, r.error, { name });
    }, (e: unknown) => {
      this.opts.reporter.log('error', `api: addWorkspace failed: ${(e as Error).message}`);
      this.error(c, 'BAD_REQUEST', `addWorkspace failed: ${(e as Error).message}`, { name });
    });
  }

  private onRemoveWorkspace(c: Client, obj: Record<string, unknown>): void {
    const { name } = obj;
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS) {
      this.error(c, 'BAD_REQUEST', 'removeWorkspace needs "name": a workspace this client added');
      return;
    }
    const host = this.opts.workspaces;
    if (!host) { this.error(c, 'UNKNOWN_WORKSPACE', `"${name}" is not a workspace this client added`, { name }); return; }
    host.remove(c, name).then((r) => {
      if (r.ok) this.sendTo(c, { type: 'workspaceRemoved', name: r.name });
      else this.error(c, r.code, r.error, { name });
    }, (e: unknown) => {
      this.error(c, 'BAD_REQUEST', `removeWorkspace failed: ${(e as Error).message}`, { name });
    });
  }

  private setStatus(frame: StatusFrame): void {
    this.status = frame;
    this.broadcast({ ...frame });
  }

  private onQr(qr: string): void {
    this.lastQr = qr;
    if (this.status.status !== 'qr') this.setStatus({ type: 'status', status: 'qr' });
    this.broadcast({ type: 'qr', qr });
  }

  private onConnection(u: ConnectionUpdate): void {
    if (u.state === 'connecting') {
      if (this.status.status !== 'connecting') this.setStatus({ type: 'status', status: 'connecting' });
    } else if (u.state === 'open') {
      this.lastQr = null;
      this.setStatus({ type: 'status', status: 'connected' });
    } else {
      this.lastQr = null;
      this.setStatus({
        type: 'status',
        status: u.reason === 'loggedOut' ? 'logged_out' : 'disconnected',
        detail: u.detail,
        reason: u.reason,
        willReconnect: u.willReconnect,
      });
    }
  }

  private onMessage(m: IncomingMessage): void {
    // The bridge's own messages (replies, sends through this API) are not the chat's.
    if (isBridgeMessageId(m.id)) return;
    if (!this.opts.allows(m)) return;
    const chat = normalizeJid(m.chatId) ?? m.chatId;
    if (!this.seenChats.has(chat)) {
      this.seenChats.add(chat);
      if (this.seenChats.size > MAX_SEEN_CHATS) this.seenChats.delete(this.seenChats.values().next().value!);
    }
    if (m.text === null || m.text.length === 0) return;
    this.broadcast({
      type: 'message',
      from: m.senderE164 ?? m.senderLid ?? chat,
      chat,
      text: m.text,
      timestamp: m.timestamp,
      id: m.id,
      isGroup: m.isGroup,
    });
  }
}

function pairingFrame(p: PendingCode): Record<string, unknown> {
  return { type: 'pairing', code: p.code, from: p.from, expiresAt: p.expiresAt, ...(p.name ? { name: p.name } : {}) };
}
