/*
 * The approvals waiting for an answer (docs/protocol.md, "Approvals"), as
 * the helper announces them: companion/approvalRequested adds one,
 * companion/approvalResolved removes it whoever decided (this editor, a
 * phone, expiry, withdrawal), approvals/list fills the model after each
 * (re)start of the helper, and a helper that exits takes its approvals with
 * it. Deciding sends approval/decide. No vscode import: the view, the
 * notifications and the commands (approvalsView.ts) are built on it, and the
 * tests run it in plain Node against the real helper.
 */
import { Emitter, type HelperClient, type Logger } from './client';
import {
  APPROVAL_OPTIONS,
  type Approval,
  type ApprovalDecideResult,
  type ApprovalOption,
  type ApprovalOutcome,
  type ApprovalResolvedParams,
} from './protocol';

/** Why an approval left the model. */
export interface ApprovalEnded {
  approval: Approval;
  /** The helper's companion/approvalResolved; absent when the helper went away or forgot it. */
  resolved?: ApprovalResolvedParams;
  /** One line for the log and the user: what it was, how it ended, who decided. */
  text: string;
}

/** As the decision commands are titled (package.json). */
const OPTION_LABELS: Record<ApprovalOption, string> = {
  allow_once: 'Allow Once',
  allow_always: 'Allow Always',
  deny: 'Deny',
};

export function optionLabel(o: ApprovalOption): string {
  return OPTION_LABELS[o];
}

export function isApprovalOption(v: unknown): v is ApprovalOption {
  return typeof v === 'string' && (APPROVAL_OPTIONS as readonly string[]).includes(v);
}

/**
 * The tree item's contextValue, naming the options it offers:
 * `approval:allow_once:allow_always:deny`. package.json's menus show each
 * inline action when `viewItem =~ /:allow_once(:|$)/` (and so on).
 */
export function contextValueOf(a: Pick<Approval, 'options'>): string {
  return ['approval', ...a.options].join(':');
}

/** The exact command of an action, argv quoted where needed: `make "deploy all"`. */
export function commandLine(a: Approval): string {
  const argv = [a.action.command ?? '', ...(Array.isArray(a.action.args) ? a.action.args : [])];
  return argv
    .filter((x, i) => i > 0 || x !== '')
    .map((x) => (/^[\w@%+=:,./-]+$/.test(x) ? x : JSON.stringify(x)))
    .join(' ');
}

/** "5 min left", "42 s left", "expiring". */
export function timeLeft(expiresAt: number, now = Date.now()): string {
  const s = Math.floor((expiresAt - now) / 1000);
  if (s <= 0) return 'expiring';
  if (s < 60) return `${s} s left`;
  return `${Math.ceil(s / 60)} min left`;
}

/** Who decided, in words: the helper says "editor" for this editor. */
export function deciderName(by: string): string {
  return by === 'editor' ? 'you (VS Code)' : by;
}

const OUTCOME_WORDS: Record<ApprovalOutcome, string> = {
  allow_once: 'allowed once',
  allow_always: 'allowed always',
  deny: 'denied',
  expired: 'expired',
  withdrawn: 'withdrawn',
};

/** `approval 7 (Run task "deploy": echo approved) denied by phone`. */
export function endedText(a: Approval, r: ApprovalResolvedParams): string {
  const what = `approval ${a.approvalId} (${a.title}${a.action.command ? `: ${commandLine(a)}` : ''})`;
  if (r.decision === 'expired') return `${what} expired: nobody answered in time`;
  return `${what} ${OUTCOME_WORDS[r.decision] ?? r.decision} by ${deciderName(r.decidedBy)}`;
}

export class ApprovalModel {
  private readonly items = new Map<number, Approval>();
  /** Ids that ended here: a late approvals/list answer must not bring them back. */
  private readonly ended = new Set<number>();
  private readonly subs: { dispose(): void }[];

  /** Fires after every change of the pending set. */
  readonly onDidChange = new Emitter<void>();
  readonly onAdded = new Emitter<Approval>();
  readonly onEnded = new Emitter<ApprovalEnded>();

  constructor(
    private readonly client: HelperClient,
    private readonly log: Logger,
  ) {
    this.subs = [
      client.onApprovalRequested.on((a) => this.add(a)),
      client.onApprovalResolved.on((r) => this.resolve(r)),
      client.onReady.on(() => void this.refresh()),
      client.onHelperExited.on(() => this.clear('the helper stopped')),
    ];
  }

  /** The pending approvals, oldest first. */
  get pending(): Approval[] {
    return [...this.items.values()].sort((a, b) => a.approvalId - b.approvalId);
  }

  get(id: number): Approval | undefined {
    return this.items.get(id);
  }

  /** Reads approvals/list: after a (re)start, what is already waiting. */
  async refresh(): Promise<void> {
    let list: Approval[];
    try {
      list = (await this.client.listApprovals()).approvals;
    } catch (e) {
      this.log.warn(`approvals/list failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    for (const a of list) this.add(a);
  }

  /**
   * Answers one. The answer may come too late: then the approval has already
   * left the model (its approvalResolved came first) or is dropped here, and
   * the result's message says who answered first.
   */
  async decide(id: number, decision: ApprovalOption): Promise<ApprovalDecideResult> {
    const a = this.items.get(id);
    if (a && !a.options.includes(decision)) {
      throw new Error(`approval ${id} does not offer ${decision} (only ${a.options.join(', ')})`);
    }
    const r = await this.client.decideApproval(id, decision);
    if (r.took) {
      this.log.info(`approval ${id}: ${decision} sent from VS Code`);
    } else {
      this.log.info(`approval ${id}: ${decision} did not take effect: ${r.message}`);
      // The helper no longer has it (answered, expired or from before a restart).
      if (r.outcome === 'unknown' || r.outcome === 'decided') this.drop(id, r.message);
    }
    return r;
  }

  private add(a: Approval): void {
    if (this.ended.has(a.approvalId) || this.items.has(a.approvalId)) return;
    this.items.set(a.approvalId, a);
    this.log.info(
      `approval ${a.approvalId} requested by ${a.requestedBy.userId}: ${a.title}` +
        `${a.action.command ? ` (${commandLine(a)})` : ''}; ${timeLeft(a.expiresAt)}`,
    );
    this.onAdded.fire(a);
    this.onDidChange.fire();
  }

  private resolve(r: ApprovalResolvedParams): void {
    this.remember(r.approvalId);
    const a = this.items.get(r.approvalId);
    if (!a) return;
    this.items.delete(r.approvalId);
    const text = endedText(a, r);
    this.log.info(text);
    this.onEnded.fire({ approval: a, resolved: r, text });
    this.onDidChange.fire();
  }

  private drop(id: number, why: string): void {
    this.remember(id);
    const a = this.items.get(id);
    if (!a) return;
    this.items.delete(id);
    const text = `approval ${id} (${a.title}) is no longer waiting: ${why}`;
    this.log.info(text);
    this.onEnded.fire({ approval: a, text });
    this.onDidChange.fire();
  }

  private clear(why: string): void {
    for (const id of [...this.items.keys()]) this.drop(id, why);
  }

  private remember(id: number): void {
    this.ended.add(id);
    if (this.ended.size > 1000) {
      const oldest = this.ended.values().next().value;
      if (oldest !== undefined) this.ended.delete(oldest);
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.items.clear();
    for (const e of [this.onDidChange, this.onAdded, this.onEnded]) (e as Emitter<unknown>).clear();
  }
}
