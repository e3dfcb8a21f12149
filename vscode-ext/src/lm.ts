/*
 * vscode-lm agents, the editor's side (agents spec, "vscode-lm agents"): the
 * helper asks `editor/lm {turnId, vendor?, family?, messages}`; we pick a
 * language model, send it the conversation, stream its answer back as
 * `companion/lmChunk {turnId, text}` notifications (coalesced: at most one
 * per flushIntervalMs per turn) and answer `{stopReason, model}`.
 * `editor/lmCancel {turnId}` stops a turn: the model's request is cancelled
 * and the pending request answers `{stopReason: "cancelled"}`.
 *
 * No vscode import: VS Code's language-model API is reached through
 * LmBackend (lmVscode.ts builds it), so this module runs, and is tested, in
 * plain Node.
 */
import {
  CancellationTokenSource,
  ErrorCodes,
  ResponseError,
  type CancellationToken,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import type { LmCancelParams, LmChunkParams, LmMessage, LmParams, LmResult } from './protocol';

/** JSON-RPC error codes of editor/lm (agents spec). */
export const LM_NO_MODEL = -32001;
export const LM_MODEL_ERROR = -32002;
/** Too many turns at once (our own: the spec leaves it open). */
export const LM_BUSY = -32003;

export const LM_JUSTIFICATION = 'Companion: a prompt from your phone';

/** A chosen model, as the backend presents it. */
export interface LmModel {
  readonly id: string;
  readonly vendor: string;
  readonly family: string;
  /**
   * Sends the conversation; resolves to the answer's text fragments. Rejects
   * (or the iterable throws) with LmModelError for the model's own refusals.
   */
  send(messages: readonly LmMessage[], justification: string, token: CancellationToken): Promise<AsyncIterable<string>>;
}

export interface LmBackend {
  /** Models matching the selector (fields left out match any). */
  selectModels(selector: { vendor?: string; family?: string }): Promise<readonly LmModel[]>;
}

/** A LanguageModelError (no consent, blocked, not found...): answered as -32002. */
export class LmModelError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'LmModelError';
  }
}

export interface LmServiceOptions {
  backend: LmBackend;
  /** One line per turn (never the prompt's text). */
  log(line: string): void;
  maxConcurrentTurns?: number;
  /** Characters of all messages of a request together. */
  maxInputChars?: number;
  /** Characters of one answer; past it the model is cancelled and the turn ends "max_tokens". */
  maxOutputChars?: number;
  /** At most one companion/lmChunk per this many ms per turn. */
  flushIntervalMs?: number;
}

type Notify = (p: LmChunkParams) => Promise<void>;

interface Turn {
  id: string;
  cts: CancellationTokenSource;
  cancelled: boolean;
}

const TURN_ID_MAX = 128;

function describe(v: string | undefined): string {
  return v === undefined ? '*' : v;
}

/** Checks editor/lm's params; a ResponseError(InvalidParams) when they are wrong. */
export function checkLmParams(p: unknown, maxInputChars: number): LmParams {
  const bad = (why: string): never => {
    throw new ResponseError(ErrorCodes.InvalidParams, `editor/lm: ${why}`);
  };
  if (typeof p !== 'object' || p === null) return bad('params must be an object');
  const o = p as Record<string, unknown>;
  if (typeof o.turnId !== 'string' || o.turnId.length === 0 || o.turnId.length > TURN_ID_MAX) {
    return bad(`turnId must be a string of 1 to ${TURN_ID_MAX} characters`);
  }
  for (const k of ['vendor', 'family'] as const) {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') bad(`${k} must be a string`);
  }
  if (!Array.isArray(o.messages) || o.messages.length === 0) return bad('messages must be a non-empty array');
  let chars = 0;
  const messages: LmMessage[] = [];
  for (const m of o.messages as unknown[]) {
    const mm = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    if ((mm.role !== 'user' && mm.role !== 'assistant') || typeof mm.text !== 'string') {
      return bad('each message must be {role: "user"|"assistant", text: string}');
    }
    chars += mm.text.length;
    messages.push({ role: mm.role, text: mm.text });
  }
  if (chars > maxInputChars) return bad(`the messages have ${chars} characters, more than ${maxInputChars}`);
  // An empty string selects nothing in particular: the same as leaving it out.
  const vendor = typeof o.vendor === 'string' && o.vendor !== '' ? o.vendor : undefined;
  const family = typeof o.family === 'string' && o.family !== '' ? o.family : undefined;
  return { turnId: o.turnId, ...(vendor !== undefined ? { vendor } : {}), ...(family !== undefined ? { family } : {}), messages };
}

/**
 * Buffers a turn's fragments and sends them as companion/lmChunk, at most one
 * notification per interval: the first fragment goes at once, the ones that
 * follow within the interval are joined and sent when it ends.
 */
class Coalescer {
  private buf = '';
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  notifications = 0;
  failed: Error | undefined;

  constructor(private readonly turnId: string, private readonly notify: Notify, private readonly intervalMs: number) {}

  push(text: string): void {
    if (!text) return;
    this.buf += text;
    if (this.timer) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) this.flushNow();
    else this.timer = setTimeout(() => this.flushNow(), wait);
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buf) return;
    const text = this.buf;
    this.buf = '';
    this.last = Date.now();
    this.notifications++;
    // Sent in order; a failure (the helper gone) is kept for the turn to see.
    this.sending = this.sending.then(() => this.notify({ turnId: this.turnId, text })).catch((e: unknown) => {
      this.failed ??= e instanceof Error ? e : new Error(String(e));
    });
  }

  /** Sends what is buffered now and waits until every notification is written. */
  async drain(): Promise<void> {
    this.flushNow();
    await this.sending;
  }

  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.buf = '';
  }
}

export class LmService {
  private readonly turns = new Map<string, Turn>();
  private readonly maxConcurrent: number;
  private readonly maxInputChars: number;
  private readonly maxOutputChars: number;
  private readonly intervalMs: number;

  constructor(private readonly opts: LmServiceOptions) {
    this.maxConcurrent = opts.maxConcurrentTurns ?? 4;
    this.maxInputChars = opts.maxInputChars ?? 1024 * 1024;
    this.maxOutputChars = opts.maxOutputChars ?? 1024 * 1024;
    this.intervalMs = opts.flushIntervalMs ?? 20;
  }

  /** Turns running now. */
  get running(): number {
    return this.turns.size;
  }

  /** editor/lmCancel: true when that turn was running. */
  cancel(p: LmCancelParams | null | undefined): boolean {
    const t = typeof p?.turnId === 'string' ? this.turns.get(p.turnId) : undefined;
    if (!t) return false;
    t.cancelled = true;
    t.cts.cancel();
    return true;
  }

  /** Cancels every turn (the helper is gone, or the extension stops). */
  cancelAll(): void {
    for (const t of this.turns.values()) {
      t.cancelled = true;
      t.cts.cancel();
    }
  }

  /** editor/lm. rpcToken: the request's own JSON-RPC cancellation ($/cancelRequest). */
  async request(raw: unknown, notify: Notify, rpcToken?: CancellationToken): Promise<LmResult> {
    const p = checkLmParams(raw, this.maxInputChars);
    if (this.turns.has(p.turnId)) {
      throw new ResponseError(ErrorCodes.InvalidParams, `editor/lm: turn ${p.turnId} is already running`);
    }
    if (this.turns.size >= this.maxConcurrent) {
      throw new ResponseError(LM_BUSY, `too many language model turns at once (${this.maxConcurrent})`);
    }
    const turn: Turn = { id: p.turnId, cts: new CancellationTokenSource(), cancelled: false };
    this.turns.set(p.turnId, turn);
    const rpcSub = rpcToken?.onCancellationRequested(() => this.cancel({ turnId: p.turnId }));
    const started = Date.now();
    const inChars = p.messages.reduce((n, m) => n + m.text.length, 0);
    const out = new Coalescer(p.turnId, notify, this.intervalMs);
    let outChars = 0;
    let model: LmModel | undefined;
    let ending = 'error';
    const modelName = (): string => (model ? `${model.vendor}/${model.family}/${model.id}` : 'no model');
    try {
      const found = await this.opts.backend.selectModels({
        ...(p.vendor !== undefined ? { vendor: p.vendor } : {}),
        ...(p.family !== undefined ? { family: p.family } : {}),
      });
      model = found[0];
      if (!model) {
        ending = 'no model';
        throw new ResponseError(LM_NO_MODEL, `no language model matches vendor=${describe(p.vendor)} family=${describe(p.family)}`);
      }
      const stopReason = await this.stream(turn, model, p.messages, out, (n) => (outChars += n));
      ending = stopReason;
      return { stopReason, model: modelName() };
    } catch (e) {
      if (turn.cancelled && !(e instanceof ResponseError && e.code === LM_NO_MODEL)) {
        // A model that throws once cancelled (CancellationError) is a cancelled turn.
        out.discard();
        ending = 'cancelled';
        return { stopReason: 'cancelled', model: modelName() };
      }
      if (e instanceof ResponseError) throw e;
      if (e instanceof LmModelError) {
        ending = `refused (${e.code})`;
        throw new ResponseError(LM_MODEL_ERROR, e.message, { code: e.code });
      }
      const message = e instanceof Error ? e.message : String(e);
      ending = 'failed';
      throw new ResponseError(ErrorCodes.InternalError, `the language model failed: ${message}`);
    } finally {
      out.discard();
      rpcSub?.dispose();
      turn.cts.dispose();
      this.turns.delete(p.turnId);
      this.opts.log(
        `lm ${p.turnId}: ${modelName()} (asked vendor=${describe(p.vendor)} family=${describe(p.family)}), ` +
          `${p.messages.length} message(s) ${inChars} chars in, ${outChars} chars out in ${out.notifications} chunk(s), ` +
          `${ending}, ${Date.now() - started} ms`,
      );
    }
  }

  /** Reads the model's fragments until the end, a cancel or the output limit. */
  private async stream(
    turn: Turn,
    model: LmModel,
    messages: readonly LmMessage[],
    out: Coalescer,
    counted: (n: number) => void,
  ): Promise<LmResult['stopReason']> {
    let onCancel: () => void = () => undefined;
    const cancelled = new Promise<'cancelled'>((resolve) => {
      onCancel = () => resolve('cancelled');
      if (turn.cancelled) resolve('cancelled');
    });
    const sub = turn.cts.token.onCancellationRequested(() => onCancel());
    let iterator: AsyncIterator<string> | undefined;
    try {
      const sending = model.send(messages, LM_JUSTIFICATION, turn.cts.token);
      const fragments = await Promise.race([sending, cancelled]);
      if (fragments === 'cancelled') {
        sending.catch(() => undefined);
        return this.finish(out, 'cancelled');
      }
      iterator = fragments[Symbol.asyncIterator]();
      let total = 0;
      for (;;) {
        const next = iterator.next();
        const r = await Promise.race([next, cancelled]);
        if (r === 'cancelled') {
          next.catch(() => undefined);
          return await this.finish(out, 'cancelled');
        }
        if (r.done) break;
        if (out.failed) throw out.failed;
        const text = typeof r.value === 'string' ? r.value : '';
        if (total + text.length > this.maxOutputChars) {
          out.push(text.slice(0, this.maxOutputChars - total));
          counted(this.maxOutputChars - total);
          turn.cts.cancel();
          return await this.finish(out, 'max_tokens');
        }
        total += text.length;
        counted(text.length);
        out.push(text);
      }
      return await this.finish(out, turn.cancelled ? 'cancelled' : 'end_turn');
    } finally {
      sub.dispose();
      // Stops a model still streaming (cancel, limit): its iterator ends.
      if (iterator?.return) void Promise.resolve(iterator.return()).catch(() => undefined);
    }
  }

  /** Every chunk is written before the answer, so the helper sees them first. */
  private async finish(out: Coalescer, stopReason: LmResult['stopReason']): Promise<LmResult['stopReason']> {
    await out.drain();
    if (out.failed) throw out.failed;
    return stopReason;
  }

  dispose(): void {
    this.cancelAll();
  }
}

/**
 * Answers editor/lm and editor/lmCancel on one helper connection. Disposing
 * it (the helper exited) cancels the turns it started: a new helper numbers
 * its turns afresh.
 */
export function attachLm(conn: MessageConnection, lm: LmService): { dispose(): void } {
  const mine = new Set<string>();
  const notify: Notify = (p) => conn.sendNotification('companion/lmChunk', p);
  const subs = [
    conn.onRequest('editor/lm', async (p: unknown, token: CancellationToken) => {
      const id = typeof (p as LmParams | null)?.turnId === 'string' ? (p as LmParams).turnId : undefined;
      const owned = id !== undefined && !mine.has(id);
      if (owned) mine.add(id);
      try {
        return await lm.request(p, notify, token);
      } finally {
        if (owned) mine.delete(id);
      }
    }),
    conn.onNotification('editor/lmCancel', (p: LmCancelParams) => {
      lm.cancel(p);
    }),
  ];
  return {
    dispose: () => {
      for (const s of subs) s.dispose();
      for (const id of mine) lm.cancel({ turnId: id });
      mine.clear();
    },
  };
}
