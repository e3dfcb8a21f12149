/* The app's state: the stored workspaces, the open one's connection, and
 * what its events, task runs, approvals and agent turns have produced.
 * Views subscribe and re-render at most once a frame. */
import { Connection, ProtocolError } from './conn';
import type { AgentInfo, Approval, AuthOk, EventData, StreamEnd, TaskDef, WorkspaceInfo } from './protocol';
import { APPROVAL_EVENTS, EVENT_KINDS, isObject, num, str } from './protocol';
import type { Note, StoredWorkspace } from './storage';
import * as store from './storage';
import { AnsiLines } from './ansi';
import type { AgentTurn } from './agent';
import { applyUpdate } from './agent';
import { actionText, approvalIdOf, parseApproval, requesterText } from './approvals';

export type Tab = 'status' | 'diff' | 'log' | 'files' | 'tasks' | 'notes' | 'approvals' | 'agent';
export type Screen = Tab | 'workspaces';

export interface Route {
  screen: Screen;
  /** Diff: the file and side; Files: the folder and the open file. */
  path?: string;
  staged?: boolean;
  file?: string;
  /** Files: the workspace folder (by name) when there are several; the first when absent. */
  folder?: string;
}

export interface TaskRun {
  id: string;
  name: string;
  startedAt: number;
  out: AnsiLines;
  /** Bumped on every chunk, so views know to redraw. */
  version: number;
  end?: StreamEnd;
  error?: ProtocolError;
  cancelling?: boolean;
  /** A `confirm` task: the approval it waits for (approval_pending), until it starts. */
  approval?: { id: string; expiresAt: number };
  started?: boolean;
}

/** What a task run that ended without running says (denied, expired, cancelled while it waited). */
export function runErrorText(r: TaskRun): string {
  if (r.error && r.approval && !r.started && r.error.code === 'FORBIDDEN') return `Not run: ${r.error.message}.`;
  return r.error ? errorText(r.error) : '';
}

export function errorText(e: unknown): string {
  if (e instanceof ProtocolError) {
    switch (e.code) {
      case 'FORBIDDEN':
        return `Not allowed: ${e.message} This device's token may lack the scope it needs.`;
      case 'RATE_LIMITED':
        return 'The helper is busy with this device\'s requests; try again in a moment.';
      case 'RESULT_TOO_LARGE':
        return 'The answer is too large to send. Ask for less: a single file, or fewer bytes.';
      case 'OFFLINE':
      case 'DISCONNECTED':
        return 'Not connected to the helper. The app reconnects by itself.';
      case 'NOT_A_REPOSITORY':
        return 'This workspace folder is not a git repository.';
      case 'BUSY':
        return `The helper is busy: ${e.message}.`;
      case 'EDITOR_UNAVAILABLE':
        return 'This needs the editor, which is not there (or did not answer).';
      default:
        return `${e.message} (${e.code})`;
    }
  }
  return e instanceof Error ? e.message : String(e);
}

function noteFor(e: EventData): Note | null {
  const p = e.payload ?? {};
  const at = Date.now();
  const base = { seq: e.seq, event: e.event, at };
  switch (e.event) {
    case 'task.started':
      return { ...base, title: `Task ${str(p.name)} started`, body: `by ${str(p.userId, 'someone')}`, level: 'info' };
    case 'task.finished': {
      const code = p.exitCode;
      const secs = (num(p.durationMs) / 1000).toFixed(1);
      const ok = code === 0 && !p.signal;
      const how = p.timedOut === true ? 'timed out' : p.cancelled === true ? 'was cancelled'
        : typeof p.signal === 'string' ? `was killed (${p.signal})` : `exited ${typeof code === 'number' ? code : '?'}`;
      return {
        ...base, title: `Task ${str(p.name)} ${ok ? 'succeeded' : 'failed'}`, body: `${how} after ${secs} s`,
        level: ok ? 'ok' : 'error', ...(typeof p.tail === 'string' && p.tail ? { tail: p.tail } : {}),
      };
    }
    case 'git.changed':
      return {
        ...base, title: `Repository changed on ${str(p.branch, 'a detached HEAD')}`,
        body: `${num(p.changed)} changed path${num(p.changed) === 1 ? '' : 's'}${num(p.ahead) ? `, ${num(p.ahead)} ahead` : ''}${num(p.behind) ? `, ${num(p.behind)} behind` : ''}`,
        level: 'info',
      };
    case 'file.saved':
      return { ...base, title: `Saved ${str(p.path)}`, body: str(p.folder), level: 'info' };
    case 'notify': {
      const lv = str(p.level, 'info');
      return { ...base, title: str(p.title, 'Notification'), body: str(p.message), level: lv === 'error' ? 'error' : lv === 'warning' ? 'warning' : 'info' };
    }
    case 'approval.requested':
      return { ...base, title: `Approval requested: ${str(p.title)}`, body: `${requesterText(p.requestedBy)} asks: ${actionText(p.action).split('\n')[0]}`, level: 'warning' };
    case 'approval.resolved':
      return { ...base, title: 'Approval answered', body: `${str(p.decision)} by ${str(p.decidedBy)}`, level: 'info' };
    case 'resync':
      return { ...base, title: 'Some events were missed', body: 'The helper no longer had them (or restarted); views were refreshed.', level: 'warning' };
    default:
      return null;
  }
}

export class Model {
  workspaces: StoredWorkspace[] = store.listWorkspaces();
  current: StoredWorkspace | null = null;
  conn: Connection | null = null;
  route: Route = { screen: 'status' };
  info: WorkspaceInfo | null = null;
  notes: Note[] = [];
  unread = 0;
  /** Bumped by git.changed and resync: the status view reloads. */
  gitTick = 0;
  tasks: TaskDef[] | null = null;
  tasksError: string | null = null;
  runs: TaskRun[] = [];
  approvals = new Map<string, Approval>();
  agents: AgentInfo[] | null = null;
  defaultAgent: string | null = null;
  conversation: string | null = null;
  /** The last update of `conversation` applied (agent.follow's since). */
  agentSeq = 0;
  turns: AgentTurn[] = [];
  /** Prompts of ours waiting behind a running turn. */
  agentQueued = 0;
  agentError: string | null = null;
  agentNote: string | null = null;
  pairingError: string | null = null;
  private listeners = new Set<() => void>();
  private scheduled = false;

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Views redraw once per frame however many changes came in it. */
  changed = (): void => {
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => {
      if (!this.scheduled) return;
      this.scheduled = false;
      for (const fn of this.listeners) fn();
    };
    requestAnimationFrame(flush);
    setTimeout(flush, 100);
  };

  get scopes(): string[] {
    return this.conn?.session?.scopes ?? [];
  }

  can(scope: string): boolean {
    return this.scopes.includes(scope);
  }

  get showApprovals(): boolean {
    return this.can('approve');
  }

  get showAgent(): boolean {
    return (this.agents?.length ?? 0) > 0;
  }

  go(route: Route): void {
    this.route = route;
    if (route.screen === 'notes') this.unread = 0;
    this.changed();
  }

  /** Opens (or switches to) a workspace. */
  open(w: StoredWorkspace): void {
    this.close();
    this.current = w;
    store.setCurrentWorkspaceId(w.workspaceId);
    this.notes = store.loadNotes(w.workspaceId);
    this.route = { screen: 'status' };
    const id = w.workspaceId;
    const conn = new Connection({
      url: w.url,
      workspaceId: id,
      token: w.token,
      // No scope implies another: read's events need read, approvals need approve.
      eventKinds: (scopes) => [...(scopes.includes('read') ? EVENT_KINDS : []), ...(scopes.includes('approve') ? APPROVAL_EVENTS : [])],
      getLastSeq: () => store.lastSeq(id),
      setLastSeq: (seq) => {
        store.setLastSeq(id, seq);
      },
      onDeviceToken: (token) => {
        const next = store.updateWorkspace(id, { token, device: true });
        if (next && this.current?.workspaceId === id) this.current = next;
        this.workspaces = store.listWorkspaces();
      },
      onEvent: (e) => {
        this.onEvent(e);
      },
      onOnline: (s) => {
        void this.onOnline(conn, s);
      },
      onAgentUpdate: (d) => {
        this.onAgentUpdate(d);
      },
    });
    this.conn = conn;
    conn.subscribe(this.changed);
    conn.start();
    this.changed();
  }

  close(): void {
    this.conn?.stop();
    this.conn = null;
    this.current = null;
    this.info = null;
    this.tasks = null;
    this.tasksError = null;
    this.runs = [];
    this.approvals.clear();
    this.agents = null;
    this.defaultAgent = null;
    this.conversation = null;
    this.agentSeq = 0;
    this.turns = [];
    this.agentQueued = 0;
    this.agentError = null;
    this.agentNote = null;
    this.unread = 0;
  }

  forget(id: string): void {
    if (this.current?.workspaceId === id) this.close();
    store.forgetWorkspace(id);
    this.workspaces = store.listWorkspaces();
    const next = this.workspaces[0];
    if (next) this.open(next);
    else this.route = { screen: 'workspaces' };
    this.changed();
  }

  /** After every successful auth: what the tabs and header need. */
  private async onOnline(conn: Connection, s: AuthOk): Promise<void> {
    const current = () => this.conn === conn;
    const info = conn.command<WorkspaceInfo>('workspace.info').then((i) => {
      if (!current()) return;
      this.info = i;
      if (this.current && i.name && this.current.name !== i.name) {
        this.current = store.updateWorkspace(this.current.workspaceId, { name: i.name }) ?? this.current;
        this.workspaces = store.listWorkspaces();
      }
    });
    const tasks = this.loadTasks(conn);
    // The agent tab shows only when the token has the agent scope and
    // agent.list names an agent; a conversation in view is caught up with
    // agent.follow from the last update seen (nothing missed while away).
    const agents = s.scopes.includes('agent')
      ? conn.command<unknown>('agent.list').then(async (r) => {
        if (!current() || !isObject(r)) return;
        const list = Array.isArray(r.agents) ? r.agents.filter(isObject) : [];
        this.agents = list.map((a) => ({ name: str(a.name), type: str(a.type), state: str(a.state), default: a.default === true }))
          .filter((a) => a.name);
        this.defaultAgent = this.agents.find((a) => a.default)?.name ?? this.agents[0]?.name ?? null;
        if (this.conversation) await this.followConversation(this.conversation, this.agentSeq);
      }, () => {
        if (current()) this.agents = [];
      })
      : Promise.resolve().then(() => {
        if (current()) this.agents = [];
      });
    const approvals = s.scopes.includes('approve')
      ? conn.command<unknown>('approvals.list').then((r) => {
        if (!current() || !isObject(r) || !Array.isArray(r.approvals)) return;
        this.approvals.clear();
        for (const a of r.approvals.filter(isObject)) {
          const ap = parseApproval(a);
          if (ap) this.approvals.set(ap.approvalId, ap);
        }
      }, () => undefined)
      : Promise.resolve();
    await Promise.allSettled([info, tasks, agents, approvals]);
    if (current()) this.changed();
  }

  async loadTasks(conn: Connection | null = this.conn): Promise<void> {
    if (!conn) return;
    try {
      const r = await conn.command<{ tasks?: TaskDef[] }>('task.list');
      if (this.conn !== conn) return;
      this.tasks = Array.isArray(r.tasks) ? r.tasks : [];
      this.tasksError = null;
    } catch (e) {
      if (this.conn === conn) this.tasksError = errorText(e);
    }
    this.changed();
  }

  private onEvent(e: EventData): void {
    if (e.event === 'git.changed' || e.event === 'resync') this.gitTick++;
    if (e.event === 'approval.requested' && e.payload) {
      const a = parseApproval(e.payload);
      if (a) this.approvals.set(a.approvalId, a);
    }
    if (e.event === 'approval.resolved' && e.payload) this.approvals.delete(approvalIdOf(e.payload.approvalId));
    const note = noteFor(e);
    if (note && this.current) {
      this.notes = store.saveNotes(this.current.workspaceId, [...this.notes, note]);
      if (this.route.screen !== 'notes') this.unread++;
      if (e.event === 'task.finished' || e.event === 'notify' || e.event === 'approval.requested') systemNotify(note);
    }
    this.changed();
  }

  clearNotes(): void {
    if (!this.current) return;
    this.notes = store.saveNotes(this.current.workspaceId, []);
    this.unread = 0;
    this.changed();
  }

  runTask(name: string): void {
    const conn = this.conn;
    if (!conn) return;
    const run: TaskRun = { id: '', name, startedAt: Date.now(), out: new AnsiLines(), version: 0 };
    run.id = conn.stream('task.run', { name }, {
      onPending: (d) => {
        const id = approvalIdOf(d.approvalId);
        if (id) run.approval = { id, expiresAt: num(d.expiresAt) };
        this.changed();
      },
      onStart: () => {
        run.startedAt = Date.now();
        run.started = true;
        this.changed();
      },
      onChunk: (d) => {
        run.out.push(str(d.text));
        run.version++;
        this.changed();
      },
      onEnd: (d) => {
        run.out.end();
        run.end = {
          exitCode: typeof d.exitCode === 'number' ? d.exitCode : null,
          signal: typeof d.signal === 'string' ? d.signal : null,
          durationMs: num(d.durationMs),
          truncated: d.truncated === true,
          timedOut: d.timedOut === true,
          cancelled: d.cancelled === true,
        };
        run.version++;
        this.changed();
      },
      onError: (err) => {
        run.out.end();
        run.error = err;
        run.version++;
        this.changed();
      },
    });
    this.runs = [run, ...this.runs.filter((r) => r.end ?? r.error).slice(0, 9), ...this.runs.filter((r) => !r.end && !r.error)];
    this.changed();
  }

  async cancelTask(run: TaskRun): Promise<void> {
    if (!this.conn || run.end || run.error) return;
    run.cancelling = true;
    this.changed();
    try {
      await this.conn.command('task.cancel', { id: run.id });
    } catch (e) {
      run.cancelling = false;
      run.error = e instanceof ProtocolError ? e : new ProtocolError('PROCESSING_ERROR', String(e));
    }
    this.changed();
  }

  async decide(approvalId: string, decision: string): Promise<void> {
    if (!this.conn) return;
    await this.conn.command('approve', { approvalId, decision });
    this.approvals.delete(approvalId);
    this.changed();
  }

  private onAgentUpdate(d: Record<string, unknown>): void {
    if (str(d.conversation) !== this.conversation || !isObject(d.chunk)) return;
    const seq = num(d.seq);
    if (seq <= this.agentSeq) return;
    this.agentSeq = seq;
    const turn = num(d.turn);
    // A queued prompt cancelled before it started ends with a turn_end of a
    // turn never started: it leaves the queue (applyUpdate shows nothing).
    const unstartedEnd = d.chunk.kind === 'turn_end' && !this.turns.some((t) => t.turn === turn);
    if ((d.chunk.kind === 'turn_start' || unstartedEnd) && this.agentQueued > 0) this.agentQueued--;
    this.turns = applyUpdate(this.turns, turn, d.chunk);
    this.changed();
  }

  /** Follows a conversation from `since` (0: all it still keeps). */
  private async followConversation(conversation: string, since: number): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    if (since === 0) {
      this.turns = [];
      this.agentSeq = 0;
    }
    try {
      const r = await conn.command<unknown>('agent.follow', { conversation, since });
      if (this.conn !== conn || this.conversation !== conversation || !isObject(r)) return;
      this.agentNote = r.truncated === true ? 'Earlier updates of this conversation are no longer kept.' : null;
    } catch (e) {
      if (this.conn !== conn || this.conversation !== conversation) return;
      if (e instanceof ProtocolError && e.code === 'UNKNOWN_CONVERSATION') {
        this.conversation = null;
        this.agentSeq = 0;
        this.agentNote = 'This conversation is gone (the helper restarted). A new message starts a new one.';
      } else this.agentError = errorText(e);
    }
    this.changed();
  }

  private async openConversation(agent?: string): Promise<string | null> {
    const r = await this.conn?.command<unknown>('agent.new', agent ? { agent } : {});
    const conversation = isObject(r) && typeof r.conversation === 'string' ? r.conversation : null;
    const previous = this.conversation;
    if (previous && previous !== conversation) this.conn?.command('agent.unfollow', { conversation: previous }).catch(() => undefined);
    this.conversation = conversation;
    this.agentSeq = 0;
    this.turns = [];
    this.agentNote = null;
    if (conversation) await this.followConversation(conversation, 0);
    return conversation;
  }

  /** Sends a prompt to the conversation in view (a new one if none); what
   * the agent does arrives as updates of the followed conversation. */
  async prompt(text: string, agent?: string): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    this.agentError = null;
    const conversation = this.conversation ?? (await this.openConversation(agent));
    if (!conversation || this.conn !== conn) return;
    conn.stream('agent.prompt', { text, conversation }, {
      onStart: (d) => {
        this.agentQueued = num(d.queued) > 0 ? this.agentQueued + 1 : this.agentQueued;
        this.changed();
      },
      onChunk: () => undefined,
      onEnd: () => undefined,
      onError: (err) => {
        this.agentError = errorText(err);
        this.changed();
      },
    });
    this.changed();
  }

  /** Shows an earlier conversation: everything the helper still keeps, then live. */
  async follow(conversation: string): Promise<void> {
    const previous = this.conversation;
    if (previous && previous !== conversation) this.conn?.command('agent.unfollow', { conversation: previous }).catch(() => undefined);
    this.conversation = conversation;
    this.agentError = null;
    this.agentNote = null;
    this.agentQueued = 0;
    await this.followConversation(conversation, 0);
  }

  async cancelAgent(): Promise<void> {
    if (!this.conversation) return;
    await this.conn?.command('agent.cancel', { conversation: this.conversation });
  }

  async newConversation(agent?: string): Promise<void> {
    this.agentError = null;
    this.agentQueued = 0;
    await this.openConversation(agent);
    this.changed();
  }
}

/** A system notification, when the user allowed them and is looking away. */
function systemNotify(n: Note): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted' || document.visibilityState === 'visible') return;
  const options: NotificationOptions = { body: n.body, tag: `companion-${n.seq}` };
  const show = async () => {
    const reg = 'serviceWorker' in navigator ? await navigator.serviceWorker.getRegistration() : undefined;
    if (reg) await reg.showNotification(n.title, options);
    else new Notification(n.title, options);
  };
  show().catch(() => undefined);
}
