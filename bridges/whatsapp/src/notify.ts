/**
 * Notifications: which chats asked for them (per workspace), the last event
 * seq seen from each workspace's helper (persisted, so a restarted bridge
 * resumes with `since`), and the short texts sent for events.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The event kinds the bridge subscribes to. */
export const NOTIFY_EVENTS = ['task.finished', 'notify'] as const;
/** Also subscribed to when the bridge's token has the `approve` scope (the helper refuses them otherwise). */
export const APPROVAL_EVENTS = ['approval.requested', 'approval.resolved'] as const;

export const NOTIFY_OFF = 'Notifications off.';
export const MISSED = 'Some notifications were missed while the bridge was away.';
/** MISSED, when approvals are announced too: one may be waiting unheard. */
export const MISSED_APPROVALS = `${MISSED} Send "approvals" to see what waits for an answer.`;

export interface HelperEvent {
  event: string;
  seq: number;
  payload: Record<string, unknown>;
}

interface WorkspaceState {
  chats: string[];
  lastSeq: number | null;
  workspaceId?: string | undefined;
}

interface StateFile {
  version: 1;
  workspaces: Record<string, WorkspaceState>;
}

/**
 * The state file (`notify.json`, mode 0600). Chat changes are written at
 * once; seq updates are debounced (debounceMs) and flushed on stop.
 */
export class NotifyState {
  private state: StateFile = { version: 1, workspaces: {} };
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly file: string | null, private readonly debounceMs = 500, private readonly onError: (e: Error) => void = () => {}) {
    if (!file) return;
    try {
      type Loose = { workspaces?: Record<string, { chats?: unknown; lastSeq?: unknown; workspaceId?: unknown } | null> | null } | null;
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Loose;
      if (typeof parsed?.workspaces === 'object' && parsed.workspaces !== null) {
        for (const [name, w] of Object.entries(parsed.workspaces)) {
          if (typeof w !== 'object' || w === null) continue;
          const chats = Array.isArray(w.chats) ? w.chats.filter((c): c is string => typeof c === 'string') : [];
          const lastSeq = typeof w.lastSeq === 'number' && Number.isInteger(w.lastSeq) && w.lastSeq >= 0 ? w.lastSeq : null;
          this.state.workspaces[name] = { chats, lastSeq, workspaceId: typeof w.workspaceId === 'string' ? w.workspaceId : undefined };
        }
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(new Error(`cannot read ${file}: ${(e as Error).message}; starting with notifications off`));
    }
  }

  private ws(name: string): WorkspaceState {
    let w = this.state.workspaces[name];
    if (!w) { w = { chats: [], lastSeq: null }; this.state.workspaces[name] = w; }
    return w;
  }

  /** Forgets the seq when the workspace id changed (another helper under the same name). */
  bindWorkspaceId(name: string, workspaceId: string | undefined): void {
    if (!workspaceId) return;
    const w = this.ws(name);
    if (w.workspaceId !== undefined && w.workspaceId !== workspaceId) w.lastSeq = null;
    if (w.workspaceId !== workspaceId) {
      w.workspaceId = workspaceId;
      if (w.chats.length > 0) this.saveSoon();
    }
  }

  chats(name: string): string[] {
    return [...(this.state.workspaces[name]?.chats ?? [])];
  }

  isOn(name: string, chatId: string): boolean {
    return this.chats(name).includes(chatId);
  }

  /** Returns true when the workspace went from no chats to one (a fresh subscription). */
  turnOn(name: string, chatId: string): boolean {
    const w = this.ws(name);
    if (w.chats.includes(chatId)) return false;
    const first = w.chats.length === 0;
    // Nobody listened meanwhile: start from now, not from an old seq.
    if (first) w.lastSeq = null;
    w.chats.push(chatId);
    this.saveNow();
    return first;
  }

  /** Returns true when the workspace has no chats left. */
  turnOff(name: string, chatId: string): boolean {
    const w = this.state.workspaces[name];
    if (!w?.chats.includes(chatId)) return (w?.chats.length ?? 0) === 0;
    w.chats = w.chats.filter((c) => c !== chatId);
    this.saveNow();
    return w.chats.length === 0;
  }

  lastSeq(name: string): number | null {
    return this.state.workspaces[name]?.lastSeq ?? null;
  }

  setLastSeq(name: string, seq: number): void {
    const w = this.ws(name);
    if (w.lastSeq === seq) return;
    w.lastSeq = seq;
    this.saveSoon();
  }

  private saveSoon(): void {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.saveNow(); }, this.debounceMs);
  }

  /** Writes the file now (atomically: a temporary file renamed over it). */
  saveNow(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (!this.file) return;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.state, null, 2)}\n`, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, this.file);
    } catch (e) {
      this.onError(new Error(`cannot write ${this.file}: ${(e as Error).message}`));
    }
  }

  /** Writes pending changes; for stopping. */
  flush(): void {
    if (this.timer) this.saveNow();
  }
}

function seconds(ms: number): string {
  const s = ms / 1000;
  if (s < 9.95) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return rest > 0 ? `${m} min ${rest} s` : `${m} min`;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

export const TAIL_LINES = 5;

/** The last n non-empty lines of a tail, in a ``` block (or '' when there are none). */
function tailBlock(tail: unknown, n = TAIL_LINES): string {
  if (typeof tail !== 'string') return '';
  const lines = tail.replace(/\s+$/, '').split('\n').filter((l) => l.trim().length > 0).slice(-n);
  if (lines.length === 0) return '';
  // A ``` inside would end the block early.
  return `\n\`\`\`\n${lines.join('\n').replace(/```/g, "'''")}\n\`\`\``;
}

const NAME_MAX_CP = 60;

/**
 * Untrusted text on one line, as the helper writes it in chat mode: tabs and
 * line ends as spaces, control and bidi-override characters as '?', cut to
 * maxCp code points with a final '…'.
 */
export function clean(v: unknown, maxCp = NAME_MAX_CP): string {
  if (typeof v !== 'string') return '';
  const cps = Array.from(v); // code points, as the helper counts them
  const keep = cps.length > maxCp ? maxCp - 1 : cps.length;
  let out = '';
  for (const ch of cps.slice(0, keep)) {
    const c = ch.codePointAt(0)!;
    if (ch === '\t' || ch === '\n' || ch === '\r') out += ' ';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) out += '?';
    else out += ch;
  }
  return keep < cps.length ? `${out}…` : out;
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {};
}

function approvalId(p: Record<string, unknown>): string {
  return typeof p.approvalId === 'number' && Number.isInteger(p.approvalId) ? String(p.approvalId) : '?';
}

/** "Run task "deploy" (make deploy)": the title, and for a command its command line. */
function approvalWhat(p: Record<string, unknown>): string {
  let s = clean(p.title, NAME_MAX_CP * 2);
  const action = record(p.action);
  if (typeof action.command === 'string') {
    s += ` (${clean(action.command)}`;
    const args = Array.isArray(action.args) ? action.args as unknown[] : [];
    for (const a of args.slice(0, 8)) if (typeof a === 'string') s += ` ${clean(a)}`;
    if (args.length > 8) s += ' …';
    s += ')';
  }
  return s;
}

const ANSWERS: readonly (readonly [string, string])[] = [['allow_once', 'yes'], ['allow_always', 'always'], ['deny', 'no']];

/**
 * The answers an approval accepts, exactly as they must be typed
 * ("yes 7 · always 7 · no 7"); `route` ("@lib ") when the plain words would
 * go to another workspace.
 */
export function approvalAnswers(p: Record<string, unknown>, route = ''): string {
  const options = Array.isArray(p.options) ? p.options as unknown[] : [];
  const id = approvalId(p);
  return ANSWERS.filter(([o]) => options.includes(o)).map(([, word]) => `${route}${word} ${id}`).join(' · ');
}

function timeLeft(p: Record<string, unknown>, nowMs: number): string {
  // To the nearest second: the few ms the event took to get here do not turn "5 min" into "4 min".
  const left = typeof p.expiresAt === 'number' ? Math.round((p.expiresAt - nowMs) / 1000) : 0;
  if (left <= 0) return 'expiring now';
  if (left < 120) return `${left} s left`;
  return `${Math.floor(left / 60)} min left`;
}

const OUTCOMES: Record<string, string> = {
  allow_once: 'allowed once', allow_always: 'allowed always', deny: 'denied', expired: 'expired (denied)', withdrawn: 'withdrawn',
};

export interface FormatOptions {
  /** For approvals: what must precede the answers for them to reach this workspace ("@lib "). */
  route?: string;
  /** The time an approval's time left is counted from. Default: now. */
  nowMs?: number;
}

/**
 * One event as a short message, or null for kinds the bridge does not
 * announce. Approvals read as the helper's own chat mode writes them.
 */
export function formatEvent(e: HelperEvent, opts: FormatOptions = {}): NotifyItem | null {
  const p = e.payload;
  if (e.event === 'approval.requested') {
    const by = clean(record(p.requestedBy).userId);
    return {
      text: `🔐 Approval ${approvalId(p)}: ${approvalWhat(p)}\nAsked by ${by}, ${timeLeft(p, opts.nowMs ?? Date.now())}.\nReply ${approvalAnswers(p, opts.route)}`,
      detail: '',
    };
  }
  if (e.event === 'approval.resolved') {
    const how = typeof p.decision === 'string' ? OUTCOMES[p.decision] ?? 'denied' : 'decided';
    return { text: `Approval ${approvalId(p)} ${how} by ${clean(p.decidedBy)}.`, detail: '' };
  }
  if (e.event === 'task.finished') {
    const name = str(p.name) ?? 'task';
    const dur = typeof p.durationMs === 'number' ? ` in ${seconds(p.durationMs)}` : '';
    const signal = str(p.signal);
    const exit = typeof p.exitCode === 'number' ? p.exitCode : null;
    let text: string;
    let failed = true;
    if (p.cancelled === true) text = `⏹ ${name} cancelled${dur}`;
    else if (p.timedOut === true) text = `⏱ ${name} timed out${dur}${signal ? ` (killed by SIG${signal})` : ''}`;
    else if (signal) text = `✘ ${name} killed by SIG${signal}${dur}`;
    else if (exit === 0) { text = `✔ ${name} finished: exit 0${dur}`; failed = false; }
    else text = `✘ ${name} failed: exit ${exit ?? '?'}${dur}`;
    if (p.truncated === true && failed) text += ' (output truncated)';
    return { text, detail: failed && p.cancelled !== true ? tailBlock(p.tail) : '' };
  }
  if (e.event === 'notify') {
    const title = str(p.title);
    const message = str(p.message) ?? '';
    const icon = p.level === 'error' ? '🚨' : p.level === 'warning' ? '⚠️' : '🔔';
    return { text: title ? `${icon} ${title}: ${message}` : `${icon} ${message}`, detail: '' };
  }
  return null;
}

export interface NotifyItem {
  text: string;
  detail: string;
  /** Sent at once as a message of its own (an approval to answer), never joined with others. */
  alone?: boolean;
}

export const MAX_LISTED = 10;
const MAX_CHARS = 4000;

/** Joins a burst of events into one message: at most MAX_LISTED, then "and N more". */
export function formatBatch(items: NotifyItem[], dropped = 0): string {
  const listed = items.slice(0, MAX_LISTED);
  const more = items.length - listed.length + dropped;
  const withDetail = listed.map((i) => i.text + i.detail).join('\n');
  let body = withDetail.length <= MAX_CHARS ? withDetail : listed.map((i) => i.text).join('\n');
  if (body.length > MAX_CHARS) body = `${body.slice(0, MAX_CHARS)}…`;
  return more > 0 ? `${body}\nand ${more} more` : body;
}
