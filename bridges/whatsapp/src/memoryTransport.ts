/**
 * InMemoryWhatsAppTransport: a stand-in for WhatsApp's servers, used by the
 * tests. It implements the same ChatTransport interface as the Baileys
 * adapter; tests inject incoming messages and read what the bridge sent.
 * Nothing here talks to WhatsApp.
 */
import { EventEmitter } from 'node:events';
import type { ChatTransport, IncomingMessage, MessageKind, SentMessage, TransportEvents } from './transport.js';
import { e164ToJid, normalizeE164 } from './transport.js';

export interface FakeSent {
  chatId: string;
  text: string;
  id: string;
  at: number;
}

export interface InjectOptions {
  /** Sender number (E.164); default: the account itself. */
  from?: string;
  text?: string | null;
  kind?: MessageKind;
  /** A group JID: the message is posted in that group. */
  group?: string;
  /** For a message from the account itself: the other party of the chat (E.164). */
  to?: string;
  /** Post in the account's own "message yourself" chat. */
  selfChat?: boolean;
  statusBroadcast?: boolean;
  /** Seconds since the epoch. */
  timestamp?: number;
}

export class InMemoryWhatsAppTransport extends EventEmitter implements ChatTransport {
  readonly sent: FakeSent[] = [];
  private nextId = 1;
  private open = false;
  private readonly ownE164: string;
  /** Milliseconds each sendText takes (to exercise ordering). */
  sendDelayMs = 0;

  constructor(ownNumber: string) {
    super();
    const n = normalizeE164(ownNumber);
    if (!n) throw new Error(`bad own number ${ownNumber}`);
    this.ownE164 = n;
  }

  override on<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this {
    return super.on(event, listener);
  }

  override off<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this {
    return super.off(event, listener);
  }

  start(): Promise<void> {
    this.open = true;
    this.emit('connection', { state: 'open', ownE164: this.ownE164, selfChatId: this.selfChatId() });
    return Promise.resolve();
  }

  selfChatId(): string {
    return e164ToJid(this.ownE164);
  }

  async sendText(chatId: string, text: string): Promise<SentMessage> {
    if (!this.open) throw new Error('not connected');
    if (this.sendDelayMs > 0) await new Promise((r) => { setTimeout(r, this.sendDelayMs); });
    const id = `OUT${this.nextId++}`;
    this.sent.push({ chatId, text, id, at: Date.now() });
    this.emit('sentText', { chatId, text, id });
    // WhatsApp echoes the account's own messages back to linked devices.
    if (chatId === this.selfChatId()) {
      setImmediate(() => {
        this.emit('message', this.build(id, { selfChat: true, text }));
      });
    }
    return { id };
  }

  close(): Promise<void> {
    this.open = false;
    this.emit('connection', { state: 'close', reason: 'other', detail: 'closed', willReconnect: false });
    return Promise.resolve();
  }

  /** Delivers a message as if WhatsApp had pushed it; returns it. */
  inject(opts: InjectOptions): IncomingMessage {
    const msg = this.build(`IN${this.nextId++}`, opts);
    this.emit('message', msg);
    return msg;
  }

  /** Simulates WhatsApp ending the session (e.g. logged out from the phone). */
  drop(reason: 'loggedOut' | 'replaced' | 'other'): void {
    this.open = false;
    this.emit('connection', { state: 'close', reason, detail: reason, willReconnect: false });
  }

  private build(id: string, opts: InjectOptions): IncomingMessage {
    const from = opts.from ? normalizeE164(opts.from) : this.ownE164;
    const isFromMe = from === this.ownE164;
    let chatId: string;
    if (opts.statusBroadcast) chatId = 'status@broadcast';
    else if (opts.group) chatId = opts.group;
    else if (opts.to) chatId = e164ToJid(normalizeE164(opts.to) ?? opts.to);
    else if (opts.selfChat || isFromMe) chatId = this.selfChatId();
    else chatId = e164ToJid(from ?? '');
    const kind = opts.kind ?? 'text';
    return {
      chatId,
      senderE164: from,
      isGroup: chatId.endsWith('@g.us'),
      isFromMe,
      isStatusBroadcast: chatId === 'status@broadcast',
      isSelfChat: chatId === this.selfChatId(),
      text: opts.text === undefined ? (kind === 'text' ? '' : null) : opts.text,
      kind,
      id,
      timestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
    };
  }

  /** Waits until pred holds over what was sent. */
  async waitSent(pred: (sent: FakeSent[]) => boolean, timeoutMs = 15000, what = 'sent messages'): Promise<FakeSent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.sent)) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; sent so far: ${JSON.stringify(this.sent.map((s) => [s.chatId, s.text.slice(0, 80)]))}`);
      }
      await new Promise((r) => { setTimeout(r, 20); });
    }
    return this.sent;
  }
}
