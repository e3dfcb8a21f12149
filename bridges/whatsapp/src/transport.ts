/**
 * The boundary between the relay and WhatsApp. The real implementation is
 * BaileysTransport (baileys.ts); tests use InMemoryWhatsAppTransport
 * (memoryTransport.ts), a stand-in for WhatsApp's servers.
 */

import { randomBytes } from 'node:crypto';

export type MessageKind = 'text' | 'image' | 'video' | 'audio' | 'document' | 'sticker' | 'other';

/** One incoming WhatsApp message, reduced to what the relay needs. */
export interface IncomingMessage {
  /** The chat the message belongs to (a JID: `<digits>@s.whatsapp.net`, `<id>@g.us`, `<id>@lid`). */
  chatId: string;
  /** The sender's number in E.164 (`+15551234567`), or null when WhatsApp did not tell it. */
  senderE164: string | null;
  /** The sender's LID (`<digits>@lid`) when WhatsApp addressed the sender by LID, else null. */
  senderLid: string | null;
  isGroup: boolean;
  /** Sent by the linked account itself (from the phone or another linked device). */
  isFromMe: boolean;
  isStatusBroadcast: boolean;
  /** True for the account's own "message yourself" chat. */
  isSelfChat: boolean;
  /** The text (or a media caption), null when there is none. */
  text: string | null;
  kind: MessageKind;
  id: string;
  /** Seconds since the epoch, as WhatsApp stamps messages. */
  timestamp: number;
}

/**
 * Why WhatsApp closed: loggedOut (401), replaced (440), clientTooOld (405:
 * the WhatsApp Web version is below WhatsApp's minimum), forbidden (403: the
 * account or device is refused), multideviceMismatch (411); these are not
 * retried. stale: the connection looked open but answered nothing (the
 * bridge's liveness check), other (network, restarts, 408/428/500/503/515):
 * both reconnected.
 */
export type CloseReason = 'loggedOut' | 'replaced' | 'clientTooOld' | 'forbidden' | 'multideviceMismatch' | 'stale' | 'other';

export type ConnectionUpdate =
  | { state: 'connecting' }
  | { state: 'open'; ownE164: string | null; selfChatId: string | null }
  | { state: 'close'; reason: CloseReason; detail: string; willReconnect: boolean };

export interface TransportEvents {
  qr: (qr: string) => void;
  connection: (update: ConnectionUpdate) => void;
  message: (message: IncomingMessage) => void;
}

export interface SentMessage {
  /** The WhatsApp message id of what was sent. */
  id: string;
}

/** A file sent as a WhatsApp document (the `file` and `diff file` words). */
export interface OutgoingDocument {
  data: Buffer;
  /** Shown to the receiver and used when they save it. */
  fileName: string;
  mimetype: string;
  caption?: string;
}

export interface ChatTransport {
  /** Starts linking / connecting; resolves once the attempt is under way. */
  start(): Promise<void>;
  on<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this;
  off<K extends keyof TransportEvents>(event: K, listener: TransportEvents[K]): this;
  /** The account's own "message yourself" chat, once known (after open). */
  selfChatId(): string | null;
  /** Sends a text; opts.id is the message id to use (the bridge marks its own, see bridgeMessageId). */
  sendText(chatId: string, text: string, opts?: { id?: string }): Promise<SentMessage>;
  /** Sends a document (same id rule as sendText). */
  sendDocument(chatId: string, doc: OutgoingDocument, opts?: { id?: string }): Promise<SentMessage>;
  /**
   * The LIDs (`<digits>@lid`) of these numbers (E.164), as far as WhatsApp
   * tells them; for matching senders that come addressed by LID only.
   */
  lidsFor?(numbers: string[]): Promise<Map<string, string>>;
  /** Unlinks this device (WhatsApp forgets it, the session files are deleted) and stops. */
  logout?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The bridge's mark: the ids of the messages it sends start with this (the
 * shape of WhatsApp Web's ids, `3EB0` and 18 hex digits, is kept). Any
 * message so marked, from this bridge or another one on the same account, is
 * never taken as a command: two bridges in one self chat would otherwise
 * answer each other forever.
 */
export const BRIDGE_ID_PREFIX = '3EB0C0DEB07A';

/** A new message id with the bridge's mark. */
export function bridgeMessageId(): string {
  return BRIDGE_ID_PREFIX + randomBytes(5).toString('hex').toUpperCase();
}

export function isBridgeMessageId(id: string | null | undefined): boolean {
  return typeof id === 'string' && id.startsWith(BRIDGE_ID_PREFIX) && id.length === 22;
}

/** `15551234567@s.whatsapp.net` or `15551234567:3@s.whatsapp.net` -> `+15551234567`. */
export function jidToE164(jid: string | null | undefined): string | null {
  if (!jid) return null;
  const at = jid.indexOf('@');
  if (at < 0) return null;
  const server = jid.slice(at + 1);
  if (server !== 's.whatsapp.net' && server !== 'c.us') return null;
  const user = jid.slice(0, at).split(':')[0]!.split('_')[0]!;
  return /^\d{5,15}$/.test(user) ? `+${user}` : null;
}

/** `+1 (555) 123-4567` -> `+15551234567`; null when it is not a plausible E.164 number. */
export function normalizeE164(input: string): string | null {
  const digits = input.replace(/[\s()\-.]/g, '');
  const m = /^\+?(\d{5,15})$/.exec(digits);
  return m ? `+${m[1]}` : null;
}

/** The user part of a JID without the device suffix: `1555:3@s.whatsapp.net` -> `1555@s.whatsapp.net`. */
export function normalizeJid(jid: string | null | undefined): string | null {
  if (!jid) return null;
  const at = jid.indexOf('@');
  if (at < 0) return null;
  const user = jid.slice(0, at).split(':')[0]!;
  const server = jid.slice(at + 1);
  return `${user}@${server === 'c.us' ? 's.whatsapp.net' : server}`;
}

/** `104257358999812:3@lid` -> `104257358999812@lid`; null for anything but a LID. */
export function lidOf(jid: string | null | undefined): string | null {
  const n = normalizeJid(jid);
  return n?.endsWith('@lid') ? n : null;
}

export function e164ToJid(e164: string): string {
  return `${e164.replace(/^\+/, '')}@s.whatsapp.net`;
}
