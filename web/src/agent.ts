/* The agent conversation as the app holds it: turns rebuilt from the
 * conversation's numbered updates (`agent.follow` then `agent_update`
 * messages: turn_start, the stream chunk kinds, turn_end). Pure functions,
 * so the screen only renders. */
import type { AgentChunk } from './protocol';
import { isObject, num, str } from './protocol';

export interface PermissionItem {
  kind: 'permission';
  approvalId: string;
  toolCallId: string;
  title: string;
  options: string[];
  expiresAt: number;
  /** Set by permission_resolved. */
  outcome?: string;
  decidedBy?: string;
}

export type AgentItem =
  | { kind: 'message'; text: string }
  | { kind: 'thought'; text: string }
  | { kind: 'tool'; toolCallId: string; title: string; status: string }
  | { kind: 'plan'; entries: { content: string; status: string }[] }
  | PermissionItem;

export interface AgentTurn {
  /** The conversation's turn number. */
  turn: number;
  prompt: string;
  /** Who prompted (the token's user). */
  by?: string;
  items: AgentItem[];
  done: boolean;
  stopReason?: string;
  error?: string;
}

export function parseChunk(d: Record<string, unknown>): AgentChunk | null {
  switch (d.kind) {
    case 'message':
    case 'thought':
      return { kind: d.kind, text: str(d.text) };
    case 'tool':
      return { kind: 'tool', toolCallId: str(d.toolCallId), title: str(d.title), status: str(d.status) };
    case 'plan':
      return {
        kind: 'plan',
        entries: Array.isArray(d.entries)
          ? d.entries.filter(isObject).map((e) => ({ content: str(e.content), status: str(e.status, 'pending') }))
          : [],
      };
    case 'permission':
      return {
        kind: 'permission',
        approvalId: String(num(d.approvalId, 0) || str(d.approvalId)),
        toolCallId: str(d.toolCallId),
        title: str(d.title),
        options: Array.isArray(d.options) ? d.options.filter((o): o is string => typeof o === 'string') : [],
        expiresAt: num(d.expiresAt),
      };
    case 'permission_resolved':
      return {
        kind: 'permission_resolved',
        approvalId: String(num(d.approvalId, 0) || str(d.approvalId)),
        outcome: str(d.outcome),
        decidedBy: str(d.decidedBy),
      };
    default:
      return null;
  }
}

/** Text is appended to the last item of its kind when it is the last item;
 * a tool call updates its row; a plan replaces the previous plan; a
 * permission is a row that its resolution marks. */
export function applyChunk(turn: AgentTurn, c: AgentChunk): AgentTurn {
  const items = turn.items.slice();
  const last = items[items.length - 1];
  switch (c.kind) {
    case 'message':
    case 'thought':
      if (last && last.kind === c.kind) items[items.length - 1] = { kind: c.kind, text: last.text + c.text };
      else items.push({ kind: c.kind, text: c.text });
      break;
    case 'tool': {
      const i = items.findIndex((x) => x.kind === 'tool' && x.toolCallId === c.toolCallId);
      if (i >= 0) {
        const prev = items[i] as Extract<AgentItem, { kind: 'tool' }>;
        items[i] = { ...prev, title: c.title || prev.title, status: c.status || prev.status };
      } else items.push({ ...c });
      break;
    }
    case 'plan': {
      const i = items.findIndex((x) => x.kind === 'plan');
      if (i >= 0) items[i] = { kind: 'plan', entries: c.entries };
      else items.push({ kind: 'plan', entries: c.entries });
      break;
    }
    case 'permission':
      if (!items.some((x) => x.kind === 'permission' && x.approvalId === c.approvalId)) items.push({ ...c });
      break;
    case 'permission_resolved': {
      const i = items.findIndex((x) => x.kind === 'permission' && x.approvalId === c.approvalId);
      if (i >= 0) items[i] = { ...(items[i] as PermissionItem), outcome: c.outcome || 'decided', decidedBy: c.decidedBy };
      break;
    }
  }
  return { ...turn, items };
}

/** One `agent_update` applied to the turns (a new list; turns in order). */
export function applyUpdate(turns: AgentTurn[], turnNo: number, chunk: Record<string, unknown>): AgentTurn[] {
  const out = turns.slice();
  let i = out.findIndex((t) => t.turn === turnNo);
  if (chunk.kind === 'turn_start') {
    const t: AgentTurn = { turn: turnNo, prompt: str(chunk.text), by: str(chunk.by) || undefined, items: [], done: false };
    if (i >= 0) out[i] = t;
    else out.push(t);
    return out.sort((a, b) => a.turn - b.turn);
  }
  // The end of a turn never seen: a queued prompt cancelled before it
  // started (or one whose every update is gone): nothing to show.
  if (i < 0 && chunk.kind === 'turn_end') return out;
  if (i < 0) {
    // Its start is no longer kept (truncated): a turn without its prompt.
    out.push({ turn: turnNo, prompt: '', items: [], done: false });
    out.sort((a, b) => a.turn - b.turn);
    i = out.findIndex((t) => t.turn === turnNo);
  }
  const cur = out[i] as AgentTurn;
  if (chunk.kind === 'turn_end') {
    const stopReason = str(chunk.stopReason) || undefined;
    out[i] = { ...cur, done: true, stopReason, error: stopReason === 'error' ? str(chunk.message, 'The agent failed.') : undefined };
    return out;
  }
  const c = parseChunk(chunk);
  if (c) out[i] = applyChunk(cur, c);
  return out;
}
