/**
 * InMemoryWhatsAppTransport: a stand-in for WhatsApp's servers, used by the
 * tests. It implements the same ChatTransport interface as the Baileys
 * adapter; tests inject incoming messages and read what the bridge sent.
 * Nothing here talks to WhatsApp.
 */
import { EventEmitter } from 'node:events';
import type { ChatTransport, IncomingMessage, MessageKind, OutgoingDocument, SentMessage, TransportEvents } from './transport.js';
import { e164ToJid, normalizeE164 } from './transport.js';
import type { SendContent, SocketConfig, SocketEvents, SocketFactory, SocketLike } from './baileys.js';
import type { RawContent, RawWAMessage } from './normalize.js';

export interface FakeSent {
  chatId: string;
  text: string;
  id: string;
  at: number;
}

/** A document the bridge sent, as the stand-in recorded it (the bytes, name and type it was given). */
export interface FakeDocument {
  chatId: string;
  fileName: string;
  mimetype: string;
  caption: string | undefined;
  data: Buffer;
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
  /** Documents sent (sendDocument), apart from the texts in `sent`. */
  readonly documents: FakeDocument[] = [];
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

  async sendText(chatId: string, text: string, opts: { id?: string } = {}): Promise<SentMessage> {
    if (!this.open) throw new Error('not connected');
    if (this.sendDelayMs > 0) await new Promise((r) => { setTimeout(r, this.sendDelayMs); });
    this.nextId++;
    const id = opts.id ?? `OUT${this.nextId}`;
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

  async sendDocument(chatId: string, doc: OutgoingDocument, opts: { id?: string } = {}): Promise<SentMessage> {
    if (!this.open) throw new Error('not connected');
    if (this.sendDelayMs > 0) await new Promise((r) => { setTimeout(r, this.sendDelayMs); });
    this.nextId++;
    const id = opts.id ?? `OUT${this.nextId}`;
    this.documents.push({ chatId, fileName: doc.fileName, mimetype: doc.mimetype, caption: doc.caption, data: Buffer.from(doc.data), id, at: Date.now() });
    if (chatId === this.selfChatId()) {
      setImmediate(() => {
        this.emit('message', this.build(id, { selfChat: true, kind: 'document', text: doc.caption ?? null }));
      });
    }
    return { id };
  }

  /** Waits until pred holds over the documents sent. */
  async waitDocuments(pred: (docs: FakeDocument[]) => boolean, timeoutMs = 15000): Promise<FakeDocument[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.documents)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for documents; sent so far: ${JSON.stringify(this.documents.map((d) => [d.chatId, d.fileName, d.data.length]))}; texts: ${JSON.stringify(this.sent.map((s) => s.text.slice(0, 80)))}`);
      await new Promise((r) => { setTimeout(r, 20); });
    }
    return this.documents;
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
      senderLid: null,
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

/* ------------------------------------------------------------------------ */
/*  The stand-in one level lower: WhatsApp's servers as Baileys' socket     */
/*  shows them, for the real BaileysTransport to drive.                     */
/* ------------------------------------------------------------------------ */

/** A WhatsApp Web version, as Baileys writes it: [2, 3000, revision]. */
export type WAVersionTuple = [number, number, number];

/**
 * An error as Baileys closes a connection with: a Boom whose
 * `output.statusCode` is the disconnect reason (DisconnectReason).
 */
export function boomLike(message: string, statusCode: number): Error & { output: { statusCode: number } } {
  return Object.assign(new Error(message), { isBoom: true, output: { statusCode } });
}

/** One of the account's contacts: its number and its LID (digits). */
export interface MemoryContact { e164: string; lid: string }

/** What the tests deliver: a message shaped as Baileys' decoder (decodeMessageNode) builds it. */
export interface DecodedMessageOptions {
  /** The message content; default `{ conversation: text }`. */
  message?: RawContent;
  text?: string;
  /**
   * How WhatsApp addressed the sender: 'pn' (phone-number JID), 'lid' (LID with
   * the phone number in remoteJidAlt), 'lid-only' (LID, no phone number: as
   * WhatsApp does for contacts it has moved to LIDs).
   */
  addressing?: 'pn' | 'lid' | 'lid-only';
  /** A group JID: posted in that group. */
  group?: string;
  /**
   * A broadcast list JID (`<id>@broadcast`, not status@broadcast): sent to one of
   * the contact's broadcast lists. Baileys' decoder (decodeMessageNode's
   * isJidBroadcast branch) keeps the list as remoteJid, the sender as
   * participant, and the sender's other address in remoteJidAlt.
   */
  broadcastList?: string;
  id?: string;
  /** Seconds since the epoch; default now. */
  timestamp?: number;
}

let stubIds = 1;
/** A message id as WhatsApp clients make them (`3EB0` and 18 hex digits). */
function stubMessageId(): string {
  return `3EB0${(stubIds++).toString(16).toUpperCase().padStart(18, '0')}`;
}

type StubListener = (arg: unknown) => void;

/** The stand-in's socket: the SocketLike surface of Baileys' WASocket. */
export class InMemoryBaileysSocket implements SocketLike {
  readonly ev: SocketLike['ev'];
  /** Baileys' LID mapping store: answers from the account's contacts (as USync would). */
  readonly signalRepository: SocketLike['signalRepository'];
  user: { id: string; lid?: string } | undefined = undefined;
  state: 'connecting' | 'open' | 'closed' = 'connecting';
  /** Deaf: looks open, but nothing comes in and queries go unanswered (a half-dead connection). */
  deaf = false;
  private readonly listeners = new Map<string, StubListener[]>();

  constructor(private readonly device: InMemoryLinkedDevice, readonly config: SocketConfig) {
    this.ev = {
      on: (event, listener) => {
        const list = this.listeners.get(event) ?? [];
        list.push(listener as StubListener);
        this.listeners.set(event, list);
      },
    };
    this.signalRepository = {
      lidMapping: {
        getLIDsForPNs: (pns) => {
          if (this.state !== 'open' || this.deaf) return new Promise(() => {});
          const found = pns.flatMap((pn) => {
            const c = this.device.server.contacts.find((x) => e164ToJid(x.e164) === pn);
            return c ? [{ pn, lid: `${c.lid}@lid` }] : [];
          });
          return Promise.resolve(found.length > 0 ? found : null);
        },
      },
    };
  }

  emit<K extends keyof SocketEvents>(event: K, arg: SocketEvents[K]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) l(arg);
  }

  /** Closes with a Baileys-shaped error (once). */
  close(error: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.emit('connection.update', { connection: 'close', lastDisconnect: { error, date: new Date() } });
  }

  sendMessage(jid: string, content: SendContent, options?: { messageId?: string }): Promise<{ key: { id: string; remoteJid: string; fromMe: true } }> {
    // Baileys throws "Connection Closed" (428) when the socket is not open.
    if (this.state !== 'open') return Promise.reject(boomLike('Connection Closed', 428));
    const id = options?.messageId ?? stubMessageId();
    if ('document' in content) return this.device.server.onSendDocument(this, jid, content, id);
    return this.device.server.onSend(this, jid, content.text, id);
  }

  end(error: Error | undefined): void {
    this.close(error ?? boomLike('Connection Closed', 428));
  }

  /** Baileys' logout: WhatsApp removes the linked device, then the socket closes with 401 (Intentional Logout). */
  logout(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(boomLike('Connection Closed', 428));
    this.device.loggedOut = true;
    this.close(boomLike('Intentional Logout', 401));
    return Promise.resolve();
  }

  /** Baileys' IQ query (the transport's liveness probe): a deaf connection never answers. */
  query(node: { tag: string; attrs: Record<string, string> }): Promise<unknown> {
    if (this.state !== 'open') return Promise.reject(boomLike('Connection Closed', 428));
    if (this.deaf) return new Promise(() => {});
    return Promise.resolve({ tag: 'iq', attrs: { id: node.attrs.id ?? '', type: 'result', from: 's.whatsapp.net' } });
  }
}

/** A linked device of the account: each BaileysTransport is one. */
export class InMemoryLinkedDevice {
  readonly sockets: InMemoryBaileysSocket[] = [];
  /** When each socket was made, and with which WhatsApp Web version. */
  readonly connects: { at: number; version: WAVersionTuple | undefined }[] = [];
  readonly deviceNumber: number;
  /** Set when the device logged itself out (sock.logout): WhatsApp forgot it. */
  loggedOut = false;

  constructor(readonly server: InMemoryWhatsAppServer, deviceNumber: number) {
    this.deviceNumber = deviceNumber;
  }

  /** The factory to give BaileysTransport (`makeSocket`). */
  readonly makeSocket: SocketFactory = (config) => {
    const sock = new InMemoryBaileysSocket(this, config);
    this.sockets.push(sock);
    this.connects.push({ at: Date.now(), version: config.version });
    setImmediate(() => { this.server.handshake(this, sock); });
    return sock;
  };

  get current(): InMemoryBaileysSocket | undefined {
    return this.sockets.at(-1);
  }

  /** WhatsApp closes the current connection with this status code (408, 428, 503, 515, 403, ...). */
  disconnect(statusCode: number, message = 'Connection Failure'): void {
    this.current?.close(boomLike(message, statusCode));
  }
}

/**
 * InMemoryWhatsAppServer: a stand-in for WhatsApp's servers as Baileys' socket
 * shows them (connection.update with Boom status codes, messages.upsert of
 * `notify` and `append`, creds.update), so the real BaileysTransport runs on
 * top of it. Message objects follow Baileys' decoder. Nothing here talks to
 * WhatsApp.
 */
export class InMemoryWhatsAppServer {
  readonly sent: (FakeSent & { device: number })[] = [];
  /** Documents the devices sent (Baileys' `{document, mimetype, fileName, caption}` content). */
  readonly documents: (FakeDocument & { device: number })[] = [];
  readonly devices: InMemoryLinkedDevice[] = [];
  readonly ownE164: string;
  readonly ownLid: string;
  readonly contacts: MemoryContact[];
  /** Connections with an older WhatsApp Web version are refused with 405, as WhatsApp does. */
  minVersion: WAVersionTuple | null = null;
  /** Every new connection is refused with this status code (e.g. 403). */
  refuseWith: number | null = null;
  /** Every connection is closed with 428 this long after it opened (a flapping link). */
  closeAfterOpenMs: number | null = null;
  /** Messages for the account while a device was not connected: delivered as 'append' when it is back. */
  private readonly offline = new Map<InMemoryLinkedDevice, RawWAMessage[]>();

  constructor(ownNumber: string, opts: { ownLid?: string; contacts?: MemoryContact[] } = {}) {
    const n = normalizeE164(ownNumber);
    if (!n) throw new Error(`bad own number ${ownNumber}`);
    this.ownE164 = n;
    this.ownLid = opts.ownLid ?? '208431200442187';
    this.contacts = opts.contacts ?? [];
  }

  /** A new linked device of the account. */
  device(): InMemoryLinkedDevice {
    const d = new InMemoryLinkedDevice(this, this.devices.length + 10);
    this.devices.push(d);
    this.offline.set(d, []);
    return d;
  }

  selfChatId(): string {
    return e164ToJid(this.ownE164);
  }

  /** The login: refused (refuseWith, minVersion), linked (creds.update, then 515 as after a QR scan), or open. */
  handshake(device: InMemoryLinkedDevice, sock: InMemoryBaileysSocket): void {
    if (sock.state !== 'connecting') return;
    sock.emit('connection.update', { connection: 'connecting', receivedPendingNotifications: false, qr: undefined });
    if (this.refuseWith !== null) { sock.close(boomLike('Connection Failure', this.refuseWith)); return; }
    const v = sock.config.version;
    if (this.minVersion && compareVersions(v, this.minVersion) < 0) {
      sock.close(boomLike('Connection Failure', 405));
      return;
    }
    const creds = sock.config.auth.creds;
    const me = { id: `${this.ownE164.slice(1)}:${device.deviceNumber}@s.whatsapp.net`, lid: `${this.ownLid}:${device.deviceNumber}@lid` };
    if (!creds.me) {
      // Not linked yet: a QR code, scanned at once; Baileys then restarts the connection (515).
      sock.emit('connection.update', { qr: `stand-in-qr-${device.deviceNumber}` });
      creds.me = { id: me.id, lid: me.lid };
      creds.registered = true;
      sock.emit('creds.update', { me: creds.me });
      sock.close(boomLike('Stream Errored (restart required)', 515));
      return;
    }
    sock.state = 'open';
    sock.user = me;
    sock.emit('connection.update', { connection: 'open' });
    const held = this.offline.get(device) ?? [];
    if (held.length > 0) sock.emit('messages.upsert', { messages: held.splice(0), type: 'append' });
    sock.emit('connection.update', { receivedPendingNotifications: true });
    if (this.closeAfterOpenMs !== null) {
      setTimeout(() => { sock.close(boomLike('Connection Closed', 428)); }, this.closeAfterOpenMs);
    }
  }

  /** A message as Baileys' decoder builds it, from a contact (E.164) to the account. */
  fromContact(e164: string, opts: DecodedMessageOptions = {}): RawWAMessage {
    const n = normalizeE164(e164) ?? e164;
    const pnJid = e164ToJid(n);
    const contact = this.contacts.find((c) => c.e164 === n);
    const lidJid = contact ? `${contact.lid}@lid` : null;
    const addressing = opts.addressing ?? 'pn';
    const sender = addressing !== 'pn' && lidJid ? lidJid : pnJid;
    const alt = addressing === 'lid' ? pnJid : addressing === 'pn' ? lidJid : null;
    const addressingMode = addressing === 'pn' ? 'pn' : 'lid';
    let key: NonNullable<RawWAMessage['key']> & { addressingMode?: string };
    if (opts.group) key = { remoteJid: opts.group, fromMe: false, id: opts.id ?? stubMessageId(), participant: sender, participantAlt: alt, addressingMode };
    else if (opts.broadcastList) key = { remoteJid: opts.broadcastList, remoteJidAlt: alt, fromMe: false, id: opts.id ?? stubMessageId(), participant: sender, addressingMode };
    else key = { remoteJid: sender, remoteJidAlt: alt, fromMe: false, id: opts.id ?? stubMessageId(), addressingMode };
    return this.decoded(key, opts);
  }

  /**
   * A post in a WhatsApp channel the account follows, as Baileys' decoder
   * (decodeMessageNode's isJidNewsletter branch) builds it: the channel is
   * both the chat and the author; no participant, no phone number.
   */
  fromNewsletter(jid: string, opts: DecodedMessageOptions = {}): RawWAMessage {
    const key: NonNullable<RawWAMessage['key']> & { addressingMode?: string; server_id?: string } = {
      remoteJid: jid, fromMe: false, id: opts.id ?? stubMessageId(), addressingMode: 'pn', server_id: '117',
    };
    return this.decoded(key, opts);
  }

  /** A message the owner types on the phone in "Message yourself". */
  fromPhone(opts: DecodedMessageOptions = {}): RawWAMessage {
    return this.decoded({ remoteJid: this.selfChatId(), fromMe: true, id: opts.id ?? stubMessageId() }, opts);
  }

  private decoded(key: NonNullable<RawWAMessage['key']>, opts: DecodedMessageOptions): RawWAMessage {
    return {
      key,
      messageTimestamp: opts.timestamp ?? Math.floor(Date.now() / 1000),
      pushName: key.fromMe ? 'Me' : 'Contact',
      message: opts.message ?? { conversation: opts.text ?? '' },
    };
  }

  /**
   * Delivers a message to every linked device: upserted as 'notify' on an
   * open connection, held and upserted as 'append' (Baileys' offline
   * messages) when the device's connection is back.
   */
  deliver(raw: RawWAMessage, opts: { type?: 'notify' | 'append'; except?: InMemoryLinkedDevice } = {}): void {
    for (const d of this.devices) {
      if (d === opts.except) continue;
      const sock = d.current;
      if (sock?.state === 'open' && !sock.deaf) sock.emit('messages.upsert', { messages: [raw], type: opts.type ?? 'notify' });
      else this.offline.get(d)!.push(raw); // not acknowledged: WhatsApp delivers it on the next connection
    }
  }

  /** What a device sends: recorded, echoed to the sender as Baileys does (emitOwnEvents: 'append'), and seen by the account's other devices. */
  onSend(sock: InMemoryBaileysSocket, jid: string, text: string, id: string): Promise<{ key: { id: string; remoteJid: string; fromMe: true } }> {
    const device = this.devices.find((d) => d.sockets.includes(sock))!;
    const key = { remoteJid: jid, fromMe: true as const, id };
    if (!sock.deaf) {
      this.sent.push({ chatId: jid, text, id, at: Date.now(), device: device.deviceNumber });
      const raw: RawWAMessage = { key, messageTimestamp: Math.floor(Date.now() / 1000), message: { extendedTextMessage: { text } } };
      process.nextTick(() => { if (sock.state === 'open') sock.emit('messages.upsert', { messages: [raw], type: 'append' }); });
      setImmediate(() => { this.deliver(raw, { except: device }); });
    }
    return Promise.resolve({ key });
  }

  /** A document a device sends: recorded and echoed like a text (as a documentMessage). */
  onSendDocument(sock: InMemoryBaileysSocket, jid: string, doc: Extract<SendContent, { document: Buffer }>, id: string): Promise<{ key: { id: string; remoteJid: string; fromMe: true } }> {
    const device = this.devices.find((d) => d.sockets.includes(sock))!;
    const key = { remoteJid: jid, fromMe: true as const, id };
    if (!sock.deaf) {
      this.documents.push({ chatId: jid, fileName: doc.fileName, mimetype: doc.mimetype, caption: doc.caption, data: Buffer.from(doc.document), id, at: Date.now(), device: device.deviceNumber });
      const raw: RawWAMessage = { key, messageTimestamp: Math.floor(Date.now() / 1000), message: { documentMessage: { caption: doc.caption ?? null } } };
      process.nextTick(() => { if (sock.state === 'open') sock.emit('messages.upsert', { messages: [raw], type: 'append' }); });
      setImmediate(() => { this.deliver(raw, { except: device }); });
    }
    return Promise.resolve({ key });
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

function compareVersions(a: WAVersionTuple, b: WAVersionTuple): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
