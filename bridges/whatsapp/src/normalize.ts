/**
 * normalizeMessage: a pure mapping from a Baileys WAMessage (as delivered by
 * `messages.upsert`) to the transport's IncomingMessage. Kept free of the
 * Baileys runtime so it can be tested on recorded message objects.
 */
import type { IncomingMessage, MessageKind } from './transport.js';
import { jidToE164, lidOf, normalizeJid } from './transport.js';

/** The subset of Baileys' WAMessage this module reads (structurally compatible). */
export interface RawWAMessage {
  key?: {
    remoteJid?: string | null;
    remoteJidAlt?: string | null;
    fromMe?: boolean | null;
    id?: string | null;
    participant?: string | null;
    participantAlt?: string | null;
  } | null;
  message?: RawContent | null;
  messageTimestamp?: number | string | { low: number; high: number; unsigned?: boolean } | null;
  pushName?: string | null;
}

interface Captioned { caption?: string | null }
export interface RawContent {
  conversation?: string | null;
  extendedTextMessage?: { text?: string | null } | null;
  imageMessage?: Captioned | null;
  videoMessage?: Captioned | null;
  audioMessage?: object | null;
  documentMessage?: Captioned | null;
  documentWithCaptionMessage?: { message?: RawContent | null } | null;
  stickerMessage?: object | null;
  ephemeralMessage?: { message?: RawContent | null } | null;
  viewOnceMessage?: { message?: RawContent | null } | null;
  viewOnceMessageV2?: { message?: RawContent | null } | null;
  deviceSentMessage?: { destinationJid?: string | null; message?: RawContent | null } | null;
  editedMessage?: { message?: RawContent | null } | null;
  protocolMessage?: object | null;
  reactionMessage?: object | null;
  senderKeyDistributionMessage?: object | null;
  messageContextInfo?: object | null;
  [other: string]: unknown;
}

/** Who the linked account is: its phone-number JID and, when known, its LID. */
export interface OwnIdentity {
  jid: string | null;
  lid?: string | null;
}

/**
 * The wrappers Baileys' normalizeMessageContent takes off (in its order),
 * plus deviceSentMessage, which its decoder takes off already. An edit
 * (`editedMessage`) unwraps to the protocolMessage that carries it.
 */
const WRAPPERS = [
  'ephemeralMessage', 'viewOnceMessage', 'documentWithCaptionMessage', 'viewOnceMessageV2', 'viewOnceMessageV2Extension',
  'editedMessage', 'associatedChildMessage', 'groupStatusMessage', 'groupStatusMessageV2', 'deviceSentMessage',
] as const;
/** Keys that ride along with real content and say nothing about its kind. */
const NOISE = new Set(['messageContextInfo', 'senderKeyDistributionMessage', 'fastRatchetKeySenderKeyDistributionMessage']);
/**
 * Messages that are about other messages or about the chat, never typed by a
 * person as something to answer: revokes and edits (protocolMessage), the
 * encrypted edits of contacts (secretEncryptedMessage), reactions, pins,
 * keeps, poll votes, event replies, call offers and logs, history notices.
 * They are ignored silently.
 */
const PROTOCOL = new Set([
  'protocolMessage', 'secretEncryptedMessage', 'reactionMessage', 'encReactionMessage', 'pinInChatMessage', 'keepInChatMessage',
  'pollUpdateMessage', 'encEventResponseMessage', 'encCommentMessage', 'call', 'callLogMesssage', 'bcallMessage', 'chat',
  'scheduledCallEditMessage', 'messageHistoryBundle', 'messageHistoryNotice', 'placeholderMessage', 'stickerSyncRmrMessage',
  'statusNotificationMessage',
]);

function unwrap(content: RawContent): RawContent {
  let c = content;
  for (let depth = 0; depth < 5; depth++) {
    const w = WRAPPERS.find((k) => c[k] !== null && c[k] !== undefined);
    if (!w) break;
    const inner = (c[w] as { message?: RawContent | null }).message;
    if (!inner) break;
    c = inner;
  }
  return c;
}

function timestampOf(ts: RawWAMessage['messageTimestamp']): number {
  if (ts === null || ts === undefined) return 0;
  if (typeof ts === 'number') return ts;
  if (typeof ts === 'string') return Number(ts) || 0;
  return (ts.low >>> 0) + (ts.high >>> 0) * 2 ** 32;
}

function classify(c: RawContent): { kind: MessageKind; text: string | null } {
  if (typeof c.conversation === 'string') return { kind: 'text', text: c.conversation };
  if (c.extendedTextMessage) return { kind: 'text', text: c.extendedTextMessage.text ?? null };
  if (c.imageMessage) return { kind: 'image', text: c.imageMessage.caption ?? null };
  if (c.videoMessage) return { kind: 'video', text: c.videoMessage.caption ?? null };
  if (c.audioMessage) return { kind: 'audio', text: null };
  if (c.documentMessage) return { kind: 'document', text: c.documentMessage.caption ?? null };
  if (c.stickerMessage) return { kind: 'sticker', text: null };
  return { kind: 'other', text: null };
}

/** True for messages that carry nothing a person typed or sent (edits, pins, reactions, key distribution...). */
function isProtocolOnly(c: RawContent): boolean {
  const keys = Object.keys(c).filter((k) => c[k] !== null && c[k] !== undefined && !NOISE.has(k));
  return keys.length === 0 || keys.some((k) => PROTOCOL.has(k));
}

/**
 * Maps a Baileys message to an IncomingMessage, or null for messages that are
 * not something a person sent (no key, no content, protocol/reaction messages).
 */
export function normalizeMessage(raw: RawWAMessage, own: string | OwnIdentity | null): IncomingMessage | null {
  const key = raw.key;
  if (!key?.remoteJid || !raw.message) return null;
  const content = unwrap(raw.message);
  if (isProtocolOnly(content)) return null;

  const identity: OwnIdentity = typeof own === 'string' || own === null ? { jid: own } : own;
  const ownJid = normalizeJid(identity.jid);
  const ownLid = normalizeJid(identity.lid ?? null);
  const chatId = normalizeJid(key.remoteJid) ?? key.remoteJid;
  const isGroup = chatId.endsWith('@g.us');
  const isStatusBroadcast = chatId === 'status@broadcast';
  const isFromMe = key.fromMe === true;
  const isSelfChat = !isGroup && !isStatusBroadcast
    && ((ownJid !== null && chatId === ownJid) || (ownLid !== null && chatId === ownLid));

  let senderE164: string | null;
  let senderLid: string | null;
  if (isFromMe) {
    senderE164 = jidToE164(ownJid);
    senderLid = ownLid;
  } else if (isGroup || chatId.endsWith('@broadcast')) {
    // Groups, status updates and broadcast lists: the chat is not the sender (Baileys' decoder puts the sender in participant).
    // The sender's other address: participantAlt in groups, remoteJidAlt for broadcasts (decodeMessageNode).
    senderE164 = jidToE164(key.participant) ?? jidToE164(key.participantAlt) ?? jidToE164(key.remoteJidAlt);
    senderLid = lidOf(key.participant) ?? lidOf(key.participantAlt) ?? lidOf(key.remoteJidAlt);
  } else {
    senderE164 = jidToE164(chatId) ?? jidToE164(key.remoteJidAlt) ?? jidToE164(key.participantAlt);
    senderLid = lidOf(chatId) ?? lidOf(key.remoteJidAlt);
  }

  const { kind, text } = classify(content);
  return {
    chatId,
    senderE164,
    senderLid,
    isGroup,
    isFromMe,
    isStatusBroadcast,
    isSelfChat,
    text,
    kind,
    id: key.id ?? '',
    timestamp: timestampOf(raw.messageTimestamp),
  };
}
