/** Command line and JSON configuration. */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { normalizeE164 } from './transport.js';

export interface WorkspaceConfig {
  name: string;
  url: string;
  tokenFile?: string | undefined;
  workspaceId?: string | undefined;
}

export interface Config {
  workspaces: WorkspaceConfig[];
  allow: string[];
  groups: string[];
  authDir: string;
  /** Where notify.json is kept. Default: the parent of authDir. */
  stateDir?: string | undefined;
  json: boolean;
  relink: boolean;
  /** Stop (as on SIGTERM) when stdin ends: the program that started the bridge is gone (--stop-with-parent). */
  stopWithParent?: boolean;
  perSenderPerMinute: number;
  helperSendsPerSecond: number;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** The WhatsApp Web version to present ("2.3000.1023456789"), instead of fetching the current one. */
  waVersion?: string | undefined;
  /** The bridge's own API on 127.0.0.1 (0: any free port); undefined: no API. */
  apiPort?: number | undefined;
  /** E.164 numbers that may approve pairing codes (`pair CODE` in their chat); they may command too. */
  owners?: string[] | undefined;
  /** The editor owns the allowlist: approvals are announced on the API (`allowed`), not kept in allowed.json. */
  allowManaged?: boolean | undefined;
}

export type ParseResult =
  | { kind: 'run'; config: Config }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error'; message: string };

export const USAGE = `Usage: companion-whatsapp [options]

Links to your WhatsApp account as a linked device and relays text commands
("status", "run test", ...) to a Companion helper.

Options:
  --helper-url URL     helper WebSocket URL (default ws://127.0.0.1:3001/ws)
  --token-file FILE    file holding the helper token (re-read when it changes)
  --workspace ID       the helper's workspace id
  --allow NUMBERS      E.164 numbers allowed to command (repeatable, or comma
                       separated); your own "message yourself" chat always is
  --auth-dir DIR       where the WhatsApp session is kept
                       (default ~/.config/companion/whatsapp-auth, mode 0700)
  --api-port PORT      serve the bridge's API (QR code, status, messages,
                       send) on 127.0.0.1:PORT, 0 = any free port; token from
                       BRIDGE_TOKEN, else <state folder>/api-token
  --stop-with-parent   stop when stdin closes (for a program that runs the
                       bridge with a pipe on its stdin, e.g. VS Code)
  --config FILE        JSON file with the same keys (helperUrl, tokenFile,
                       workspaceId, allow, authDir, stateDir, groups,
                       perSenderPerMinute, waVersion, apiPort, owners,
                       allowManaged)
                       and "workspaces": [{name, url, tokenFile, workspaceId}]
  --allow-managed      the allowlist is managed by the program running the
                       bridge (the VS Code extension): approved pairing
                       codes are announced on the API, not kept in
                       <state folder>/allowed.json
  --json               stdout: one JSON event per line (qr, status, message,
                       sent, error); logs go to stderr
  --relink             forget the stored session and link again (new QR code)
  --wa-version V       WhatsApp Web version to present (2.3000.1023456789;
                       or the environment's COMPANION_WA_VERSION);
                       default: fetched from WhatsApp at connect, else the
                       one bundled with the bridge
  --verbose            debug logs
  --version            print the version
  --help               this help
`;

interface FileConfig {
  helperUrl?: unknown;
  tokenFile?: unknown;
  workspaceId?: unknown;
  allow?: unknown;
  groups?: unknown;
  authDir?: unknown;
  stateDir?: unknown;
  json?: unknown;
  relink?: unknown;
  perSenderPerMinute?: unknown;
  helperSendsPerSecond?: unknown;
  workspaces?: unknown;
  waVersion?: unknown;
  apiPort?: unknown;
  owners?: unknown;
  allowManaged?: unknown;
}

const DEFAULT_URL = 'ws://127.0.0.1:3001/ws';

function configHome(env: NodeJS.ProcessEnv): string {
  return env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.length > 0 ? env.XDG_CONFIG_HOME : path.join(homedir(), '.config');
}

function str(v: unknown, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new Error(`"${key}" must be a non-empty string`);
  return v;
}

function strList(v: unknown, key: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`"${key}" must be a list of strings`);
  return (v as string[]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

function posInt(v: unknown, key: string, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`"${key}" must be a number >= 0`);
  return v;
}

/** A TCP port, 0 meaning any free one. */
function port(v: unknown, key: string): number {
  const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${key}: not a port (0-65535): ${String(v)}`);
  return n;
}

function checkUrl(u: string, key: string): string {
  let parsed: URL;
  try { parsed = new URL(u); } catch { throw new Error(`"${key}" is not a URL: ${u}`); }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new Error(`"${key}" must be a ws:// or wss:// URL: ${u}`);
  return u;
}

function resolvePath(p: string | undefined, base: string): string | undefined {
  return p === undefined ? undefined : path.resolve(base, p);
}

/** Parses argv (without node and script) and the --config file it names. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ParseResult {
  const flags: { helperUrl?: string; tokenFile?: string; workspaceId?: string; authDir?: string; config?: string; waVersion?: string } = {};
  const allow: string[] = [];
  let json = false;
  let relink = false;
  let stopWithParent = false;
  let verbose = false;
  let allowManaged = false;
  let apiPortFlag: string | undefined;
  const valueFlags: Record<string, keyof typeof flags> = {
    '--helper-url': 'helperUrl', '--token-file': 'tokenFile', '--workspace': 'workspaceId', '--auth-dir': 'authDir', '--config': 'config', '--wa-version': 'waVersion',
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) { inline = arg.slice(eq + 1); arg = arg.slice(0, eq); }
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    if (arg === '--api-port') {
      apiPortFlag = inline ?? argv[++i];
      if (apiPortFlag === undefined || apiPortFlag.length === 0) return { kind: 'error', message: '--api-port needs a value' };
      continue;
    }
    if (arg === '--allow-managed') {
      if (inline !== undefined) return { kind: 'error', message: `${arg} takes no value` };
      allowManaged = true;
      continue;
    }
    const boolFlag = arg === '--json' || arg === '--relink' || arg === '--verbose' || arg === '--stop-with-parent';
    if (boolFlag) {
      if (inline !== undefined) return { kind: 'error', message: `${arg} takes no value` };
      if (arg === '--json') json = true; else if (arg === '--relink') relink = true;
      else if (arg === '--stop-with-parent') stopWithParent = true; else verbose = true;
      continue;
    }
    if (arg === '--allow' || valueFlags[arg]) {
      const value = inline ?? argv[++i];
      if (value === undefined || value.length === 0 || (inline === undefined && value.startsWith('--'))) {
        return { kind: 'error', message: `${arg} needs a value` };
      }
      if (arg === '--allow') allow.push(...value.split(',').map((s) => s.trim()).filter(Boolean));
      else flags[valueFlags[arg]!] = value;
      continue;
    }
    return { kind: 'error', message: `unknown option: ${argv[i]}` };
  }

  let file: FileConfig = {};
  let fileDir = cwd;
  if (flags.config) {
    const p = path.resolve(cwd, flags.config);
    try {
      const parsed: unknown = JSON.parse(readFileSync(p, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      file = parsed;
      fileDir = path.dirname(p);
    } catch (e) {
      return { kind: 'error', message: `cannot read --config ${flags.config}: ${(e as Error).message}` };
    }
  }

  try {
    const workspaces: WorkspaceConfig[] = [];
    if (file.workspaces !== undefined) {
      if (!Array.isArray(file.workspaces) || file.workspaces.length === 0) throw new Error('"workspaces" must be a non-empty list');
      const names = new Set<string>();
      for (const [i, w] of (file.workspaces as unknown[]).entries()) {
        if (typeof w !== 'object' || w === null) throw new Error(`workspaces[${i}] must be an object`);
        const o = w as Record<string, unknown>;
        const name = str(o.name, `workspaces[${i}].name`) ?? `ws${i + 1}`;
        if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`workspaces[${i}].name may hold only letters, digits, _ . -`);
        if (names.has(name.toLowerCase())) throw new Error(`workspace name "${name}" is used twice`);
        names.add(name.toLowerCase());
        workspaces.push({
          name,
          url: checkUrl(str(o.url, `workspaces[${i}].url`) ?? DEFAULT_URL, `workspaces[${i}].url`),
          tokenFile: resolvePath(str(o.tokenFile, `workspaces[${i}].tokenFile`), fileDir),
          workspaceId: str(o.workspaceId, `workspaces[${i}].workspaceId`),
        });
      }
    } else {
      workspaces.push({
        name: 'default',
        url: DEFAULT_URL,
        tokenFile: resolvePath(str(file.tokenFile, 'tokenFile'), fileDir),
        workspaceId: str(file.workspaceId, 'workspaceId'),
      });
      const url = str(file.helperUrl, 'helperUrl');
      if (url) workspaces[0]!.url = checkUrl(url, 'helperUrl');
    }
    // Flags override the default (first) workspace.
    const first = workspaces[0]!;
    if (flags.helperUrl) first.url = checkUrl(flags.helperUrl, '--helper-url');
    if (flags.tokenFile) first.tokenFile = path.resolve(cwd, flags.tokenFile);
    if (flags.workspaceId) first.workspaceId = flags.workspaceId;

    const allowAll = [...strList(file.allow, 'allow'), ...allow];
    for (const a of allowAll) if (!normalizeE164(a)) throw new Error(`--allow: not a phone number in E.164 form (+15551234567): ${a}`);
    const owners = strList(file.owners, 'owners');
    for (const o of owners) if (!normalizeE164(o)) throw new Error(`owners: not a phone number in E.164 form (+15551234567): ${o}`);
    if (file.allowManaged !== undefined && typeof file.allowManaged !== 'boolean') throw new Error('"allowManaged" must be true or false');
    // The flag, else COMPANION_WA_VERSION, else the file's "waVersion".
    const envVersion = env.COMPANION_WA_VERSION ? env.COMPANION_WA_VERSION : undefined;
    const [waVersion, waFrom] = flags.waVersion !== undefined ? [flags.waVersion, '--wa-version']
      : envVersion !== undefined ? [envVersion, 'COMPANION_WA_VERSION'] : [str(file.waVersion, 'waVersion'), 'waVersion'];
    if (waVersion !== undefined && !/^\d+\.\d+\.\d+$/.test(waVersion.trim())) throw new Error(`${waFrom}: not a WhatsApp Web version (2.3000.1023456789): ${waVersion}`);
    const authDir = flags.authDir ? path.resolve(cwd, flags.authDir)
      : resolvePath(str(file.authDir, 'authDir'), fileDir) ?? path.join(configHome(env), 'companion', 'whatsapp-auth');
    return {
      kind: 'run',
      config: {
        workspaces,
        allow: allowAll.map((a) => normalizeE164(a)!),
        groups: strList(file.groups, 'groups'),
        authDir,
        stateDir: resolvePath(str(file.stateDir, 'stateDir'), fileDir),
        json: json || file.json === true,
        relink: relink || file.relink === true,
        stopWithParent,
        perSenderPerMinute: posInt(file.perSenderPerMinute, 'perSenderPerMinute', 10),
        helperSendsPerSecond: posInt(file.helperSendsPerSecond, 'helperSendsPerSecond', 10),
        logLevel: verbose ? 'debug' : 'info',
        waVersion: waVersion?.trim(),
        owners: owners.map((o) => normalizeE164(o)!),
        allowManaged: allowManaged || file.allowManaged === true,
        apiPort: apiPortFlag !== undefined ? port(apiPortFlag, '--api-port') : file.apiPort === undefined || file.apiPort === null ? undefined : port(file.apiPort, 'apiPort'),
      },
    };
  } catch (e) {
    return { kind: 'error', message: (e as Error).message };
  }
}
