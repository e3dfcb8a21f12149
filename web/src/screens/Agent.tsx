/* The agent conversation (docs/protocol.md "Agents"): prompts, streamed
 * answers as sanitized Markdown, thoughts, tool calls as rows, plans as
 * checklists, permission requests with allow/deny (approve scope), cancel,
 * new, earlier conversations. Everything shown comes from the followed
 * conversation's updates. Loaded on first use, with the Markdown renderer. */
import { useMemo, useState } from 'preact/hooks';
import { useModel } from '../ui/hooks';
import { ErrorBox, ScreenHeader } from '../ui/common';
import { renderMarkdown } from '../markdown';
import type { AgentItem, AgentTurn, PermissionItem } from '../agent';
import { errorText } from '../model';
import { isObject, num, str } from '../protocol';

function Markdown({ text }: { text: string }) {
  const html = useMemo(() => renderMarkdown(text), [text]);
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}

const PLAN_MARK: Record<string, string> = { completed: '☑', in_progress: '◐', pending: '☐' };
const DECISION: Record<string, string> = { allow_once: 'Allow once', allow_always: 'Always allow', deny: 'Deny' };
const OUTCOME: Record<string, string> = {
  allow_once: 'Allowed once', allow_always: 'Always allowed', deny: 'Denied', expired: 'Expired (denied)', withdrawn: 'Withdrawn', cancelled: 'Cancelled',
};

function Permission({ item }: { item: PermissionItem }) {
  const m = useModel();
  const [err, setErr] = useState<string | null>(null);
  const [sent, setSent] = useState(false);
  const open = !item.outcome;
  return (
    <div class="permission" role="group" aria-label={`Permission: ${item.title}`}>
      <p><strong>Permission:</strong> {item.title}</p>
      {!open && <p class="muted small-text">{OUTCOME[item.outcome ?? ''] ?? item.outcome}{item.decidedBy ? ` by ${item.decidedBy}` : ''}</p>}
      {open && !m.can('approve') && <p class="muted small-text">Waiting for approval (a device with the approve scope, or the editor).</p>}
      {open && m.can('approve') && (
        <div class="buttons">
          {item.options.map((o) => (
            <button key={o} type="button" class={o === 'deny' ? 'danger' : 'primary'} disabled={sent}
              onClick={() => { setSent(true); m.decide(item.approvalId, o).catch((e: unknown) => { setSent(false); setErr(errorText(e)); }); }}>
              {DECISION[o] ?? o}
            </button>
          ))}
        </div>
      )}
      <ErrorBox text={err} />
    </div>
  );
}

function Item({ item }: { item: AgentItem }) {
  switch (item.kind) {
    case 'permission':
      return <Permission item={item} />;
    case 'message':
      return <Markdown text={item.text} />;
    case 'thought':
      return (
        <details class="thought">
          <summary>Thinking</summary>
          <p class="muted">{item.text}</p>
        </details>
      );
    case 'tool':
      return (
        <div class="tool-row">
          <span class={`pill st-${item.status}`}>{item.status || 'pending'}</span>
          <span class="tool-title">{item.title}</span>
        </div>
      );
    case 'plan':
      return (
        <ul class="plan" aria-label="Plan">
          {item.entries.map((e, i) => (
            <li key={i} class={`plan-${e.status}`}>
              <span aria-hidden="true">{PLAN_MARK[e.status] ?? '☐'} </span>
              <span class="sr-only">{e.status.replace('_', ' ')}: </span>
              {e.content}
            </li>
          ))}
        </ul>
      );
  }
}

function Turn({ turn }: { turn: AgentTurn }) {
  return (
    <li class="turn">
      {turn.prompt && <div class="bubble me">{turn.prompt}</div>}
      <div class="bubble agent" aria-busy={!turn.done}>
        {turn.items.map((it, i) => <Item key={i} item={it} />)}
        {!turn.done && <p class="muted small-text" role="status">Working…</p>}
        {turn.stopReason && turn.stopReason !== 'end_turn' && <p class="muted small-text">Stopped: {turn.stopReason}</p>}
        {turn.error && <p class="error" role="alert">{turn.error}</p>}
      </div>
    </li>
  );
}

export function AgentScreen() {
  const m = useModel();
  const [text, setText] = useState('');
  const [agent, setAgent] = useState(m.defaultAgent ?? '');
  const [err, setErr] = useState<string | null>(null);
  const [convs, setConvs] = useState<{ id: string; title: string }[] | null>(null);
  const busy = m.turns.some((t) => !t.done);
  const agents = m.agents ?? [];
  const send = (e: Event) => {
    e.preventDefault();
    const t = text.trim();
    if (!t) return;
    setText('');
    m.prompt(t, agent || undefined).catch((x: unknown) => { setErr(errorText(x)); });
  };
  const listConversations = () => {
    m.conn?.command<unknown>('agent.conversations').then((r) => {
      const list = isObject(r) && Array.isArray(r.conversations) ? r.conversations.filter(isObject) : [];
      setConvs(list.map((c) => ({ id: str(c.id), title: `${str(c.id)} · ${str(c.agent)} · ${num(c.turns)} turn${num(c.turns) === 1 ? '' : 's'}${str(c.state) === 'running' ? ' · running' : ''}` })).filter((c) => c.id));
    }, (e: unknown) => { setErr(errorText(e)); });
  };
  return (
    <div class="screen">
      <ScreenHeader title="Agent" sub={m.conversation ? `Conversation ${m.conversation}` : 'New conversation'}>
        <button type="button" class="small" onClick={listConversations}>History</button>
        <button type="button" class="small" disabled={busy} onClick={() => { m.newConversation(agent || undefined).catch((e: unknown) => { setErr(errorText(e)); }); }}>New</button>
      </ScreenHeader>
      <ErrorBox text={err ?? m.agentError} />
      {m.agentNote && <p class="muted" role="status">{m.agentNote}</p>}
      {convs && (
        <ul class="chips" aria-label="Conversations">
          {convs.map((c) => (
            <li key={c.id}><button type="button" class="chip" onClick={() => { setConvs(null); m.follow(c.id).catch((e: unknown) => { setErr(errorText(e)); }); }}>{c.title}</button></li>
          ))}
          {!convs.length && <li class="muted">No earlier conversations.</li>}
        </ul>
      )}
      <ol class="turns" aria-label="Conversation" aria-live="polite">
        {m.turns.map((t) => <Turn key={t.turn} turn={t} />)}
      </ol>
      {m.agentQueued > 0 && <p class="muted small-text" role="status">{m.agentQueued} message{m.agentQueued === 1 ? '' : 's'} waiting for the agent</p>}
      <form class="composer" onSubmit={send}>
        {agents.length > 1 && (
          <label class="field">
            <span>Agent</span>
            <select value={agent} onChange={(e) => { setAgent(e.currentTarget.value); }}>
              {agents.map((a) => <option key={a.name} value={a.name}>{a.name} ({a.state})</option>)}
            </select>
          </label>
        )}
        <label class="field">
          <span>Message to the agent</span>
          <textarea rows={3} value={text} onInput={(e) => { setText(e.currentTarget.value); }} />
        </label>
        <div class="buttons">
          <button type="submit" class="primary" disabled={!text.trim()}>Send</button>
          {busy && <button type="button" class="danger" onClick={() => { m.cancelAgent().catch((e: unknown) => { setErr(errorText(e)); }); }}>Cancel</button>}
        </div>
      </form>
    </div>
  );
}
