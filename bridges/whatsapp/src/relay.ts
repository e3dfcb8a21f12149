/**
 * The relay: decides who may command, routes text to a helper in chat mode
 * and sends every reply back to the same chat, in order.
 */
import { createHash } from 'node:crypto';
import type { ChatTransport, ConnectionUpdate, IncomingMessage } from './transport.js';
import { bridgeMessageId, isBridgeMessageId, normalizeE164 } from './transport.js';
import type { HelperClient } from './helperClient.js';
import { HelperError, HelperOfflineError } from './helperClient.js';
import type { Reporter } from './log.js';
import type { HelperEvent, NotifyItem } from './notify.js';
import type { Outgoing } from './outbound.js';
import { numberParts } from './outbound.js';
import { parseFileWord, runFileWord } from './files.js';
import type { PairingCodes } from './pairingCodes.js';
import { strangerReply, WELCOME } from './pairingCodes.js';
import { APPROVAL_EVENTS, formatBatch, formatEvent, MISSED, MISSED_APPROVALS, NOTIFY_EVENTS, NOTIFY_OFF, NotifyState } from './notify.js';

export const TEXT_ONLY = 'Text commands only.';
export const OFFLINE = 'Workspace offline.';
export const SLOW_DOWN = 'Slow down: too many messages. Try again in a minute.';

export interface RelayOptions {
  transport: ChatTransport;
  /** First = default. */
  workspaces: HelperClient[];
  reporter: Reporter;
  /** E.164 numbers allowed to command (besides the account's own "message yourself" chat). */
  allow?: string[];
  /** Group JIDs whose messages are relayed. */
  groups?: string[];
  /** Messages per sender per minute. Default 10. */
  perSenderPerMinute?: number;
  /** Longest wait for a helper's first answer before the chat is told there is none yet. Default 120 s. */
  replyTimeoutMs?: number;
  /** Messages older than this (seconds) are not run. Default 120. */
  maxAgeSeconds?: number;
  /** Which chats want notifications, and the last event seq per workspace. Default: in memory only. */
  notify?: NotifyState;
  /** Events for one chat within this window are joined into one message. Default 2000 ms. */
  coalesceMs?: number;
  /** Events held per chat while WhatsApp is not connected. Default 100. */
  maxHeldPerChat?: number;
  /** Replies waiting per chat for WhatsApp to be connected again; more are dropped. Default 50. */
  maxQueuedRepliesPerChat?: number;
  /** A reply not sent within this long after it was ready (WhatsApp away) is dropped. Default 10 min. */
  replyHoldMs?: number;
  /**
   * A message the helper took but has not answered within this long (one
   * that went to an agent, whose first paragraph may take minutes) stops
   * holding back the replies to the chat's later messages; its own reply
   * goes out when it comes. Default 1000 ms.
   */
  orderHoldMs?: number;
  /** Pairing codes for strangers (pairingCodes.ts); none: strangers are ignored. */
  pairing?: PairingCodes;
  /** E.164 numbers that may approve pairing codes in their chat (and command, like the allowlist). */
  owners?: string[];
}

interface SenderWindow { times: number[]; warned: boolean }

/** Notifications waiting for one chat: the coalescing window, or WhatsApp to come back. */
interface ChatBuffer { items: NotifyItem[]; dropped: number; timer: NodeJS.Timeout | null }

/** approvals: the token has the `approve` scope, so approvals are announced too. */
export function notifyOnText(workspace: string, approvals = false): string {
  return approvals
    ? `Notifications on for ${workspace}: you'll hear when a task ends and when an approval is asked.`
    : `Notifications on for ${workspace}: you'll hear when a task ends.`;
}

/** What a workspace's helper is asked for: approvals only when its token may receive (and answer) them. */
function subscribedKinds(scopes: ReadonlySet<string>): readonly string[] {
  return scopes.has('approve') ? [...NOTIFY_EVENTS, ...APPROVAL_EVENTS] : NOTIFY_EVENTS;
}

export class Relay {
  private readonly transport: ChatTransport;
  /** The configured ones first (the first is the default), then those added through the API. */
  private readonly workspaces: HelperClient[];
  private readonly reporter: Reporter;
  private readonly allow: Set<string>;
  private readonly groups: Set<string>;
  private readonly perMinute: number;
  private readonly replyTimeoutMs: number;
  private readonly maxAgeSeconds: number;
  private readonly windows = new Map<string, SenderWindow>();
  private readonly tails = new Map<string, Promise<void>>();
  /** Ids of messages the bridge sent, so their echoes are not taken as commands. */
  private readonly ownSent = new Set<string>();
  private readonly ownSentOrder: string[] = [];
  private stopping = false;
  private readonly notify: NotifyState;
  private readonly coalesceMs: number;
  private readonly maxHeld: number;
  private readonly buffers = new Map<string, ChatBuffer>();
  /** `${workspace}|${chat message id}` of `run` commands -> the chat that ran it (its end is already answered there). */
  private readonly runOrigins = new Map<string, string>();
  private waOpen = false;
  /** The allowlist's LIDs (`<digits>@lid` -> E.164), resolved when WhatsApp opens. */
  private readonly allowLids = new Map<string, string>();
  private readonly maxQueued: number;
  private readonly replyHoldMs: number;
  private readonly orderHoldMs: number;
  /** Replies in each chat's queue, not sent yet. */
  private readonly queued = new Map<string, number>();
  /** Replies waiting for WhatsApp to be connected again. */
  private readonly openWaiters = new Set<(open: boolean) => void>();
  private readonly pairing: PairingCodes | null;
  private readonly owners = new Set<string>();
  private readonly onMessageBound = (m: IncomingMessage): void => { this.onMessage(m); };
  private readonly onConnectionBound = (u: ConnectionUpdate): void => { this.onConnection(u); };

  constructor(opts: RelayOptions) {
    if (opts.workspaces.length === 0) throw new Error('at least one workspace is needed');
    this.transport = opts.transport;
    this.workspaces = [...opts.workspaces];
    this.reporter = opts.reporter;
    this.allow = new Set();
    for (const a of opts.allow ?? []) {
      const n = normalizeE164(a);
      if (!n) throw new Error(`not a phone number in E.164 form: ${a}`);
      this.allow.add(n);
    }
    for (const o of opts.owners ?? []) {
      const n = normalizeE164(o);
      if (!n) throw new Error(`owners: not a phone number in E.164 form: ${o}`);
      this.owners.add(n);
      this.allow.add(n);
    }
    this.pairing = opts.pairing ?? null;
    this.pairing?.on('allowed', (a) => {
      this.admit(a.number, a.lid);
      this.reporter.log('info', `pairing: ${a.number} approved`);
      this.enqueue(a.chatId, Promise.resolve([WELCOME]));
    });
    this.groups = new Set(opts.groups ?? []);
    this.perMinute = opts.perSenderPerMinute ?? 10;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? 120000;
    this.maxAgeSeconds = opts.maxAgeSeconds ?? 120;
    for (const w of this.workspaces) this.wire(w);
    this.notify = opts.notify ?? new NotifyState(null);
    this.coalesceMs = opts.coalesceMs ?? 2000;
    this.maxHeld = opts.maxHeldPerChat ?? 100;
    this.maxQueued = opts.maxQueuedRepliesPerChat ?? 50;
    this.replyHoldMs = opts.replyHoldMs ?? 600000;
    this.orderHoldMs = opts.orderHoldMs ?? 1000;
    for (const w of this.workspaces) this.updateSubscription(w);
  }

  private wire(w: HelperClient): void {
    w.on('authFailed', (f) => {
      const label = this.workspaces.length > 1 ? ` "${w.name}"` : '';
      const fix = w.hasTokenFile ? 'Put a fresh token in the token file' : 'Its VS Code window gives a fresh one when it reconnects';
      this.toOwner(`Companion: the workspace${label} refused the bridge's token (${f.code}). ${fix}; until then commands get "${OFFLINE}"`);
    });
    w.on('notice', (text) => { this.toOwner(text); });
    w.on('subscribed', (seq) => {
      // The first subscription (no since): resume from here next time.
      if (this.notify.lastSeq(w.name) === null) this.notify.setLastSeq(w.name, seq);
    });
    w.on('event', (e) => { this.onHelperEvent(w, e); });
  }

  /** The workspaces' names, in order (the first is the default). */
  get workspaceNames(): string[] {
    return this.workspaces.map((w) => w.name);
  }

  /**
   * A workspace added while the bridge runs (the bridge's API): reachable as
   * `@name` from now on. With `replacing`, it takes that one's place (same
   * name, a fresh connection); the one replaced is the caller's to stop.
   */
  addWorkspace(w: HelperClient, replacing?: HelperClient): void {
    const i = replacing ? this.workspaces.indexOf(replacing) : -1;
    if (replacing && i >= 0) {
      replacing.removeAllListeners();
      this.workspaces[i] = w;
    } else {
      this.workspaces.push(w);
    }
    this.wire(w);
    this.updateSubscription(w);
  }

  /** Takes a workspace out (never the first): `@name` is unknown from now on. The caller stops its client. */
  removeWorkspace(w: HelperClient): boolean {
    const i = this.workspaces.indexOf(w);
    if (i <= 0) return false;
    this.workspaces.splice(i, 1);
    w.removeAllListeners();
    return true;
  }

  private updateSubscription(w: HelperClient): void {
    const on = this.notify.chats(w.name).length > 0;
    if (on && !w.subscribedTo) w.setSubscription({ events: subscribedKinds, since: () => this.notify.lastSeq(w.name) });
    else if (!on && w.subscribedTo) w.setSubscription(null);
  }

  private label(w: HelperClient): string {
    return this.workspaces.length === 1 && w.name === 'default' ? 'this workspace' : w.name;
  }

  private onHelperEvent(w: HelperClient, e: HelperEvent): void {
    // Stopping: leave the seq where it is, so the next run gets this event.
    if (this.stopping) return;
    const chats = this.notify.chats(w.name);
    if (e.event === 'resync') {
      // Events after our seq are gone (the helper restarted or its history moved on).
      this.notify.setLastSeq(w.name, e.seq);
      this.reporter.log('info', `[${w.name}] events were missed (resync at ${e.seq})`);
      const prefix = this.workspaces.length > 1 ? `[${w.name}] ` : '';
      const missed = w.scopes.has('approve') ? MISSED_APPROVALS : MISSED;
      for (const chat of chats) {
        this.flushChat(chat);
        this.addItem(chat, { text: prefix + missed, detail: '' });
        this.flushChat(chat);
      }
      return;
    }
    const last = this.notify.lastSeq(w.name);
    if (last !== null && e.seq <= last) {
      this.reporter.log('debug', `[${w.name}] event ${e.seq} already seen`);
      return;
    }
    this.notify.setLastSeq(w.name, e.seq);
    // With several workspaces the plain words go to the first: answers name theirs.
    const item = formatEvent(e, { route: this.workspaces.length > 1 ? `@${w.name} ` : '' });
    if (!item) return;
    if (e.event === 'approval.requested') item.alone = true;
    const origin = e.event === 'task.finished' && (typeof e.payload.id === 'string' || typeof e.payload.id === 'number')
      ? this.runOrigins.get(`${w.name}|${String(e.payload.id)}`) : undefined;
    if (this.workspaces.length > 1) item.text = `[${w.name}] ${item.text}`;
    for (const chat of chats) {
      if (chat === origin) continue; // that chat gets the run's own end message
      this.addItem(chat, { ...item });
    }
  }

  private addItem(chatId: string, item: NotifyItem): void {
    let b = this.buffers.get(chatId);
    if (!b) { b = { items: [], dropped: 0, timer: null }; this.buffers.set(chatId, b); }
    b.items.push(item);
    this.trimHeld(b);
    // An approval goes out at once, in a message of its own (after what waited before it).
    if (item.alone) this.flushChat(chatId);
    else if (!b.timer && this.waOpen) b.timer = setTimeout(() => { this.flushChat(chatId); }, this.coalesceMs);
  }

  /** Keeps at most maxHeld, dropping the oldest (approvals last: they wait for an answer). */
  private trimHeld(b: ChatBuffer): void {
    while (b.items.length > this.maxHeld) {
      const i = b.items.findIndex((x) => !x.alone);
      b.items.splice(i >= 0 ? i : 0, 1);
      b.dropped++;
    }
  }

  /**
   * Sends what the chat's buffer holds (kept while WhatsApp is not
   * connected): one message, except that each approval is a message of its
   * own, in order.
   */
  private flushChat(chatId: string): void {
    const b = this.buffers.get(chatId);
    if (!b) return;
    if (b.timer) { clearTimeout(b.timer); b.timer = null; }
    if (!this.waOpen || b.items.length === 0) return;
    const items = b.items.splice(0);
    const dropped = b.dropped;
    b.dropped = 0;
    this.buffers.delete(chatId);
    const messages: NotifyItem[][] = [];
    for (const item of items) {
      const last = messages.at(-1);
      if (item.alone || !last || last[0]!.alone) messages.push([item]);
      else last.push(item);
    }
    this.enqueueNotification(chatId, messages, dropped);
  }

  /** Sends the messages in order; those not sent (WhatsApp went away) go back to the buffer. */
  private enqueueNotification(chatId: string, messages: NotifyItem[][], dropped: number): void {
    const prev = this.tails.get(chatId) ?? Promise.resolve();
    const next = prev.then(async () => {
      for (let i = 0; i < messages.length; i++) {
        const more = i === messages.length - 1 ? dropped : 0;
        if (this.waOpen && await this.sendOne(chatId, formatBatch(messages[i]!, more), false)) continue;
        // WhatsApp went away: hold them (bounded) until it is back.
        let b = this.buffers.get(chatId);
        if (!b) { b = { items: [], dropped: 0, timer: null }; this.buffers.set(chatId, b); }
        b.items.unshift(...messages.slice(i).flat());
        b.dropped += dropped;
        this.trimHeld(b);
        return;
      }
    });
    this.tails.set(chatId, next);
    void next.finally(() => { if (this.tails.get(chatId) === next) this.tails.delete(chatId); });
  }

  private notifyCommand(chatId: string, helper: HelperClient, on: boolean, explicit: boolean): string {
    if (on) {
      this.notify.turnOn(helper.name, chatId);
      this.updateSubscription(helper);
      this.reporter.log('info', `notifications on for ${chatId} (${helper.name})`);
      return notifyOnText(this.label(helper), helper.scopes.has('approve'));
    }
    // A plain "notify off" stops every workspace's; "@name notify off" that one's.
    for (const w of explicit ? [helper] : this.workspaces) {
      this.notify.turnOff(w.name, chatId);
      this.updateSubscription(w);
    }
    this.reporter.log('info', `notifications off for ${chatId}${explicit ? ` (${helper.name})` : ''}`);
    return NOTIFY_OFF;
  }

  start(): void {
    if (this.transport.selfChatId()) this.waOpen = true;
    this.transport.on('message', this.onMessageBound);
    this.transport.on('connection', this.onConnectionBound);
  }

  /** Stops taking messages and waits (up to timeoutMs) for queued replies to go out. */
  async drain(timeoutMs = 5000): Promise<boolean> {
    this.stopping = true;
    this.transport.off('message', this.onMessageBound);
    for (const chat of [...this.buffers.keys()]) this.flushChat(chat);
    for (const b of this.buffers.values()) if (b.timer) { clearTimeout(b.timer); b.timer = null; }
    this.notify.flush();
    // Replies still waiting for WhatsApp are not sent any more.
    for (const w of [...this.openWaiters]) w(false);
    const all = Promise.all([...this.tails.values()]).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => { r(false); }, timeoutMs); });
    const done = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return done;
  }

  private onConnection(u: ConnectionUpdate): void {
    if (u.state === 'open') {
      this.reporter.log('info', `WhatsApp connected${u.ownE164 ? ` as ${u.ownE164}` : ''}`);
      this.waOpen = true;
      for (const w of [...this.openWaiters]) w(true);
      this.resolveAllowLids();
      // Notifications held while WhatsApp was away go out now.
      if (!this.stopping) for (const chat of [...this.buffers.keys()]) this.flushChat(chat);
    } else if (u.state === 'close') {
      this.waOpen = false;
    }
  }

  /** Contacts WhatsApp has moved to LIDs may write with no phone number: learn their LIDs. */
  private resolveAllowLids(): void {
    if (this.allow.size === 0 || !this.transport.lidsFor) return;
    const timeout = new Promise<never>((_, reject) => { setTimeout(() => { reject(new Error('no answer within 30 s')); }, 30000).unref(); });
    Promise.race([this.transport.lidsFor([...this.allow]), timeout]).then((found) => {
      for (const [e164, lid] of found) {
        if (this.allow.has(e164)) this.allowLids.set(lid, e164);
      }
      this.reporter.log('debug', `allowlist: ${found.size} of ${this.allow.size} numbers have a known LID`);
    }, (e: unknown) => {
      this.reporter.log('warn', `cannot look up the allowlist's LIDs (contacts addressed by LID only will be ignored): ${(e as Error).message}`);
    });
  }

  private toOwner(text: string): void {
    const self = this.transport.selfChatId();
    if (!self) {
      this.reporter.log('warn', `cannot tell the owner (WhatsApp not connected): ${text}`);
      return;
    }
    this.enqueue(self, Promise.resolve([text]));
  }

  /** Whether this message's chat may command (the allowlist); the bridge's API shows only such chats. */
  allows(m: IncomingMessage): boolean {
    return this.isAllowed(m).ok;
  }

  private isAllowed(m: IncomingMessage): { ok: boolean; why: string } {
    if (m.isStatusBroadcast) return { ok: false, why: 'status broadcast' };
    if (m.isGroup) {
      return this.groups.has(m.chatId) ? { ok: true, why: 'listed group' } : { ok: false, why: 'group not listed' };
    }
    // Only direct chats beyond that: a broadcast list (`…@broadcast`) or a channel (`…@newsletter`)
    // is never answered, whoever posts in it (an answer would go to the list or channel).
    const server = m.chatId.slice(m.chatId.indexOf('@') + 1);
    if (server !== 's.whatsapp.net' && server !== 'lid') {
      return { ok: false, why: server === 'broadcast' ? 'broadcast list' : server === 'newsletter' ? 'channel' : `not a direct chat (${server})` };
    }
    if (m.isFromMe) {
      // The owner writing in other chats is their own conversation, not a command.
      return m.isSelfChat ? { ok: true, why: 'own chat' } : { ok: false, why: 'own message in another chat' };
    }
    if (m.senderE164 && this.allow.has(m.senderE164)) return { ok: true, why: 'allowlist' };
    if (m.senderLid && this.allowLids.has(m.senderLid)) return { ok: true, why: 'allowlist (LID)' };
    return { ok: false, why: 'not in allowlist' };
  }

  /** Adds a sender to the allowlist (an approved pairing code): its number, its LID, or both. */
  admit(number: string, lid: string | null): void {
    const e164 = normalizeE164(number);
    if (e164 && !number.includes('@')) this.allow.add(e164);
    if (lid) this.allowLids.set(lid, e164 && !number.includes('@') ? e164 : lid);
    else if (number.endsWith('@lid')) this.allowLids.set(number, number);
  }

  /** The account's own chat, or an owner's direct chat. */
  private isOwnerChat(m: IncomingMessage): boolean {
    if (m.isGroup) return false;
    if (m.isFromMe) return m.isSelfChat;
    // An owner addressed by LID only: its LID was resolved with the allowlist's (owners are on it).
    const e164 = m.senderE164 ?? (m.senderLid ? this.allowLids.get(m.senderLid) : undefined);
    return e164 !== undefined && this.owners.has(e164);
  }

  /** A stranger in a direct chat: one pairing code (at most), nothing else. */
  private onStranger(m: IncomingMessage): void {
    if (!this.pairing || m.isFromMe) return;
    if (m.timestamp > 0 && Date.now() / 1000 - m.timestamp > this.maxAgeSeconds) return;
    const p = this.pairing.onStranger(m.senderE164 ?? m.senderLid ?? m.chatId, m.senderLid, m.chatId);
    if (!p) return;
    this.reporter.log('debug', `pairing: code sent to ${p.from}`);
    this.enqueue(m.chatId, Promise.resolve([strangerReply(p.code)]));
  }

  private rememberRun(key: string, chatId: string): void {
    this.runOrigins.set(key, chatId);
    if (this.runOrigins.size > 256) this.runOrigins.delete(this.runOrigins.keys().next().value!);
  }

  private rememberSent(id: string): void {
    this.ownSent.add(id);
    this.ownSentOrder.push(id);
    if (this.ownSentOrder.length > 1000) this.ownSent.delete(this.ownSentOrder.shift()!);
  }

  private onMessage(m: IncomingMessage): void {
    if (this.stopping) return;
    if (m.isFromMe && this.ownSent.has(m.id)) return; // our own reply, echoed back
    if (isBridgeMessageId(m.id)) {
      // A bridge's message (another bridge or bot on the account): answering it would loop.
      this.reporter.log('debug', `ignored a bridge's message in ${m.chatId} (${m.id})`);
      return;
    }
    const who = m.senderE164 ?? (m.senderLid ? this.allowLids.get(m.senderLid) : undefined) ?? m.chatId;
    const allowed = this.isAllowed(m);
    this.reporter.event('message', { chatId: m.chatId, from: m.senderE164, kind: m.kind, allowed: allowed.ok, id: m.id });
    if (!allowed.ok) {
      // Debug only: strangers' numbers and status updates are nobody's business in the log.
      // The chat id is what goes into "groups" (or the number into --allow).
      if (!(m.isFromMe && !m.isSelfChat)) this.reporter.log('debug', `ignored message in ${m.chatId} from ${who} (${allowed.why})`);
      if (allowed.why === 'not in allowlist') this.onStranger(m);
      return;
    }
    if (m.timestamp > 0 && Date.now() / 1000 - m.timestamp > this.maxAgeSeconds) {
      this.reporter.log('info', `ignored stale message from ${who} (sent ${Math.round(Date.now() / 1000 - m.timestamp)} s ago)`);
      return;
    }
    const limit = this.rateCheck(`${m.chatId}|${who}`);
    if (limit === 'drop') {
      this.reporter.log('info', `rate limit: dropped a message from ${who}`);
      return;
    }
    if (limit === 'warn') {
      this.reporter.log('info', `rate limit: ${who} sends more than ${this.perMinute} messages a minute`);
      this.enqueue(m.chatId, Promise.resolve([SLOW_DOWN]));
      return;
    }
    if (m.kind !== 'text' || m.text === null) {
      // In a group, members post photos and voice notes to each other: never answered there.
      if (!m.isGroup) this.enqueue(m.chatId, Promise.resolve([TEXT_ONLY]));
      return;
    }
    const pairing = this.pairing && this.isOwnerChat(m) ? this.pairing.ownerCommand(m.text) : null;
    if (pairing) {
      this.enqueue(m.chatId, Promise.resolve([pairing.reply]));
      return;
    }
    this.enqueue(m.chatId, this.answer(m.chatId, m.text));
  }

  /** 'ok', 'warn' (first refusal in the window: say so once) or 'drop'. */
  private rateCheck(key: string): 'ok' | 'warn' | 'drop' {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w) { w = { times: [], warned: false }; this.windows.set(key, w); }
    w.times = w.times.filter((t) => now - t < 60000);
    if (w.times.length === 0) w.warned = false;
    if (w.times.length < this.perMinute) {
      w.times.push(now);
      return 'ok';
    }
    if (w.warned) return 'drop';
    w.warned = true;
    return 'warn';
  }

  private pick(text: string): { helper: HelperClient | null; text: string; explicit: boolean; error?: string } {
    const m = /^@(\S+)\s*([\s\S]*)$/.exec(text.trim());
    if (!m) return { helper: this.workspaces[0]!, text, explicit: false };
    const name = m[1]!.toLowerCase();
    const helper = this.workspaces.find((w) => w.name.toLowerCase() === name);
    if (!helper) {
      return { helper: null, text, explicit: true, error: `Unknown workspace "${m[1]}". Workspaces: ${this.workspaces.map((w) => `@${w.name}`).join(', ')}.` };
    }
    return { helper, text: m[2]!.length > 0 ? m[2]! : 'help', explicit: true };
  }

  private async answer(chatId: string, text: string): Promise<Outgoing[]> {
    const route = this.pick(text);
    if (!route.helper) return [route.error!];
    const helper = route.helper;
    // Notifications are the bridge's business: the helper is not asked.
    const notify = /^notify\s+(on|off)$/i.exec(route.text.trim());
    if (notify) return [this.notifyCommand(chatId, helper, notify[1]!.toLowerCase() === 'on', route.explicit)];
    const prefix = this.workspaces.length > 1 && helper !== this.workspaces[0] ? `[${helper.name}] ` : '';
    // `file <path>`, `diff all`, `diff file [path]`: a document (files.ts).
    const fileWord = parseFileWord(route.text);
    if (fileWord) return (await runFileWord(helper, fileWord)).map((o) => (typeof o === 'string' ? prefix + o : o));
    const isRun = /^run\s/i.test(route.text.trim());
    // The parts of a long reply are numbered "(1/3)" (outbound.ts), then the workspace's name goes first.
    const withPrefix = (parts: string[]): string[] => numberParts(parts).map((p, i) => (i === 0 ? prefix + p : p));
    // The chat's queue waits for this reply only while the helper is quick (a command);
    // an agent's answer may take minutes, and "stop" or "status" must not wait for it.
    let quiet: (() => void) | undefined;
    const released = new Promise<null>((resolve) => { quiet = () => { resolve(null); }; });
    const reply = helper.chat(route.text, (later) => { this.enqueue(chatId, Promise.resolve(withPrefix(later))); },
      isRun ? (id) => { this.rememberRun(`${helper.name}|${id}`, chatId); } : undefined,
      { afterMs: this.orderHoldMs, fn: () => { quiet?.(); } }, chatKey(chatId));
    const answered = this.settle(helper, chatId, reply, withPrefix);
    const first = await Promise.race([answered, released]);
    if (first !== null) return first;
    this.reporter.log('debug', `[${helper.name}] no answer within ${this.orderHoldMs} ms: the chat's later replies go first`);
    // Its first reply goes out through onLater, in order with the later ones; here only what the chat is told instead.
    answered.then((parts) => { if (parts.length > 0) this.enqueue(chatId, Promise.resolve(parts)); },
      (e: unknown) => { this.reporter.log('error', `reply failed: ${(e as Error).message}`); });
    return [];
  }

  /**
   * The first reply, or what the chat is told instead: offline, an error,
   * or no answer within replyTimeoutMs (a reply that still comes after
   * that is sent then, not lost).
   */
  private async settle(helper: HelperClient, chatId: string, reply: Promise<string[]>, withPrefix: (parts: string[]) => string[]): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    const noAnswer = new HelperError('TIMEOUT', 'no answer');
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => { reject(noAnswer); }, this.replyTimeoutMs);
      });
      return withPrefix(await Promise.race([reply, timeout]));
    } catch (e) {
      if (e === noAnswer) {
        reply.then((late) => { if (late.length > 0) this.enqueue(chatId, Promise.resolve(withPrefix(late))); }, () => {});
      }
      if (e instanceof HelperOfflineError) return [OFFLINE];
      if (e instanceof HelperError) {
        this.reporter.log('warn', `[${helper.name}] ${e.code}: ${e.message}`);
        return [e.code === 'TIMEOUT' ? 'No answer from the workspace yet.' : `Workspace error: ${e.message}`];
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Appends a reply to the chat's queue: replies leave in the order their
   * messages came. While WhatsApp is away they wait for it (at most
   * maxQueuedRepliesPerChat per chat, each at most replyHoldMs).
   */
  private enqueue(chatId: string, reply: Promise<Outgoing[]>): void {
    const waiting = this.queued.get(chatId) ?? 0;
    if (!this.waOpen && waiting >= this.maxQueued) {
      this.reporter.log('warn', `WhatsApp is not connected and ${waiting} replies already wait for ${chatId}: one more dropped`);
      void reply.catch(() => {});
      return;
    }
    this.queued.set(chatId, waiting + 1);
    const prev = this.tails.get(chatId) ?? Promise.resolve();
    const next = prev.then(async () => {
      let parts: Outgoing[];
      try {
        parts = await reply;
      } catch (e) {
        this.reporter.log('error', `reply failed: ${(e as Error).message}`);
        return;
      }
      const ready = Date.now();
      for (const part of parts) await this.sendOne(chatId, part, true, ready);
    }).finally(() => {
      const n = (this.queued.get(chatId) ?? 1) - 1;
      if (n > 0) this.queued.set(chatId, n); else this.queued.delete(chatId);
    });
    this.tails.set(chatId, next);
    void next.finally(() => { if (this.tails.get(chatId) === next) this.tails.delete(chatId); });
  }

  /** Resolves true once WhatsApp is connected, false after ms or when stopping. */
  private waitOpen(ms: number): Promise<boolean> {
    if (this.waOpen) return Promise.resolve(true);
    if (this.stopping || ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (open: boolean): void => {
        clearTimeout(timer);
        this.openWaiters.delete(done);
        resolve(open);
      };
      const timer = setTimeout(() => { done(false); }, ms);
      this.openWaiters.add(done);
    });
  }

  /**
   * Sends one message: up to 3 attempts while WhatsApp is connected; with
   * hold, a reply waits for a lost connection to come back (up to
   * replyHoldMs from `since`) without using up its attempts.
   */
  private async sendOne(chatId: string, out: Outgoing, hold: boolean, since = Date.now()): Promise<boolean> {
    let failures = 0;
    for (;;) {
      if (hold && !this.waOpen) {
        if (!await this.waitOpen(since + this.replyHoldMs - Date.now())) {
          this.reporter.log('warn', `a reply to ${chatId} was not sent: WhatsApp was not connected${this.stopping ? ' when the bridge stopped' : ` for ${Math.round(this.replyHoldMs / 1000)} s`}`);
          return false;
        }
      }
      try {
        const sent = typeof out === 'string'
          ? await this.transport.sendText(chatId, out, { id: bridgeMessageId() })
          : await this.transport.sendDocument(chatId, out, { id: bridgeMessageId() });
        this.rememberSent(sent.id);
        this.reporter.event('sent', typeof out === 'string' ? { chatId, id: sent.id, length: out.length } : { chatId, id: sent.id, document: out.fileName, bytes: out.data.length });
        return true;
      } catch (e) {
        failures++;
        this.reporter.log('warn', `sending to ${chatId} failed (attempt ${failures}): ${(e as Error).message}`);
        this.reporter.event('error', { chatId, message: (e as Error).message });
        if (hold && !this.waOpen) { failures--; continue; } // the connection went away: wait for it
        if (failures >= 3) return false;
        await new Promise((r) => { setTimeout(r, 500 * failures); });
        if (hold && !this.waOpen) failures--; // it failed because the connection was going away
      }
    }
  }
}

/** The key the helper keeps a chat's agent conversation under: a digest of
 * the chat id, so the helper never holds a phone number. */
export function chatKey(chatId: string): string {
  return createHash('sha256').update(`companion-chat:${chatId}`).digest('base64url').slice(0, 22);
}
