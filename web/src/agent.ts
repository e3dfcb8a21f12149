/* The agent conversation as the app holds it: turns built from the
 * stream of an `agent.prompt` (or `agent.follow`). Pure functions, so the
 * screen only renders. */
import type { AgentChunk } from './protocol';
import { isObject, str } from './protocol';

export type AgentItem =
  | { kind: 'message'; text: string }
  | { kind: 'thought'; text: string }
  | { kind: 'tool'; toolCallId: string; title: string; status: string }
  | { kind: 'plan'; entries: { content: string; status: string }[] };

export interface AgentTurn {
  /** The request id of the stream. */
  id: string;
  prompt: string;
  agent?: string;
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
    default:
      return null;
  }
}

/** Text is appended to the last item of its kind when it is the last item;
 * a tool call updates its row; a plan replaces the previous plan. */
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
  }
  return { ...turn, items };
}
