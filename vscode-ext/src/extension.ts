/* Companion for VS Code: entry points. */
import * as vscode from 'vscode';
import { ApprovalsView } from './approvalsView';
import { registerCommands } from './commands';
import { Controller } from './controller';
import { DevicesView } from './devicesView';
import { Settings } from './settings';
import { StatusBar } from './statusBar';
import { registerWhatsApp, type WhatsAppLink } from './whatsappPanel';

let controller: Controller | undefined;
let whatsapp: WhatsAppLink | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Companion', { log: true });
  const settings = new Settings(context.secrets, log);
  const statusBar = new StatusBar();
  controller = new Controller(context, log, settings, statusBar);
  const approvals = new ApprovalsView(log);
  const devices = new DevicesView(log);
  context.subscriptions.push(
    log,
    settings,
    statusBar,
    approvals,
    devices,
    controller.onDidCreateClient((c) => {
      approvals.attach(c);
      devices.attach(c);
    }),
  );
  registerCommands(context, controller);
  whatsapp = registerWhatsApp(context, controller);
  controller.activate();
}

/** shutdown, exit, kill after 2 s: VS Code waits for the promise. */
export async function deactivate(): Promise<void> {
  const c = controller;
  controller = undefined;
  const w = whatsapp;
  whatsapp = undefined;
  await Promise.all([c?.shutdown(), w?.shutdown()]);
}
