/**
 * BaileysTransport: the real WhatsApp side, as a linked device through
 * @whiskeysockets/baileys. The session lives in an auth folder (mode 0700);
 * the QR code is printed on stderr and emitted as a 'qr' event.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import makeWASocket, { Browsers, DisconnectReason, useMultiFileAuthState } from '@whiskeysockets/baileys';
import type { AuthenticationState, ConnectionState, UserFacingSocketConfig } from '@whiskeysockets/baileys';
import qrcode from 'qrcode-terminal';
import { Backoff } from './backoff.js';
import type { Reporter } from './log.js';
import { normalizeMessage } from './normalize.js';
import type { RawWAMessage } from './normalize.js';
import type { ChatTransport, CloseReason, SentMessage, TransportEvents } from './transport.js';
import { jidToE164, normalizeJid } from './transport.js';

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
}

/** What the transport gives the socket factory (a subset of Baileys' UserFacingSocketConfig). */
export interface SocketConfig {
  auth: AuthenticationState;
  logger: NonNullable<UserFacingSocketConfig['logger']>;
  browser: [string, string, string];
  markOnlineOnConnect: boolean;
  syncFullHistory: boolean;
}

/** The Baileys events the transport listens to, with the payloads Baileys gives them. */
export interface SocketEvents {
  'connection.update': Partial<ConnectionState>;
  'creds.update': unknown;
  'messages.upsert': { messages: RawWAMessage[]; type: 'notify' | 'append' };
}

/** The part of Baileys' WASocket the transport uses. */
export interface SocketLike {
  ev: { on<K extends keyof SocketEvents>(event: K, listener: (arg: SocketEvents[K]) => void): void };
  user?: { id: string; lid?: string | undefined } | undefined;
  sendMessage(jid: string, content: { text: string }, options?: { messageId?: string }): Promise<{ key: { id?: string | null } } | undefined>;
  end(error: Error | undefined): void;
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
  };
};

/** Creates the auth folder with mode 0700 (and tightens an existing one). */
export function ensureAuthDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Maps a Baileys disconnect status code to the transport's reasons. */
export function closeReason(statusCode: number | undefined): CloseReason {
  if (statusCode === DisconnectReason.loggedOut) return 'loggedOut';
  if (statusCode === DisconnectReason.connectionReplaced) return 'replaced';
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
  private readonly sentIds = new Set<string>();
  /** Ids of the messages already passed on: WhatsApp may deliver one again (append, then notify). */
  private readonly seenIds = new Set<string>();
  /** When start() ran (seconds): 'append' messages from before are not passed on. */
  private startedAt = 0;

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
    if (this.opts.relink) {
      this.reporter.log('info', `--relink: forgetting the session in ${this.opts.authDir}`);
      rmSync(this.opts.authDir, { recursive: true, force: true });
    }
    ensureAuthDir(this.opts.authDir);
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closing) return;
    const { state, saveCreds } = await useMultiFileAuthState(this.opts.authDir);
    this.emit('connection', { state: 'connecting' });
    const sock = this.makeSocket({
      auth: state,
      logger: quietLogger(this.reporter),
      browser: Browsers.ubuntu('Companion'),
      markOnlineOnConnect: false,
      syncFullHistory: false,
    });
    this.sock = sock;
    sock.ev.on('creds.update', () => { void saveCreds(); });
    sock.ev.on('connection.update', (u) => {
      if (u.qr) {
        this.emit('qr', u.qr);
        if (this.opts.printQr !== false) {
          qrcode.generate(u.qr, { small: true }, (art: string) => {
            process.stderr.write(`Scan this QR code in WhatsApp > Linked devices > Link a device:\n${art}\n`);
          });
        }
      }
      if (u.connection === 'open') {
        this.backoff.reset();
        const me = sock.user;
        this.ownJid = normalizeJid(me?.id ?? null);
        this.ownLid = normalizeJid(me?.lid ?? null);
        this.emit('connection', { state: 'open', ownE164: jidToE164(this.ownJid), selfChatId: this.ownJid });
      }
      if (u.connection === 'close') {
        if (this.sock !== sock) return;
        this.sock = null;
        const err = u.lastDisconnect?.error as { output?: { statusCode?: number }; message?: string } | undefined;
        const code = err?.output?.statusCode;
        const reason = closeReason(code);
        const detail = `${err?.message ?? 'closed'}${code ? ` (${code})` : ''}`;
        let willReconnect = !this.closing && reason === 'other';
        if (reason === 'loggedOut' && this.opts.relink && !this.closing) {
          rmSync(this.opts.authDir, { recursive: true, force: true });
          ensureAuthDir(this.opts.authDir);
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

  async sendText(chatId: string, text: string): Promise<SentMessage> {
    const sock = this.sock;
    if (!sock) throw new Error('WhatsApp is not connected');
    const sent = await sock.sendMessage(chatId, { text });
    const id = sent?.key.id ?? '';
    if (id) {
      this.sentIds.add(id);
      if (this.sentIds.size > 2000) this.sentIds.delete(this.sentIds.values().next().value!);
    }
    return { id };
  }

  close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const sock = this.sock;
    this.sock = null;
    // end() closes the socket without logging the device out.
    if (sock) sock.end(undefined);
    return Promise.resolve();
  }
}
