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
 * adapter.
 *
 * Chats (optional, COMPANION_WHATSAPP_STANDIN_CHAT=<folder>): while the
 * connection is open, the stand-in delivers each `<folder>/in/*.json`
 * (`{"from": "+15551230001", "text": "status"}`, or `{"selfChat": true,
 * "text": "pair ABC234"}` for the account's own chat), in name order, then
 * deletes it; every text the bridge sends is appended to
 * `<folder>/sent.jsonl` (`{"to", "chatId", "text", "id"}`). This is how a
 * test outside the process (the e2e in code-server) plays a contact writing
 * to the linked number and reads the bridge's replies.
 *
 * Ownership: the timers, the files it writes in authDir, and the chat
 * folder's sent.jsonl and consumed `in/` files.
 */
import { EventEmitter } from 'node:events';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { removeAuthFiles } from './authState.js';
import type { Reporter } from './log.js';
import type { ChatTransport, IncomingMessage, OutgoingDocument, SentMessage, TransportEvents } from './transport.js';
import { e164ToJid, jidToE164, normalizeE164 } from './transport.js';

export const STANDIN_ENV = 'COMPANION_WHATSAPP_STANDIN';
export const STANDIN_CHAT_ENV = 'COMPANION_WHATSAPP_STANDIN_CHAT';
/** How often the chat folder's `in/` is looked at. */
const CHAT_POLL_MS = 100;
export const STANDIN_OWN_NUMBER = '+15550000000';

export interface StandInOptions {
  authDir: string;
  reporter: Reporter;
  relink: boolean;
  /** The simulated scan, this long after start; null: never scanned. */
  linkAfterMs: number | null;
  qrRotateMs?: number;
  /** The chat folder (see above); none: no message ever arrives. */
  chatDir?: string | undefined;
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
    if (this.opts.chatDir) {
      mkdirSync(path.join(this.opts.chatDir, 'in'), { recursive: true, mode: 0o700 });
      this.timers.push(setInterval(() => { this.deliver(); }, CHAT_POLL_MS));
    }
  }

  /** Delivers the messages waiting in `<chatDir>/in/`; a file that is not a message is reported and dropped. */
  private deliver(): void {
    const dir = path.join(this.opts.chatDir!, 'in');
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (!this.open) return;
      const file = path.join(dir, name);
      let msg: IncomingMessage | null = null;
      try {
        msg = this.incoming(JSON.parse(readFileSync(file, 'utf8')) as unknown);
      } catch { /* reported below */ }
      try { unlinkSync(file); } catch { /* taken already */ }
      if (!msg) {
        this.opts.reporter.log('warn', `stand-in: ${name} is not a message ({"from": "+E164", "text"} or {"selfChat": true, "text"}); dropped`);
        continue;
      }
      this.emit('message', msg);
    }
  }

  private incoming(v: unknown): IncomingMessage | null {
    if (typeof v !== 'object' || v === null) return null;
    const o = v as { from?: unknown; text?: unknown; selfChat?: unknown };
    if (typeof o.text !== 'string') return null;
    const self = o.selfChat === true;
    const from = self ? STANDIN_OWN_NUMBER : typeof o.from === 'string' ? normalizeE164(o.from) : null;
    if (!from) return null;
    const chatId = e164ToJid(from);
    return {
      chatId, senderE164: from, senderLid: null, isGroup: false, isFromMe: self, isStatusBroadcast: false, isSelfChat: self,
      text: o.text, kind: 'text', id: `STANDIN${this.nextId++}`, timestamp: Math.floor(Date.now() / 1000),
    };
  }

  private record(chatId: string, text: string, id: string): void {
    if (!this.opts.chatDir) return;
    try {
      appendFileSync(path.join(this.opts.chatDir, 'sent.jsonl'), `${JSON.stringify({ to: jidToE164(chatId), chatId, text, id })}\n`, { mode: 0o600 });
    } catch (e) {
      this.opts.reporter.log('warn', `stand-in: cannot record a sent message: ${(e as Error).message}`);
    }
  }

  selfChatId(): string | null {
    return this.open ? e164ToJid(STANDIN_OWN_NUMBER) : null;
  }

  sendText(chatId: string, text: string, opts: { id?: string } = {}): Promise<SentMessage> {
    if (!this.open) return Promise.reject(new Error('not connected'));
    const id = opts.id ?? `OUT${this.nextId++}`;
    this.record(chatId, text, id);
    return Promise.resolve({ id });
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
