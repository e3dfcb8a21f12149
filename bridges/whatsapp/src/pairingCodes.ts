/**
 * Pairing codes: how a new sender gets on the allowlist.
 *
 * A direct message from a stranger gets ONE reply: a short code and "ask
 * the owner to approve". The owner (the account's own chat, or a number in
 * `owners`) sends `pair CODE` (or approves through the bridge's API); the
 * sender then joins the allowlist. Bounds: at most maxPending codes at once,
 * each valid ttlMs, one reply per sender per replyEveryMs, at most
 * maxIssuedPerHour codes an hour whoever asks; wrong codes are limited to
 * maxWrong per wrongWindowMs. Nothing else is ever answered to strangers.
 *
 * AllowedFile keeps the numbers approved here in `<stateDir>/allowed.json`
 * (0600, written atomically) when the bridge runs alone; when the editor
 * runs it (`allowManaged`), the editor's setting is the list and the file is
 * not used: the `allowed` event tells it what to add.
 *
 * Pending codes survive a restart (the bridge crashing, the editor
 * restarting it): with `file`, PairingCodes keeps its pending codes and the
 * counters that bound strangers (who was answered this hour, codes issued
 * this hour, wrong guesses) in `<stateDir>/pairing.json` (0600, written
 * atomically after every change); expired entries are dropped on load, and
 * a corrupt or unreadable file is reported (onError) and ignored.
 *
 * Ownership: PairingCodes owns its pending codes and counters and
 * pairing.json; AllowedFile owns allowed.json.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, constants as fsc, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { normalizeE164 } from './transport.js';

/** No 0/O, 1/I/L: read aloud or typed on a phone without doubt. */
export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const CODE_LENGTH = 6;
export const ALLOWED_FILE = 'allowed.json';
export const PAIRING_FILE = 'pairing.json';

export interface PendingCode {
  code: string;
  /** The sender's number (E.164) when known, else its LID (`<digits>@lid`). */
  from: string;
  /** The sender's LID too, when WhatsApp told both. */
  lid: string | null;
  /** The chat to welcome them in. */
  chatId: string;
  name?: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export type PairingFailure = 'RATE_LIMITED' | 'UNKNOWN_CODE' | 'EXPIRED' | 'BAD_CODE';

export type PairingResult =
  | { ok: true; entry: PendingCode }
  | { ok: false; error: PairingFailure; message: string };

export interface PairingEvents {
  pairing: (p: PendingCode) => void;
  allowed: (a: { number: string; lid: string | null; chatId: string }) => void;
}

export interface PairingOptions {
  maxPending?: number;
  ttlMs?: number;
  replyEveryMs?: number;
  maxIssuedPerHour?: number;
  maxWrong?: number;
  wrongWindowMs?: number;
  now?: () => number;
  /** Where pending codes and counters are kept across restarts (`<stateDir>/pairing.json`); none: memory only. */
  file?: string;
  /** A problem with `file` (corrupt, unreadable, unwritable): reported, never thrown. */
  onError?: (message: string) => void;
}

export function strangerReply(code: string): string {
  return `You are not on this Companion's allowlist. Your code: ${code}\nAsk the owner to approve: they send "pair ${code}" (valid 1 hour).`;
}

export const WELCOME = 'Welcome: the owner approved you. You may now send commands (try "help").';

export class PairingCodes extends EventEmitter {
  private readonly pending = new Map<string, PendingCode>();
  /** Sender key -> when it was last answered (pruned after replyEveryMs). */
  private readonly replied = new Map<string, number>();
  private issued: number[] = [];
  private wrong: number[] = [];
  private readonly maxPending: number;
  private readonly ttlMs: number;
  private readonly replyEveryMs: number;
  private readonly maxIssuedPerHour: number;
  private readonly maxWrong: number;
  private readonly wrongWindowMs: number;
  private readonly now: () => number;
  private readonly file: string | null;
  private readonly onError: (message: string) => void;

  constructor(opts: PairingOptions = {}) {
    super();
    this.maxPending = opts.maxPending ?? 3;
    this.ttlMs = opts.ttlMs ?? 3600000;
    this.replyEveryMs = opts.replyEveryMs ?? 3600000;
    this.maxIssuedPerHour = opts.maxIssuedPerHour ?? 10;
    this.maxWrong = opts.maxWrong ?? 5;
    this.wrongWindowMs = opts.wrongWindowMs ?? 600000;
    this.now = opts.now ?? Date.now;
    this.file = opts.file ?? null;
    this.onError = opts.onError ?? ((): void => undefined);
    if (this.file) this.load(this.file);
  }

  /** Reads the saved state: expired codes and counters older than their window are dropped; a bad file is reported and ignored. */
  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(`pairing: cannot read ${file} (${(e as Error).message}); pending codes from before the restart are lost`);
      return;
    }
    const saved = parseSaved(text);
    if (!saved) {
      this.onError(`pairing: ${file} is corrupt; it is ignored (pending codes from before the restart are lost) and rewritten at the next code`);
      return;
    }
    for (const p of saved.pending) if (!this.pending.has(p.code)) this.pending.set(p.code, p);
    for (const [k, t] of saved.replied) this.replied.set(k, t);
    this.issued = saved.issued;
    this.wrong = saved.wrong;
    const before = this.pending.size;
    this.prune();
    // More than the limit (a file written with other limits): the newest kept.
    const extra = [...this.pending.values()].sort((a, b) => a.expiresAt - b.expiresAt).slice(0, Math.max(0, this.pending.size - this.maxPending));
    for (const p of extra) this.pending.delete(p.code);
    if (before !== this.pending.size) this.save();
  }

  /** Writes the state (pending codes, counters) atomically, mode 0600; a failure is reported, the codes stay in memory. */
  private save(): void {
    if (!this.file) return;
    const state: SavedState = {
      version: 1,
      pending: [...this.pending.values()],
      replied: [...this.replied.entries()],
      issued: this.issued,
      wrong: this.wrong,
    };
    try {
      writePrivateAtomic(this.file, `${JSON.stringify(state)}\n`);
    } catch (e) {
      this.onError(`pairing: cannot save ${this.file} (${(e as Error).message}); pending codes are kept until the bridge stops`);
    }
  }

  override on<K extends keyof PairingEvents>(event: K, listener: PairingEvents[K]): this {
    return super.on(event, listener);
  }

  private prune(): void {
    const now = this.now();
    for (const [k, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(k);
    for (const [k, t] of this.replied) if (now - t >= this.replyEveryMs) this.replied.delete(k);
    this.issued = this.issued.filter((t) => now - t < 3600000);
    this.wrong = this.wrong.filter((t) => now - t < this.wrongWindowMs);
  }

  /**
   * A stranger wrote: the code to answer with, or null (answer nothing:
   * already answered within the hour, or too many codes pending/issued).
   */
  onStranger(from: string, lid: string | null, chatId: string, name?: string): PendingCode | null {
    this.prune();
    if (this.replied.has(from)) return null;
    if (this.pending.size >= this.maxPending || this.issued.length >= this.maxIssuedPerHour) return null;
    let code: string;
    do {
      code = '';
      for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET.charAt(randomInt(CODE_ALPHABET.length));
    } while (this.pending.has(code));
    const now = this.now();
    const entry: PendingCode = { code, from, lid, chatId, expiresAt: now + this.ttlMs, ...(name ? { name } : {}) };
    this.pending.set(code, entry);
    this.replied.set(from, now);
    this.issued.push(now);
    this.save();
    this.emit('pairing', { ...entry });
    return entry;
  }

  list(): PendingCode[] {
    this.prune();
    return [...this.pending.values()].map((p) => ({ ...p }));
  }

  private take(input: unknown): PairingResult {
    this.prune();
    if (this.wrong.length >= this.maxWrong) {
      const wait = Math.ceil((this.wrong[0]! + this.wrongWindowMs - this.now()) / 60000);
      return { ok: false, error: 'RATE_LIMITED', message: `Too many wrong codes: try again in ${wait} min.` };
    }
    const code = typeof input === 'string' ? input.trim().toUpperCase() : '';
    if (!new RegExp(`^[${CODE_ALPHABET}]{${CODE_LENGTH}}$`).test(code)) {
      this.wrong.push(this.now());
      this.save();
      return { ok: false, error: 'BAD_CODE', message: `Not a pairing code: a code is ${CODE_LENGTH} letters and digits.` };
    }
    const entry = this.pending.get(code);
    if (!entry) {
      this.wrong.push(this.now());
      this.save();
      return { ok: false, error: 'UNKNOWN_CODE', message: `No pending code ${code} (wrong, expired, or already used).` };
    }
    this.pending.delete(code);
    this.save();
    return { ok: true, entry };
  }

  /** Approves a code: emits `allowed`; the caller admits the sender. */
  approve(code: unknown): PairingResult {
    const r = this.take(code);
    if (r.ok) this.emit('allowed', { number: r.entry.from, lid: r.entry.lid, chatId: r.entry.chatId });
    return r;
  }

  deny(code: unknown): PairingResult {
    return this.take(code);
  }

  /** The answer to an owner's `pair`, `pair CODE` or `deny CODE`; null when the text is none of these. */
  ownerCommand(text: string): { reply: string; approved?: PendingCode } | null {
    const m = /^\s*(pair|deny)(?:\s+(\S+))?\s*$/i.exec(text);
    if (!m) return null;
    const verb = m[1]!.toLowerCase();
    if (!m[2]) {
      if (verb === 'deny') return { reply: 'Usage: deny CODE' };
      const list = this.list();
      if (list.length === 0) return { reply: 'No pending pairing codes.' };
      const now = this.now();
      return { reply: `Pending codes:\n${list.map((p) => `${p.code}  ${p.from}  (${Math.max(1, Math.ceil((p.expiresAt - now) / 60000))} min left)`).join('\n')}` };
    }
    const r = verb === 'pair' ? this.approve(m[2]) : this.deny(m[2]);
    if (!r.ok) return { reply: r.message };
    return verb === 'pair'
      ? { reply: `Approved ${r.entry.from}: they may send commands now.`, approved: r.entry }
      : { reply: `Denied ${r.entry.from} (code ${r.entry.code}).` };
  }
}

/** pairing.json: `{version: 1, pending: [PendingCode], replied: [[sender, ms]], issued: [ms], wrong: [ms]}`. */
interface SavedState {
  version: 1;
  pending: PendingCode[];
  replied: [string, number][];
  issued: number[];
  wrong: number[];
}

const MAX_SAVED = 10000;
const isTime = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;
const isShortString = (x: unknown, max = 200): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;

/** The saved state, or null when the text is not one (anything malformed: the whole file is ignored). */
function parseSaved(text: string): SavedState | null {
  let v: unknown;
  try { v = JSON.parse(text); } catch { return null; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.version !== 1) return null;
  const { pending, replied, issued, wrong } = o;
  if (!Array.isArray(pending) || !Array.isArray(replied) || !Array.isArray(issued) || !Array.isArray(wrong)) return null;
  if (pending.length > MAX_SAVED || replied.length > MAX_SAVED || issued.length > MAX_SAVED || wrong.length > MAX_SAVED) return null;
  const codeRe = new RegExp(`^[${CODE_ALPHABET}]{${CODE_LENGTH}}$`);
  const out: PendingCode[] = [];
  for (const p of pending as unknown[]) {
    if (typeof p !== 'object' || p === null) return null;
    const e = p as Record<string, unknown>;
    if (typeof e.code !== 'string' || !codeRe.test(e.code) || !isShortString(e.from) || !isShortString(e.chatId) || !isTime(e.expiresAt)) return null;
    if (e.lid !== null && !isShortString(e.lid)) return null;
    if (e.name !== undefined && !isShortString(e.name)) return null;
    out.push({ code: e.code, from: e.from, lid: e.lid, chatId: e.chatId, expiresAt: e.expiresAt, ...(e.name !== undefined ? { name: e.name } : {}) });
  }
  if (!(replied as unknown[]).every((r) => Array.isArray(r) && r.length === 2 && isShortString(r[0]) && isTime(r[1]))) return null;
  if (!(issued as unknown[]).every(isTime) || !(wrong as unknown[]).every(isTime)) return null;
  return { version: 1, pending: out, replied: replied as [string, number][], issued: issued as number[], wrong: wrong as number[] };
}

/** Writes a file only this user may read (0600), atomically: a temp file, fsync, rename. */
function writePrivateAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomInt(1e9)}.tmp`;
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* gone */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
}

/** `<stateDir>/allowed.json`: `{"allow": ["+15551234567", "1234@lid"]}`. */
export class AllowedFile {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, ALLOWED_FILE);
  }

  /** The numbers (E.164) and LIDs kept; a missing file is empty; a bad one is an error (the caller warns). */
  load(): string[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`cannot read ${this.file}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try { parsed = JSON.parse(text); } catch { throw new Error(`${this.file} is not JSON; approved senders in it are ignored`); }
    const list = (parsed as { allow?: unknown } | null)?.allow;
    if (!Array.isArray(list)) throw new Error(`${this.file} has no "allow" list; approved senders in it are ignored`);
    return list.filter((x): x is string => typeof x === 'string' && (normalizeE164(x) !== null || /^\d{1,20}@lid$/.test(x)))
      .map((x) => (x.endsWith('@lid') ? x : normalizeE164(x)!));
  }

  /** Adds entries and writes the file atomically (a temp file, fsync, rename), mode 0600. */
  add(entries: string[]): void {
    let current: string[] = [];
    try { current = this.load(); } catch { /* rewritten whole below */ }
    const all = [...new Set([...current, ...entries])];
    writePrivateAtomic(this.file, `${JSON.stringify({ allow: all }, null, 2)}\n`);
  }
}
