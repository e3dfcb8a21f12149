/**
 * BaileysTransport: the real WhatsApp side, as a linked device through
 * @whiskeysockets/baileys. The session lives in an auth folder (mode 0700);
 * the QR code is printed on stderr and emitted as a 'qr' event.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, mkdirSync } from 'node:fs';
import makeWASocket, { Browsers, DEFAULT_CONNECTION_CONFIG, DisconnectReason, fetchLatestWaWebVersion } from '@whiskeysockets/baileys';
import { removeAuthFiles, useAtomicAuthState } from './authState.js';
import type { AtomicAuthState } from './authState.js';
import type { AuthenticationState, BinaryNode, ConnectionState, UserFacingSocketConfig } from '@whiskeysockets/baileys';
import qrcode from 'qrcode-terminal';
import { Backoff } from './backoff.js';
import type { Reporter } from './log.js';
import { normalizeMessage } from './normalize.js';
import type { RawWAMessage } from './normalize.js';
import type { ChatTransport, CloseReason, ConnectionUpdate, OutgoingDocument, SentMessage, TransportEvents } from './transport.js';
import { e164ToJid, jidToE164, lidOf, normalizeJid } from './transport.js';

export { normalizeMessage } from './normalize.js';

export interface BaileysTransportOptions {
  authDir: string;
  reporter: Reporter;
  /** Forget the stored session first, and restart linking after a logout. */
  relink: boolean;
  /** Print the QR code on stderr (default true). */
  printQr?: boolean;
  /**
   * Makes the socket. Default: Baileys' makeWASocket. The tests pass the
   * in-memory stand-in's (InMemoryWhatsAppServer, memoryTransport.ts).
   */
  makeSocket?: SocketFactory;
  /** Reconnect delays: initialMs doubling to maxMs, +-20 %. Default 1 s to 60 s. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /**
   * Liveness: after this long without anything from WhatsApp, a ping is sent;
   * no answer within livenessTimeoutMs and the connection is replaced. Default
   * 45 s and 20 s (checked every silence/3): a connection that looks open but
   * delivers nothing is found within about 80 s.
   */
  livenessSilenceMs?: number;
  livenessTimeoutMs?: number;
  /** The backoff starts again from initialMs only after a connection stayed open this long. Default 60 s. */
  stableMs?: number;
  /** The clock the stable period is measured on (ms; default Date.now). The tests move it. */
  now?: () => number;
  /** The WhatsApp Web version to present, instead of fetching the current one (--wa-version). */
  waVersion?: WAVersion | undefined;
  /** Fetches the current WhatsApp Web version (default: from web.whatsapp.com, through Baileys). */
  fetchVersion?: VersionFetcher;
  /** The longest the version fetch may take before the bundled version is used. Default 5000 ms. */
  versionFetchTimeoutMs?: number;
}

/** A WhatsApp Web version: [2, 3000, client revision]. */
export type WAVersion = [number, number, number];

/** The version pinned in the Baileys release the bridge is built with. */
export const BUNDLED_VERSION: WAVersion = [...DEFAULT_CONNECTION_CONFIG.version];

/** Returns the current WhatsApp Web version, or null (or throws) when it cannot tell. */
export type VersionFetcher = (signal: AbortSignal) => Promise<WAVersion | null>;

/** The default fetcher: Baileys' fetchLatestWaWebVersion (reads web.whatsapp.com's service worker). */
export const fetchWebVersion: VersionFetcher = async (signal) => {
  const r = await fetchLatestWaWebVersion({ signal });
  if (!r.isLatest) throw r.error instanceof Error ? r.error : new Error((r.error as { message?: string } | undefined)?.message ?? 'no version found');
  return r.version;
};

/** `2.3000.1023456789` -> [2, 3000, 1023456789]; null when it is not such a version. */
export function parseWebVersion(text: string): WAVersion | null {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export interface ResolvedVersion { version: WAVersion; source: 'override' | 'fetched' | 'bundled'; why?: string }

/**
 * The version to connect with: the override; else the current one, fetched
 * within timeoutMs; else (no network, a changed page, too slow) the bundled one.
 */
export async function resolveWebVersion(opts: { override?: WAVersion | undefined; fetch: VersionFetcher; timeoutMs: number }): Promise<ResolvedVersion> {
  if (opts.override) return { version: opts.override, source: 'override' };
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { reject(new Error(`no answer within ${opts.timeoutMs} ms`)); ctl.abort(); }, opts.timeoutMs);
  });
  try {
    const v = await Promise.race([opts.fetch(ctl.signal), timeout]);
    if (v?.every((n) => Number.isInteger(n) && n >= 0)) return { version: v, source: 'fetched' };
    return { version: BUNDLED_VERSION, source: 'bundled', why: 'no version found' };
  } catch (e) {
    return { version: BUNDLED_VERSION, source: 'bundled', why: (e as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** What the transport gives the socket factory (a subset of Baileys' UserFacingSocketConfig). */
export interface SocketConfig {
  auth: AuthenticationState;
  logger: NonNullable<UserFacingSocketConfig['logger']>;
  browser: [string, string, string];
  markOnlineOnConnect: boolean;
  syncFullHistory: boolean;
  version: WAVersion;
}

/** The Baileys events the transport listens to, with the payloads Baileys gives them. */
export interface SocketEvents {
  'connection.update': Partial<ConnectionState>;
  'creds.update': unknown;
  'messages.upsert': { messages: RawWAMessage[]; type: 'notify' | 'append' };
}

/** What the bridge sends: a text, or a document (Baileys' AnyMediaMessageContent with `document`). */
export type SendContent = { text: string } | { document: Buffer; mimetype: string; fileName: string; caption?: string };

/** The part of Baileys' WASocket the transport uses. */
export interface SocketLike {
  ev: { on<K extends keyof SocketEvents>(event: K, listener: (arg: SocketEvents[K]) => void): void };
  user?: { id: string; lid?: string | undefined } | undefined;
  sendMessage(jid: string, content: SendContent, options?: { messageId?: string }): Promise<{ key: { id?: string | null } } | undefined>;
  end(error: Error | undefined): void;
  /** An IQ query to WhatsApp (the liveness probe sends a ping). */
  query(node: BinaryNode, timeoutMs?: number): Promise<unknown>;
  /** Baileys' LID mapping store (its own records, then WhatsApp's USync). */
  signalRepository: { lidMapping: { getLIDsForPNs(pns: string[]): Promise<{ lid: string; pn: string }[] | null> } };
  /** Tells WhatsApp to remove this linked device (Baileys' sock.logout). */
  logout?(msg?: string): Promise<void>;
}

export type SocketFactory = (config: SocketConfig) => SocketLike;

/** Baileys' own socket, seen through SocketLike. */
export const makeBaileysSocket: SocketFactory = (config) => {
  const sock = makeWASocket(config);
  return {
    ev: {
      on: (event, listener) => {
        if (event === 'messages.upsert') {
          sock.ev.on('messages.upsert', (u) => { (listener as (a: SocketEvents['messages.upsert']) => void)({ messages: u.messages as RawWAMessage[], type: u.type }); });
        } else {
          sock.ev.on(event, listener as (a: unknown) => void);
        }
      },
    },
    get user() { return sock.user; },
    sendMessage: (jid, content, options) => sock.sendMessage(jid, content, options),
    end: (error) => { void Promise.resolve(sock.end(error)).catch(() => {}); },
    signalRepository: sock.signalRepository,
    query: (node, timeoutMs) => sock.query(node, timeoutMs) as Promise<unknown>,
    logout: (msg) => sock.logout(msg),
  };
};

/** Creates the auth folder with mode 0700 (and tightens an existing one). */
export function ensureAuthDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** WhatsApp refuses the WhatsApp Web version as too old (Baileys has no name for it). */
export const CLIENT_TOO_OLD = 405;

/** Maps a Baileys disconnect status code to the transport's reasons. */
export function closeReason(statusCode: number | undefined): CloseReason {
  if (statusCode === DisconnectReason.loggedOut) return 'loggedOut';
  if (statusCode === DisconnectReason.connectionReplaced) return 'replaced';
  if (statusCode === CLIENT_TOO_OLD) return 'clientTooOld';
  if (statusCode === DisconnectReason.forbidden) return 'forbidden';
  if (statusCode === DisconnectReason.multideviceMismatch) return 'multideviceMismatch';
  return 'other';
}

type Logger = Parameters<typeof makeWASocket>[0]['logger'];

/** Baileys logs a great deal; keep warnings and errors, at debug level. */
function quietLogger(reporter: Reporter): NonNullable<Logger> {
  const text = (obj: unknown, msg?: string): string => msg ?? (typeof obj === 'string' ? obj : JSON.stringify(obj));
  const logger = {
    level: 'warn',
    child: () => logger,
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (obj: unknown, msg?: string) => { reporter.log('debug', `baileys: ${text(obj, msg)}`); },
    error: (obj: unknown, msg?: string) => { reporter.log('debug', `baileys error: ${text(obj, msg)}`); },
  };
  return logger;
}

export class BaileysTransport extends EventEmitter implements ChatTransport {
  private readonly opts: BaileysTransportOptions;
  private readonly reporter: Reporter;
  private sock: SocketLike | null = null;
  private readonly backoff: Backoff;
  private readonly makeSocket: SocketFactory;
  private closing = false;
  private ownJid: string | null = null;
  private ownLid: string | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Liveness: the check's timer, and when the socket last gave a sign of life. */
  private livenessTimer: NodeJS.Timeout | null = null;
  private lastAlive = 0;
  /** The session, read from the auth folder at start. */
  private auth: AtomicAuthState | null = null;
  /** When the current connection opened (on opts.now), null while none is open. */
  private openedAt: number | null = null;
  private readonly sentIds = new Set<string>();
  /** Ids of the messages already passed on: WhatsApp may deliver one again (append, then notify). */
  private readonly seenIds = new Set<string>();
  /** When start() ran (seconds): 'append' messages from before are not passed on. */
  private startedAt = 0;
  /** The version last fetched, and when: fetched again after an hour. */
  private fetched: { version: WAVersion; at: number } | null = null;
  private version: ResolvedVersion | null = null;

  constructor(opts: BaileysTransportOptions) {
    super();
    this.opts = opts;
    this.reporter = opts.reporter;
    this.backoff = new Backoff(opts.reconnectInitialMs ?? 1000, opts.reconnectMaxMs ?? 60000);
    this.makeSocket = opts.makeSocket ?? makeBaileysSocket;
  }

  override on<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this {
    return super.on(event, listener);
  }

  override off<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this {
    return super.off(event, listener);
  }

  selfChatId(): string | null {
    return this.ownJid;
  }

  async start(): Promise<void> {
    this.startedAt = Math.floor(Date.now() / 1000);
    ensureAuthDir(this.opts.authDir);
    if (this.opts.relink) {
      const n = removeAuthFiles(this.opts.authDir);
      this.reporter.log('info', `--relink: forgot the session in ${this.opts.authDir} (${n} files)`);
    }
    // Read once and kept: a reconnect must not lose what a failed save did not write.
    this.auth = await this.loadAuth();
    await this.connect();
  }

  private loadAuth(): Promise<AtomicAuthState> {
    return useAtomicAuthState(this.opts.authDir, {
      onError: (m) => { this.reporter.log('error', m); },
      onWarn: (m) => { this.reporter.log('warn', m); },
    });
  }

  private async connect(): Promise<void> {
    if (this.closing) return;
    const auth = this.auth ??= await this.loadAuth();
    const { state, saveCreds } = auth;
    this.emit('connection', { state: 'connecting' });
    const version = await this.webVersion();
    if (this.isClosing()) return;
    const sock = this.makeSocket({
      version: version.version,
      auth: state,
      logger: quietLogger(this.reporter),
      browser: Browsers.ubuntu('Companion'),
      markOnlineOnConnect: false,
      syncFullHistory: false,
    });
    this.sock = sock;
    sock.ev.on('creds.update', () => { void saveCreds(); }); // never rejects: failures are logged
    sock.ev.on('connection.update', (u) => {
      if (this.sock === sock) this.lastAlive = Date.now();
      if (u.qr) {
        this.emit('qr', u.qr);
        if (this.opts.printQr !== false) {
          qrcode.generate(u.qr, { small: true }, (art: string) => {
            process.stderr.write(`Scan this QR code in WhatsApp > Linked devices > Link a device:\n${art}\n`);
          });
        }
      }
      if (u.connection === 'open') {
        // A link that opens and drops at once must not reconnect every second: the backoff
        // starts again only after a stable period.
        this.openedAt = this.now();
        this.watchLiveness(sock);
        const me = sock.user;
        this.ownJid = normalizeJid(me?.id ?? null);
        this.ownLid = normalizeJid(me?.lid ?? null);
        this.emit('connection', { state: 'open', ownE164: jidToE164(this.ownJid), selfChatId: this.ownJid });
      }
      if (u.connection === 'close') {
        if (this.sock !== sock) return;
        this.sock = null;
        this.noteClosed();
        this.stopLiveness();
        const err = u.lastDisconnect?.error as { output?: { statusCode?: number }; message?: string } | undefined;
        const code = err?.output?.statusCode;
        const reason = closeReason(code);
        let detail = `${err?.message ?? 'closed'}${code ? ` (${code})` : ''}`;
        if (reason === 'clientTooOld') {
          const v = this.version;
          detail += `: WhatsApp refused WhatsApp Web version ${v ? v.version.join('.') : '?'}${v ? ` (${v.source})` : ''} as too old`;
        }
        let willReconnect = !this.closing && reason === 'other';
        if (reason === 'loggedOut' && this.opts.relink && !this.closing) {
          removeAuthFiles(this.opts.authDir);
          this.auth = null; // a new identity, from a new QR code
          willReconnect = true;
        }
        this.emit('connection', { state: 'close', reason, detail, willReconnect });
        if (willReconnect) {
          // restartRequired comes right after a scan: reconnect at once.
          const delay = code === DisconnectReason.restartRequired ? 0 : this.backoff.next();
          this.reconnectTimer = setTimeout(() => { void this.connect(); }, delay);
        }
      }
    });
    sock.ev.on('messages.upsert', ({ messages, type }) => {
      if (this.sock === sock) this.lastAlive = Date.now();
      for (const raw of messages) {
        const id = raw.key?.id;
        if (!id || this.sentIds.has(id) || this.seenIds.has(id)) continue;
        const m = normalizeMessage(raw, { jid: this.ownJid, lid: this.ownLid });
        if (!m) continue;
        // 'append' carries the messages that came while the socket was (re)connecting
        // (Baileys' offline messages), and history: only those sent since the bridge started.
        if (type !== 'notify' && m.timestamp < this.startedAt) continue;
        this.seenIds.add(id);
        if (this.seenIds.size > 5000) this.seenIds.delete(this.seenIds.values().next().value!);
        this.emit('message', m);
      }
    });
  }

  /**
   * A connection can look open and deliver nothing (a half-dead link Baileys
   * does not notice). After livenessSilenceMs without a sign of life, ping;
   * no answer in livenessTimeoutMs: report it ('stale') and connect anew.
   */
  private watchLiveness(sock: SocketLike): void {
    this.stopLiveness();
    const silence = this.opts.livenessSilenceMs ?? 45000;
    const timeout = this.opts.livenessTimeoutMs ?? 20000;
    this.lastAlive = Date.now();
    let probing = false;
    this.livenessTimer = setInterval(() => {
      if (this.sock !== sock || probing || Date.now() - this.lastAlive < silence) return;
      probing = true;
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error('no answer')); }, timeout); });
      const ping: BinaryNode = { tag: 'iq', attrs: { to: 's.whatsapp.net', type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] };
      Promise.race([sock.query(ping, timeout), deadline]).then(() => {
        if (this.sock === sock) this.lastAlive = Date.now();
      }, (e: unknown) => {
        if (this.sock !== sock) return;
        const quiet = Math.round((Date.now() - this.lastAlive) / 1000);
        this.reporter.log('warn', `WhatsApp looks connected but answered nothing for ${quiet} s (ping: ${(e as Error).message} after ${Date.now() - started} ms); reconnecting`);
        this.stopLiveness();
        this.sock = null;
        this.noteClosed();
        sock.end(new Error('no sign of life'));
        this.emit('connection', { state: 'close', reason: 'stale', detail: `no answer for ${quiet} s`, willReconnect: !this.closing });
        if (!this.closing) this.reconnectTimer = setTimeout(() => { void this.connect(); }, this.backoff.next());
      }).finally(() => { clearTimeout(timer); probing = false; });
    }, Math.max(50, Math.round(silence / 3)));
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * A connection ended: the backoff starts again from its initial delay only
   * if it had stayed open stableMs (a link that opens and drops at once must
   * not reconnect every second).
   */
  private noteClosed(): void {
    if (this.openedAt !== null && this.now() - this.openedAt >= (this.opts.stableMs ?? 60000)) this.backoff.reset();
    this.openedAt = null;
  }

  private stopLiveness(): void {
    if (this.livenessTimer) { clearInterval(this.livenessTimer); this.livenessTimer = null; }
  }

  private isClosing(): boolean {
    return this.closing;
  }

  /** The version to present: --wa-version, the one fetched (kept an hour), or the bundled one. */
  private async webVersion(): Promise<ResolvedVersion> {
    let v: ResolvedVersion;
    if (!this.opts.waVersion && this.fetched && Date.now() - this.fetched.at < 3600000) {
      v = { version: this.fetched.version, source: 'fetched' };
    } else {
      v = await resolveWebVersion({ override: this.opts.waVersion, fetch: this.opts.fetchVersion ?? fetchWebVersion, timeoutMs: this.opts.versionFetchTimeoutMs ?? 5000 });
      if (v.source === 'fetched') this.fetched = { version: v.version, at: Date.now() };
    }
    const same = this.version?.source === v.source && this.version.version.join('.') === v.version.join('.');
    if (!same) {
      const from = v.source === 'override' ? 'set by --wa-version, COMPANION_WA_VERSION or waVersion' : v.source === 'fetched' ? 'the current one' : `bundled with Baileys; fetching the current one failed: ${v.why ?? '?'}`;
      this.reporter.log(v.source === 'bundled' ? 'warn' : 'info', `WhatsApp Web version ${v.version.join('.')} (${from})`);
    }
    this.version = v;
    return v;
  }

  /** The version of the last connection attempt, and where it came from. */
  webVersionInUse(): ResolvedVersion | null {
    return this.version;
  }

  async lidsFor(numbers: string[]): Promise<Map<string, string>> {
    const sock = this.sock;
    const out = new Map<string, string>();
    if (!sock || numbers.length === 0) return out;
    const pairs = await sock.signalRepository.lidMapping.getLIDsForPNs(numbers.map((n) => e164ToJid(n)));
    for (const p of pairs ?? []) {
      const e164 = jidToE164(p.pn);
      const lid = lidOf(p.lid);
      if (e164 && lid) out.set(e164, lid);
    }
    return out;
  }

  async sendText(chatId: string, text: string, opts: { id?: string } = {}): Promise<SentMessage> {
    const sock = this.sock;
    if (!sock) throw new Error('WhatsApp is not connected');
    // Known before sending: Baileys echoes its own messages back (emitOwnEvents) at once.
    if (opts.id) this.rememberSentId(opts.id);
    const sent = await sock.sendMessage(chatId, { text }, opts.id ? { messageId: opts.id } : undefined);
    const id = sent?.key.id ?? opts.id ?? '';
    if (id) this.rememberSentId(id);
    return { id };
  }

  async sendDocument(chatId: string, doc: OutgoingDocument, opts: { id?: string } = {}): Promise<SentMessage> {
    const sock = this.sock;
    if (!sock) throw new Error('WhatsApp is not connected');
    if (opts.id) this.rememberSentId(opts.id);
    const content: SendContent = { document: doc.data, mimetype: doc.mimetype, fileName: doc.fileName, ...(doc.caption !== undefined ? { caption: doc.caption } : {}) };
    const sent = await sock.sendMessage(chatId, content, opts.id ? { messageId: opts.id } : undefined);
    const id = sent?.key.id ?? opts.id ?? '';
    if (id) this.rememberSentId(id);
    return { id };
  }

  private rememberSentId(id: string): void {
    if (this.sentIds.has(id)) return;
    this.sentIds.add(id);
    if (this.sentIds.size > 2000) this.sentIds.delete(this.sentIds.values().next().value!);
  }

  /**
   * Unlinks: asks WhatsApp to remove this linked device (when connected),
   * stops, and deletes the session's own files, connected or not.
   */
  async logout(): Promise<void> {
    const sock = this.sock;
    this.closing = true;
    // The socket's own close (401) reports loggedOut; without a socket, this does.
    const seen = { close: false };
    const onClose = (u: ConnectionUpdate): void => { if (u.state === 'close') seen.close = true; };
    this.on('connection', onClose);
    if (sock?.logout) {
      try {
        await sock.logout('unlinked from Companion');
      } catch (e) {
        this.reporter.log('warn', `WhatsApp did not confirm the logout (${(e as Error).message}); the session files are deleted anyway`);
      }
    }
    this.off('connection', onClose);
    await this.close();
    const n = removeAuthFiles(this.opts.authDir);
    this.auth = null;
    this.reporter.log('info', `logged out: forgot the session in ${this.opts.authDir} (${n} files)`);
    if (!seen.close) this.emit('connection', { state: 'close', reason: 'loggedOut', detail: 'unlinked', willReconnect: false });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopLiveness();
    const sock = this.sock;
    this.sock = null;
    // end() closes the socket without logging the device out.
    if (sock) sock.end(undefined);
    // The session's writes under way finish first: a stop right after linking keeps the link.
    await this.auth?.flush();
  }
}
