/**
 * StandInLinkingTransport: an in-memory stand-in for WhatsApp's servers that
 * goes through linking, for tests of programs that run the bundled bridge as
 * a process (the VS Code extension's Link WhatsApp). Selected only by the
 * environment variable COMPANION_WHATSAPP_STANDIN (see cli.ts); nothing here
 * talks to WhatsApp.
 *
 * Linking as the stand-in plays it: without a session in the auth folder it
 * shows a QR code (`standin-qr-<n>`, a new one every qrRotateMs), and the
 * "phone scans" it linkAfterMs after start (never when linkAfterMs is
 * null): it writes `creds.json` (0600) and the connection opens. With a
 * session it opens at once. logout() deletes the session like the real
 * adapter. Ownership: the timers and the files it writes in authDir.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { removeAuthFiles } from './authState.js';
import type { Reporter } from './log.js';
import type { ChatTransport, OutgoingDocument, SentMessage, TransportEvents } from './transport.js';
import { e164ToJid } from './transport.js';

export const STANDIN_ENV = 'COMPANION_WHATSAPP_STANDIN';
export const STANDIN_OWN_NUMBER = '+15550000000';

export interface StandInOptions {
  authDir: string;
  reporter: Reporter;
  relink: boolean;
  /** The simulated scan, this long after start; null: never scanned. */
  linkAfterMs: number | null;
  qrRotateMs?: number;
}

/** `COMPANION_WHATSAPP_STANDIN` value: a number of ms until the simulated scan, or `never`. */
export function parseStandIn(value: string): number | null | undefined {
  if (value === 'never') return null;
  return /^\d{1,7}$/.test(value) ? Number(value) : undefined;
}

export class StandInLinkingTransport extends EventEmitter implements ChatTransport {
  private timers: NodeJS.Timeout[] = [];
  private open = false;
  private qrCount = 0;
  private nextId = 1;

  constructor(private readonly opts: StandInOptions) {
    super();
  }

  override on<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this {
    return super.on(event, listener);
  }

  override off<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this {
    return super.off(event, listener);
  }

  private get credsFile(): string {
    return path.join(this.opts.authDir, 'creds.json');
  }

  start(): Promise<void> {
    mkdirSync(this.opts.authDir, { recursive: true, mode: 0o700 });
    chmodSync(this.opts.authDir, 0o700);
    if (this.opts.relink) removeAuthFiles(this.opts.authDir);
    this.opts.reporter.log('warn', `using the in-memory WhatsApp stand-in (${STANDIN_ENV}): not connected to WhatsApp`);
    this.emit('connection', { state: 'connecting' });
    if (existsSync(this.credsFile)) {
      this.later(20, () => { this.linked(); });
      return Promise.resolve();
    }
    const showQr = (): void => {
      this.qrCount++;
      this.emit('qr', `standin-qr-${this.qrCount}`);
    };
    this.later(10, showQr);
    const rotate = setInterval(showQr, this.opts.qrRotateMs ?? 20000);
    this.timers.push(rotate);
    if (this.opts.linkAfterMs !== null) {
      this.later(this.opts.linkAfterMs, () => {
        clearInterval(rotate);
        writeFileSync(this.credsFile, `${JSON.stringify({ standIn: true, me: STANDIN_OWN_NUMBER })}\n`, { mode: 0o600 });
        this.linked();
      });
    }
    return Promise.resolve();
  }

  private later(ms: number, fn: () => void): void {
    this.timers.push(setTimeout(fn, ms));
  }

  private linked(): void {
    this.open = true;
    this.emit('connection', { state: 'open', ownE164: STANDIN_OWN_NUMBER, selfChatId: this.selfChatId() });
  }

  selfChatId(): string | null {
    return this.open ? e164ToJid(STANDIN_OWN_NUMBER) : null;
  }

  sendText(_chatId: string, _text: string, opts: { id?: string } = {}): Promise<SentMessage> {
    if (!this.open) return Promise.reject(new Error('not connected'));
    return Promise.resolve({ id: opts.id ?? `OUT${this.nextId++}` });
  }

  sendDocument(_chatId: string, _doc: OutgoingDocument, opts: { id?: string } = {}): Promise<SentMessage> {
    if (!this.open) return Promise.reject(new Error('not connected'));
    return Promise.resolve({ id: opts.id ?? `OUT${this.nextId++}` });
  }

  logout(): Promise<void> {
    this.stopTimers();
    this.open = false;
    removeAuthFiles(this.opts.authDir);
    this.emit('connection', { state: 'close', reason: 'loggedOut', detail: 'unlinked', willReconnect: false });
    return Promise.resolve();
  }

  private stopTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  close(): Promise<void> {
    this.stopTimers();
    if (this.open) {
      this.open = false;
      this.emit('connection', { state: 'close', reason: 'other', detail: 'closed', willReconnect: false });
    }
    return Promise.resolve();
  }
}
