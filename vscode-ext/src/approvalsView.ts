/*
 * Approvals in the editor: the "Approvals" tree of the Companion view
 * container (label: what; description: who asked and the time left;
 * tooltip: the exact action) with inline actions for the options each one
 * offers, a badge with the count, and a progress notification per approval
 * that closes when the approval ends, whoever decided. A modal dialog could
 * not be closed when a phone answers first; these can.
 */
import * as vscode from 'vscode';
import { ApprovalModel, commandLine, contextValueOf, isApprovalOption, optionLabel, timeLeft } from './approvals';
import type { HelperClient } from './client';
import type { Approval, ApprovalOption } from './protocol';

export const VIEW_ID = 'companion.approvals';

/** Command ids per decision; package.json declares them (palette-hidden). */
export const DECIDE_COMMANDS: Record<ApprovalOption, string> = {
  allow_once: 'companion.approval.allowOnce',
  allow_always: 'companion.approval.allowAlways',
  deny: 'companion.approval.deny',
};

function commandUri(command: string, args: unknown[]): string {
  return `command:${command}?${encodeURIComponent(JSON.stringify(args))}`;
}

function tooltipOf(a: Approval): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, false);
  md.appendText(`${a.title} (approval ${a.approvalId})`);
  md.appendMarkdown('\n\n');
  const act = a.action;
  if (typeof act.command === 'string') {
    md.appendText('Command:');
    md.appendCodeblock(commandLine(a), 'sh');
    md.appendText(`In: ${act.cwd ?? '.'}${act.folder ? ` of folder ${act.folder}` : ''}`);
  } else {
    md.appendText('Action:');
    md.appendCodeblock(JSON.stringify(act, null, 2), 'json');
  }
  md.appendMarkdown('\n\n');
  md.appendText(
    `Asked by ${a.requestedBy.userId} at ${new Date(a.createdAt).toLocaleTimeString()}; ` +
      `no answer by ${new Date(a.expiresAt).toLocaleTimeString()} is a deny (${timeLeft(a.expiresAt)}).`,
  );
  md.appendMarkdown('\n\n');
  md.appendText(`Answers: ${a.options.map(optionLabel).join(' · ')}`);
  return md;
}

class ApprovalsTree implements vscode.TreeDataProvider<Approval> {
  private readonly changed = new vscode.EventEmitter<Approval | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly items: () => Approval[]) {}

  refresh(a?: Approval): void {
    this.changed.fire(a);
  }

  getChildren(element?: Approval): Approval[] {
    return element ? [] : this.items();
  }

  getTreeItem(a: Approval): vscode.TreeItem {
    const item = new vscode.TreeItem(a.title, vscode.TreeItemCollapsibleState.None);
    item.id = `approval-${a.approvalId}`;
    item.description = `${a.requestedBy.userId} · ${timeLeft(a.expiresAt)}`;
    item.tooltip = tooltipOf(a);
    item.iconPath = new vscode.ThemeIcon('shield');
    item.contextValue = contextValueOf(a);
    item.accessibilityInformation = {
      label: `${a.title}, asked by ${a.requestedBy.userId}, ${timeLeft(a.expiresAt)}`,
    };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export class ApprovalsView implements vscode.Disposable {
  private model: ApprovalModel | undefined;
  private modelSubs: { dispose(): void }[] = [];
  private readonly tree: ApprovalsTree;
  private readonly view: vscode.TreeView<Approval>;
  /** Closes the notification of each pending approval. */
  private readonly closers = new Map<number, () => void>();
  private ticker: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.tree = new ApprovalsTree(() => this.model?.pending ?? []);
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this.tree });
    this.disposables.push(this.view, this.tree);
    for (const [option, id] of Object.entries(DECIDE_COMMANDS) as [ApprovalOption, string][]) {
      this.disposables.push(vscode.commands.registerCommand(id, (arg?: unknown) => this.decideCommand(option, arg)));
    }
    this.disposables.push(
      vscode.commands.registerCommand('companion.showApprovals', () =>
        vscode.commands.executeCommand(`${VIEW_ID}.focus`),
      ),
    );
  }

  /** Follows the controller's client: a new client (another helper binary) gets a new model. */
  attach(client: HelperClient): void {
    this.detach();
    const model = new ApprovalModel(client, this.log);
    this.model = model;
    this.modelSubs = [
      model.onDidChange.on(() => this.changed()),
      model.onAdded.on((a) => this.notify(a)),
      model.onEnded.on((e) => this.closers.get(e.approval.approvalId)?.()),
    ];
    this.changed();
    if (client.status.helperRunning) void model.refresh();
  }

  private detach(): void {
    for (const s of this.modelSubs) s.dispose();
    this.modelSubs = [];
    this.model?.dispose();
    this.model = undefined;
    for (const close of [...this.closers.values()]) close();
    this.changed();
  }

  private changed(): void {
    const n = this.model?.pending.length ?? 0;
    this.view.badge = n > 0 ? { value: n, tooltip: `${n} approval${n === 1 ? '' : 's'} waiting` } : undefined;
    this.tree.refresh();
    this.schedule();
  }

  /** Keeps "N min left" true: refreshes when the first description changes. */
  private schedule(): void {
    if (this.ticker) clearTimeout(this.ticker);
    this.ticker = undefined;
    const pending = this.model?.pending ?? [];
    if (pending.length === 0) return;
    const now = Date.now();
    let next = 60000;
    for (const a of pending) {
      const left = a.expiresAt - now;
      next = Math.min(next, left <= 61000 ? left % 1000 || 1000 : left % 60000 || 60000);
    }
    this.ticker = setTimeout(() => {
      this.ticker = undefined;
      this.tree.refresh();
      this.schedule();
    }, Math.max(250, next + 20));
  }

  /** A notification that closes when the approval ends; Cancel only hides it. */
  private notify(a: Approval): void {
    const id = a.approvalId;
    const links = [
      ...a.options.map((o) => `[${optionLabel(o)}](${commandUri(DECIDE_COMMANDS[o], [id])})`),
      `[Show Approvals](${commandUri('companion.showApprovals', [])})`,
    ].join(' · ');
    const what = a.action.command ? `${a.title} (${commandLine(a)})` : a.title;
    const message = `${a.requestedBy.userId} asks: ${what}. ${links}`;
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Companion approval ${id}`, cancellable: true },
      (progress, token) => {
        progress.report({ message });
        return new Promise<void>((resolve) => {
          const close = (): void => {
            this.closers.delete(id);
            sub.dispose();
            resolve();
          };
          const sub = token.onCancellationRequested(close);
          this.closers.set(id, close);
          // It may have ended while the notification was being made.
          if (!this.model?.get(id)) close();
        });
      },
    );
  }

  /** The id from a command argument: the tree element, a number, or a string of digits. */
  private idOf(arg: unknown): number | undefined {
    if (typeof arg === 'number' && Number.isInteger(arg) && arg > 0) return arg;
    if (typeof arg === 'string' && /^\d+$/.test(arg)) return Number(arg);
    if (typeof arg === 'object' && arg !== null && 'approvalId' in arg) return this.idOf(arg.approvalId);
    return undefined;
  }

  private async decideCommand(option: ApprovalOption, arg: unknown): Promise<void> {
    const model = this.model;
    if (!model || !isApprovalOption(option)) {
      void vscode.window.showWarningMessage('Companion: no approval is waiting.');
      return;
    }
    let id = this.idOf(arg);
    if (id === undefined) {
      const offering = model.pending.filter((a) => a.options.includes(option));
      const picked = await vscode.window.showQuickPick(
        offering.map((a) => ({ label: a.title, description: `${a.requestedBy.userId} · ${timeLeft(a.expiresAt)}`, a })),
        { title: `Companion: ${optionLabel(option)}`, placeHolder: offering.length ? 'Which approval?' : 'No approval is waiting' },
      );
      if (!picked) return;
      id = picked.a.approvalId;
    }
    try {
      const r = await model.decide(id, option);
      if (!r.took) void vscode.window.showInformationMessage(`Companion: ${r.message}`);
    } catch (e) {
      void vscode.window.showErrorMessage(
        `Companion: could not answer approval ${id}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  dispose(): void {
    this.detach();
    if (this.ticker) clearTimeout(this.ticker);
    for (const d of this.disposables) d.dispose();
  }
}
