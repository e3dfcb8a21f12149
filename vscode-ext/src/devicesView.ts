/*
 * The "Devices" tree of the Companion view container, next to Approvals:
 * one line per paired device (label: its name; description: state, scopes,
 * expiry, last seen; tooltip: every fact), the device registry's problem as
 * a warning line on top, and Revoke (modal confirm naming the device) and
 * Rename (input box) as inline and context actions. It follows the
 * controller's client through DeviceModel (devices.ts): refreshed on
 * companion/devicesChanged and on every helper (re)start.
 */
import * as vscode from 'vscode';
import type { HelperClient } from './client';
import {
  DeviceModel,
  deviceContextValue,
  deviceDescription,
  deviceLabel,
  deviceNameProblem,
  deviceState,
  deviceTooltipLines,
  type DeviceState,
} from './devices';
import type { Device } from './protocol';

export const DEVICES_VIEW_ID = 'companion.devices';

/** Command ids; package.json declares them (the ones that need a device hidden from the palette). */
export const DEVICE_COMMANDS = {
  show: 'companion.showDevices',
  refresh: 'companion.devices.refresh',
  revoke: 'companion.device.revoke',
  rename: 'companion.device.rename',
} as const;

type Node = { kind: 'problem'; text: string } | { kind: 'device'; device: Device };

const ICONS: Record<DeviceState, vscode.ThemeIcon> = {
  connected: new vscode.ThemeIcon('device-mobile', new vscode.ThemeColor('charts.green')),
  idle: new vscode.ThemeIcon('device-mobile'),
  pending: new vscode.ThemeIcon('link'),
  unnamed: new vscode.ThemeIcon('question'),
  expired: new vscode.ThemeIcon('watch', new vscode.ThemeColor('disabledForeground')),
  revoked: new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('errorForeground')),
};

class DevicesTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly model: () => DeviceModel | undefined) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getChildren(element?: Node): Node[] {
    if (element) return [];
    const m = this.model();
    if (!m?.helperRunning) return [];
    const nodes: Node[] = [];
    if (m.problem) nodes.push({ kind: 'problem', text: m.problem });
    for (const d of m.devices) nodes.push({ kind: 'device', device: d });
    return nodes;
  }

  getTreeItem(n: Node): vscode.TreeItem {
    if (n.kind === 'problem') {
      const item = new vscode.TreeItem('Device registry problem', vscode.TreeItemCollapsibleState.None);
      item.id = 'devices-problem';
      item.description = n.text;
      item.tooltip = `${n.text}\n\nThe helper keeps serving; changes to devices may not be kept after a restart. See Companion: Show Logs.`;
      item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
      item.contextValue = 'devicesProblem';
      return item;
    }
    const d = n.device;
    const now = Date.now();
    const item = new vscode.TreeItem(deviceLabel(d), vscode.TreeItemCollapsibleState.None);
    item.id = `device-${d.id}`;
    item.description = deviceDescription(d, now);
    const md = new vscode.MarkdownString(undefined, false);
    deviceTooltipLines(d, now).forEach((line, i) => {
      if (i > 0) md.appendMarkdown('  \n');
      md.appendText(line);
    });
    item.tooltip = md;
    item.iconPath = ICONS[deviceState(d, now)];
    item.contextValue = deviceContextValue(d, now);
    item.accessibilityInformation = { label: `${deviceLabel(d)}, ${item.description}` };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export class DevicesView implements vscode.Disposable {
  private model: DeviceModel | undefined;
  private modelSub: { dispose(): void } | undefined;
  private readonly tree: DevicesTree;
  private readonly view: vscode.TreeView<Node>;
  /** Keeps "seen 2 min ago" and "expires in ..." true while the view is visible. */
  private ticker: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.tree = new DevicesTree(() => this.model);
    this.view = vscode.window.createTreeView(DEVICES_VIEW_ID, { treeDataProvider: this.tree });
    this.disposables.push(
      this.view,
      this.tree,
      this.view.onDidChangeVisibility(() => this.schedule()),
      vscode.commands.registerCommand(DEVICE_COMMANDS.show, () =>
        vscode.commands.executeCommand(`${DEVICES_VIEW_ID}.focus`),
      ),
      vscode.commands.registerCommand(DEVICE_COMMANDS.refresh, () => this.model?.refresh()),
      vscode.commands.registerCommand(DEVICE_COMMANDS.revoke, (arg?: unknown) => this.revoke(arg)),
      vscode.commands.registerCommand(DEVICE_COMMANDS.rename, (arg?: unknown) => this.rename(arg)),
    );
    void this.setRunning(false);
  }

  /** Follows the controller's client: a new client (another helper binary) gets a new model. */
  attach(client: HelperClient): void {
    this.detach();
    const model = new DeviceModel(client, this.log);
    this.model = model;
    this.modelSub = model.onDidChange.on(() => this.changed());
    this.changed();
    if (client.status.helperRunning) void model.refresh();
  }

  private detach(): void {
    this.modelSub?.dispose();
    this.modelSub = undefined;
    this.model?.dispose();
    this.model = undefined;
    this.changed();
  }

  private changed(): void {
    const m = this.model;
    void this.setRunning(m?.helperRunning ?? false);
    const connected = m?.devices.filter((d) => deviceState(d) === 'connected').length ?? 0;
    this.view.description = m?.helperRunning ? `${connected} connected` : undefined;
    this.tree.refresh();
    this.schedule();
  }

  /** The welcome text of an empty view depends on it (package.json viewsWelcome). */
  private setRunning(running: boolean): Thenable<unknown> {
    return vscode.commands.executeCommand('setContext', 'companion.devices.helperRunning', running);
  }

  private schedule(): void {
    if (this.ticker) clearTimeout(this.ticker);
    this.ticker = undefined;
    if (!this.view.visible || !this.model?.devices.length) return;
    this.ticker = setTimeout(() => {
      this.ticker = undefined;
      this.tree.refresh();
      this.schedule();
    }, 30000);
  }

  /** The device of a command argument: a tree node, a device, or an id; else a quick pick. */
  private async deviceOf(arg: unknown, what: string, filter: (d: Device) => boolean): Promise<Device | undefined> {
    const m = this.model;
    if (!m?.helperRunning) {
      void vscode.window.showWarningMessage('Companion: the server is not running, so its devices cannot be changed.');
      return undefined;
    }
    let id: string | undefined;
    if (typeof arg === 'string') id = arg;
    else if (typeof arg === 'object' && arg !== null) {
      const o = arg as { kind?: unknown; device?: { id?: unknown }; id?: unknown };
      if (o.kind === 'device' && typeof o.device?.id === 'string') id = o.device.id;
      else if (typeof o.id === 'string') id = o.id;
    }
    if (id !== undefined) {
      const d = m.get(id);
      if (!d) void vscode.window.showErrorMessage(`Companion: no device with id ${id}.`);
      return d;
    }
    const offering = m.devices.filter(filter);
    const picked = await vscode.window.showQuickPick(
      offering.map((d) => ({ label: deviceLabel(d), description: deviceDescription(d), d })),
      { title: `Companion: ${what}`, placeHolder: offering.length ? 'Which device?' : 'No device to choose' },
    );
    return picked?.d;
  }

  private async revoke(arg: unknown): Promise<void> {
    const d = await this.deviceOf(arg, 'Revoke Device', (x) => !x.revoked);
    if (!d || !this.model) return;
    const name = deviceLabel(d);
    const choice = await vscode.window.showWarningMessage(
      `Revoke "${name}"?`,
      {
        modal: true,
        detail: `${name} is disconnected now and its token is refused from now on, even after a restart. Other devices are not affected. To use Companion again it must be paired again.`,
      },
      'Revoke',
    );
    if (choice !== 'Revoke') return;
    try {
      await this.model.revoke(d.id);
      vscode.window.setStatusBarMessage(`Companion: ${name} revoked`, 4000);
    } catch (e) {
      void vscode.window.showErrorMessage(`Companion: could not revoke ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async rename(arg: unknown): Promise<void> {
    const d = await this.deviceOf(arg, 'Rename Device', (x) => !x.revoked && !x.unnamed);
    if (!d || !this.model) return;
    const name = await vscode.window.showInputBox({
      title: `Companion: Rename "${deviceLabel(d)}"`,
      prompt: 'The name the Devices view, the status bar and the log show',
      value: d.name,
      validateInput: (v) => deviceNameProblem(v),
    });
    if (name === undefined || name.trim() === d.name) return;
    try {
      await this.model.rename(d.id, name);
    } catch (e) {
      void vscode.window.showErrorMessage(`Companion: could not rename ${deviceLabel(d)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  dispose(): void {
    this.detach();
    if (this.ticker) clearTimeout(this.ticker);
    for (const d of this.disposables) d.dispose();
  }
}
