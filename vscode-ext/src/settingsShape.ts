/*
 * The `companion.*` settings as the helper wants them: flat VS Code keys
 * (`server.port`) become the nested object of PROTOCOL.md ({server:{port}}).
 * Keys only the extension uses are left out. Settings that decide who gets
 * in, or how much, are read from the user's own settings only (see
 * MACHINE_SCOPED_KEYS). No vscode import.
 */
import { createHash } from 'node:crypto';
import type { HelperSettings } from './protocol';
import { workspaceKey } from './workspaceKey';

/** Every key of the contract, with its default (same as the helper's). */
export const HELPER_SETTING_DEFAULTS: Readonly<Record<string, unknown>> = {
  autoStart: true,
  'server.host': '127.0.0.1',
  'server.port': 3001,
  'server.allowedOrigins': [],
  'server.allowedHosts': [],
  'server.publicUrl': '',
  'server.tls.certFile': '',
  'server.tls.keyFile': '',
  'auth.algorithm': 'HS256',
  'auth.publicKey': '',
  'auth.publicKeyPath': '',
  'auth.audience': '',
  'auth.issuer': '',
  'auth.timeoutSeconds': 10,
  'auth.leewaySeconds': 30,
  'heartbeat.intervalSeconds': 25,
  'heartbeat.timeoutSeconds': 60,
  'events.historySize': 256,
  'events.taskOutput': 'all',
  'approvals.timeoutSeconds': 300,
  'limits.maxConnections': 64,
  'limits.maxUnauthenticated': 32,
  'limits.maxMessageBytes': 1048576,
  'limits.commandsPerSecond': 20,
  'limits.maxOutputBytes': 1048576,
  'limits.maxConcurrentTasks': 4,
  'limits.maxConversations': 32,
  'limits.maxAgentTurns': 4,
  'limits.agentTurnTimeoutSeconds': 1800,
  'limits.agentStartTimeoutSeconds': 60,
  'limits.agentUnwatchedSeconds': 120,
  'limits.maxQueuedBytes': 8388608,
  'limits.maxWriteBytes': 1048576,
  tasks: {},
  agents: {},
  defaultAgent: '',
  editorCommands: ['workbench.action.files.saveAll'],
  'log.level': 'info',
};

/** Settings the extension contributes but never sends to the helper. */
export const EXTENSION_ONLY_KEYS: readonly string[] = ['helper.path', 'notifyOnConnect', 'whatsapp.allow'];

/**
 * Settings that decide who gets in or how much: contributed with scope
 * `machine`, so VS Code takes them from the user's settings (in a remote
 * window: the remote machine's settings) and never from a workspace's
 * `.vscode/settings.json` or `.code-workspace` file. The extension reads them
 * through readSettings, which enforces the same rule again.
 */
export const MACHINE_SCOPED_KEYS: readonly string[] = [
  'server.host',
  'server.allowedOrigins',
  'server.allowedHosts',
  'server.publicUrl',
  'server.tls.certFile',
  'server.tls.keyFile',
  'auth.algorithm',
  'auth.publicKey',
  'auth.publicKeyPath',
  'auth.audience',
  'auth.issuer',
  'auth.timeoutSeconds',
  'auth.leewaySeconds',
  'heartbeat.intervalSeconds',
  'heartbeat.timeoutSeconds',
  'events.historySize',
  'events.taskOutput',
  'approvals.timeoutSeconds',
  'limits.maxConnections',
  'limits.maxUnauthenticated',
  'limits.maxMessageBytes',
  'limits.commandsPerSecond',
  'limits.maxOutputBytes',
  'limits.maxConcurrentTasks',
  'limits.maxConversations',
  'limits.maxAgentTurns',
  'limits.agentTurnTimeoutSeconds',
  'limits.agentStartTimeoutSeconds',
  'limits.agentUnwatchedSeconds',
  'limits.maxQueuedBytes',
  'limits.maxWriteBytes',
  'helper.path',
  // Who may command from WhatsApp (Link WhatsApp): never a folder's to widen.
  'whatsapp.allow',
];

/** What WorkspaceConfiguration.inspect answers (the parts used here). */
export interface InspectedValue {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** The `companion` section: VS Code's WorkspaceConfiguration, or a stand-in. */
export interface SettingsSource {
  get(key: string): unknown;
  inspect(key: string): InspectedValue | undefined;
}

export interface ReadSettings {
  /** The value in force for a key (undefined: not set anywhere). */
  get: (key: string) => unknown;
  /** Machine-scoped keys a workspace or folder tried to set: ignored. Sorted. */
  ignoredWorkspaceKeys: string[];
}

/**
 * Reads the section: a machine-scoped key takes the user's (global; in a
 * remote window, the remote machine's merged in) value or the default, never
 * a workspace or folder value, even one that got past VS Code's own scope
 * filter; other keys take VS Code's merged value.
 */
export function readSettings(src: SettingsSource, keys: readonly string[]): ReadSettings {
  const values = new Map<string, unknown>();
  const ignored: string[] = [];
  for (const key of keys) {
    if (MACHINE_SCOPED_KEYS.includes(key)) {
      const i = src.inspect(key);
      values.set(key, i?.globalValue ?? i?.defaultValue);
      if (i?.workspaceValue !== undefined || i?.workspaceFolderValue !== undefined) ignored.push(key);
    } else {
      values.set(key, src.get(key));
    }
  }
  return { get: (key) => values.get(key), ignoredWorkspaceKeys: ignored.sort() };
}

/** What auth.secret is made from: the stored secret and the helper's workspace id. */
export interface KeyMaterial {
  storedSecret: string;
  workspaceId: string;
}

/**
 * Builds the nested settings object from a getter of flat keys. Undefined
 * values are left out so the helper applies its own default. auth.secret is
 * the workspace's derived key (workspaceKey.ts), never the stored secret.
 */
export function toHelperSettings(get: (key: string) => unknown, key: KeyMaterial | undefined): HelperSettings {
  const out: HelperSettings = {};
  for (const k of Object.keys(HELPER_SETTING_DEFAULTS)) {
    const value = get(k);
    if (value === undefined) continue;
    setPath(out, k.split('.'), value);
  }
  if (key !== undefined) setPath(out, ['auth', 'secret'], workspaceKey(key.storedSecret, key.workspaceId));
  return out;
}

function setPath(target: Record<string, unknown>, parts: string[], value: unknown): void {
  let node = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const next = node[part];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] as string] = value;
}

/** True for loopback names and addresses (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  if (/^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  return false;
}

/** A stable workspace id: the first 16 hex digits of sha256(first folder path). */
export function workspaceIdFor(firstFolderFsPath: string | undefined, fallback: string): string {
  return createHash('sha256')
    .update(firstFolderFsPath ?? fallback)
    .digest('hex')
    .slice(0, 16);
}
