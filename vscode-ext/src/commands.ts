/* The command palette (category "Companion"). */
import * as vscode from 'vscode';
import type { Controller } from './controller';
import { showPairingPanel } from './pairing';
import { pairingPayload } from './pairingPayload';
import type { ClientInfo, Scope } from './protocol';

interface PairArgs {
  scopes?: Scope[];
  ttlSeconds?: number;
  userId?: string;
}

const SCOPES: { label: Scope; description: string; picked: boolean }[] = [
  { label: 'read', description: 'git status, log and diff, files, task list, problems', picked: true },
  { label: 'run', description: 'run and cancel the tasks in companion.tasks', picked: false },
  { label: 'editor', description: 'open files, show messages, run allowed editor commands', picked: false },
  {
    label: 'approve',
    description: 'lets this device allow or deny risky actions; with run it can approve its own tasks',
    picked: false,
  },
  {
    label: 'agent',
    description: "lets the device make the workspace's coding agent act (as strong as run)",
    picked: false,
  },
  {
    label: 'write',
    description: 'change and delete files in the folder (not .git/ or .vscode/); with run it can run any code',
    picked: false,
  },
];

const LIFETIMES = [
  { label: '1 hour', seconds: 3600 },
  { label: '1 day', seconds: 86400 },
  { label: '7 days', seconds: 7 * 86400 },
  { label: '30 days', seconds: 30 * 86400 },
];

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

async function pairDevice(ctl: Controller, args?: PairArgs): Promise<void> {
  let scopes = args?.scopes;
  if (!scopes) {
    const picked = await vscode.window.showQuickPick(SCOPES, {
      canPickMany: true,
      title: 'Companion: Pair Device (1/3) — what may the device do?',
      placeHolder: 'Scopes granted to the token',
    });
    if (!picked || picked.length === 0) return;
    scopes = picked.map((p) => p.label);
  }
  let ttlSeconds = args?.ttlSeconds;
  if (!ttlSeconds) {
    const life = await vscode.window.showQuickPick(LIFETIMES, { title: 'Companion: Pair Device (2/3) — token lifetime' });
    if (!life) return;
    ttlSeconds = life.seconds;
  }
  let userId = args?.userId;
  if (!userId) {
    userId = await vscode.window.showInputBox({
      title: 'Companion: Pair Device (3/3) — device name',
      prompt: 'Shown as the user id in Show Status and the log',
      value: 'phone',
      validateInput: (v) => (v.trim().length >= 1 && v.length <= 256 ? undefined : '1 to 256 characters'),
    });
    if (!userId) return;
  }
  if (!ctl.trusted) {
    void vscode.window.showWarningMessage('Companion does not run in an untrusted workspace (restricted mode).');
    return;
  }
  if (ctl.status?.state !== 'running') {
    const started = await ctl.start();
    if (!started) return;
  }
  const client = ctl.helper;
  if (!client) return;
  try {
    const r = await client.issueToken({ userId: userId.trim(), scopes, ttlSeconds });
    ctl.log.info(`pairing token issued for ${userId.trim()} (${scopes.join(' ')}), expires ${new Date(r.expiresAt).toISOString()}`);
    await showPairingPanel(pairingPayload(r), scopes, ctl.log);
  } catch (e) {
    void vscode.window.showErrorMessage(`Companion: could not issue a token: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type StatusItem = vscode.QuickPickItem & { run?: () => unknown; client?: ClientInfo };

async function showStatus(ctl: Controller): Promise<void> {
  const items: StatusItem[] = [];
  const disconnectButton: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('debug-disconnect'), tooltip: 'Disconnect' };
  const s = ctl.status;
  if (!ctl.trusted) {
    items.push({ label: '$(shield) Restricted mode', detail: 'Companion does not run in an untrusted workspace.' });
  } else if (s?.helperRunning) {
    const st = await ctl.helper?.serverStatus().catch(() => undefined);
    if (st?.state === 'running') {
      items.push({
        label: `$(broadcast) Running on ${st.url ?? '?'}`,
        detail: `workspace ${st.workspaceId ?? ctl.workspaceId()} · helper ${st.version ?? '?'} · since ${st.startedAt ? new Date(st.startedAt).toLocaleTimeString() : '?'}`,
      });
      items.push({ label: `Clients (${st.clients.length})`, kind: vscode.QuickPickItemKind.Separator });
      for (const c of st.clients) {
        items.push({
          label: `$(device-mobile) ${c.userId}`,
          description: c.remoteAddress,
          detail: `connected ${ago(c.connectedAt)}${c.scopes ? ` · ${c.scopes.join(', ')}` : ''} · select to disconnect`,
          buttons: [disconnectButton],
          client: c,
        });
      }
    } else {
      items.push({ label: '$(circle-slash) Server stopped', detail: s.error });
    }
  } else {
    items.push({ label: `$(circle-slash) ${s?.state === 'error' ? 'Error' : 'Stopped'}`, detail: s?.error ?? 'companion-helper is not running' });
  }
  items.push({ label: 'Actions', kind: vscode.QuickPickItemKind.Separator });
  const running = s?.state === 'running';
  if (ctl.trusted) {
    if (running) items.push({ label: '$(debug-stop) Stop Server', run: () => ctl.stop() });
    else items.push({ label: '$(play) Start Server', run: () => ctl.start() });
    items.push({ label: '$(debug-restart) Restart Server', run: () => ctl.restart() });
    items.push({ label: '$(device-mobile) Pair Device', run: () => pairDevice(ctl) });
  }
  items.push({ label: '$(output) Show Logs', run: () => ctl.log.show() });

  const qp = vscode.window.createQuickPick<StatusItem>();
  qp.title = 'Companion: Status';
  qp.items = items;
  const disconnect = async (c: ClientInfo): Promise<void> => {
    qp.hide();
    await ctl.helper?.disconnect(c.sessionId, 'disconnected from the editor');
    ctl.log.info(`disconnected ${c.userId} (${c.sessionId})`);
  };
  qp.onDidTriggerItemButton((e) => {
    if (e.item.client) void disconnect(e.item.client);
  });
  qp.onDidAccept(() => {
    const item = qp.selectedItems[0];
    qp.hide();
    if (item?.client) {
      const c = item.client;
      void vscode.window
        .showWarningMessage(`Disconnect ${c.userId} (${c.remoteAddress})?`, { modal: true }, 'Disconnect')
        .then((choice) => {
          if (choice === 'Disconnect') void disconnect(c);
        });
    } else if (item?.run) {
      void Promise.resolve(item.run());
    }
  });
  qp.onDidHide(() => qp.dispose());
  qp.show();
}

async function rotateSecret(ctl: Controller): Promise<void> {
  const choice = await vscode.window.showWarningMessage(
    'Rotate the Companion secret? Every paired device is disconnected and must pair again.',
    { modal: true },
    'Rotate',
  );
  if (choice !== 'Rotate') return;
  await ctl.settings.rotateSecret();
  const client = ctl.helper;
  if (client) await client.sendConfiguration(await ctl.helperSettings());
  ctl.log.info('secret rotated: existing tokens and sessions are no longer valid');
  void vscode.window.showInformationMessage('Companion: secret rotated. Pair your devices again.');
}

/* Sends a `notify` event to every paired device that listens (the chat
 * bridge's "notify on" chats, apps subscribed to notify). */
async function notifyDevices(ctl: Controller, message?: string): Promise<void> {
  const helper = ctl.helper;
  if (!helper || !ctl.status?.helperRunning) {
    void vscode.window.showWarningMessage('Companion: the server is not running.');
    return;
  }
  const text =
    message ??
    (await vscode.window.showInputBox({
      title: 'Companion: Notify Paired Devices',
      prompt: 'A message for every paired device that listens for notifications',
      validateInput: (v) => (v.trim() ? undefined : 'Type a message'),
    }));
  if (!text?.trim()) return;
  try {
    const r = await helper.broadcast('notify', { title: 'VS Code', message: text.trim(), level: 'info' });
    void vscode.window.showInformationMessage(`Companion: notification sent to ${r.delivered} device(s).`);
  } catch (e) {
    void vscode.window.showErrorMessage(`Companion: could not notify: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function registerCommands(context: vscode.ExtensionContext, ctl: Controller): void {
  const reg = (id: string, fn: (...args: never[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  };
  reg('companion.start', async () => {
    await ctl.start();
  });
  reg('companion.stop', () => ctl.stop());
  reg('companion.restart', async () => {
    await ctl.restart();
  });
  reg('companion.showStatus', () => showStatus(ctl));
  reg('companion.showLogs', () => ctl.log.show());
  reg('companion.pairDevice', (args?: PairArgs) => pairDevice(ctl, args));
  reg('companion.rotateSecret', () => rotateSecret(ctl));
  reg('companion.notifyDevices', (message?: string) => notifyDevices(ctl, message));
  reg('companion.openSettings', () =>
    vscode.commands.executeCommand('workbench.action.openSettings', `@ext:${context.extension.id}`),
  );
}
