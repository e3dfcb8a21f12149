/* Shared test helpers: the real helper binary, a recording logger, ws clients. */
import { createHmac, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { HelperClient, type HelperClientOptions, type Logger } from '../src/client';
import type { HelperSettings, InitializeParams, Scope } from '../src/protocol';
import { workspaceKey } from '../src/workspaceKey';

export const HELPER_BIN = path.resolve(
  process.env.COMPANION_HELPER_BIN ?? path.join(__dirname, '..', '..', '..', 'build', 'companion-helper'),
);

/* Every helper, CLI and bridge a test starts keeps its state (device
 * registries, approval ids) here, never in the user's own
 * ~/.local/state/companion; a test file may name another. */
const testState = mkdtempSync(path.join(tmpdir(), 'companion-ext-state-'));
process.env.XDG_STATE_HOME = testState;
process.on('exit', () => rmSync(testState, { recursive: true, force: true }));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class RecordingLogger implements Logger {
  lines: string[] = [];
  debug(m: string): void { this.lines.push(`debug ${m}`); }
  info(m: string): void { this.lines.push(`info ${m}`); }
  warn(m: string): void { this.lines.push(`warn ${m}`); }
  error(m: string): void { this.lines.push(`error ${m}`); }
  text(): string { return this.lines.join('\n'); }
}

export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface TestClient {
  client: HelperClient;
  logger: RecordingLogger;
  /** The stored secret (as in SecretStorage): never sent to the helper. */
  secret: string;
  workspaceId: string;
  /** The key the helper gets as auth.secret: workspaceKey(secret, workspaceId). */
  key: string;
  folder: string;
  settings: HelperSettings;
  /** The params of the last initialize sent. */
  initialized?: InitializeParams;
}

export interface InitOverrides {
  workspaceId?: string;
  /** Builds the whole settings object (auth.secret included) instead of the default. */
  settings?: () => HelperSettings;
  privatePaths?: string[];
}

/** A HelperClient on the real binary; settings can be changed through the returned object. */
export function makeClient(
  settings: HelperSettings = {},
  opts: Partial<HelperClientOptions> = {},
  init: InitOverrides = {},
): TestClient {
  const logger = new RecordingLogger();
  const folder = mkdtempSync(path.join(tmpdir(), 'companion-ext-test-'));
  const secret = randomBytes(32).toString('hex');
  const workspaceId = init.workspaceId ?? 'ws-ext-test';
  const t: TestClient = {
    logger,
    folder,
    secret,
    workspaceId,
    key: workspaceKey(secret, workspaceId),
    settings: { server: { host: '127.0.0.1', port: 0 }, ...settings },
    client: undefined as unknown as HelperClient,
  };
  t.client = new HelperClient({
    helperPath: HELPER_BIN,
    logger,
    initializeParams: (): Promise<InitializeParams> => {
      t.initialized = {
        processId: process.pid,
        clientInfo: { name: 'companion-ext-tests', version: '0.1.0' },
        workspaceId,
        workspaceFolders: [{ uri: pathToFileURL(folder).toString(), name: path.basename(folder) }],
        settings: init.settings
          ? init.settings()
          : { ...t.settings, auth: { ...(t.settings.auth as object | undefined), secret: t.key } },
        ...(init.privatePaths ? { privatePaths: init.privatePaths } : {}),
      };
      return Promise.resolve(t.initialized);
    },
    backoffInitialMs: 100,
    backoffMaxMs: 400,
    killTimeoutMs: 2000,
    ...opts,
  });
  return t;
}

export interface WsClient {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  next(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  send(m: unknown): void;
}

export function connectWs(url: string): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
    );
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString('utf8')) as Record<string, unknown>));
    const c: WsClient = {
      ws,
      messages,
      closed,
      send: (m) => ws.send(JSON.stringify(m)),
      next: async (pred, timeoutMs = 10000) => {
        const found = await waitFor(() => {
          const i = messages.findIndex(pred);
          return i >= 0 ? messages.splice(i, 1)[0] : undefined;
        }, 'a ws message', timeoutMs);
        return found;
      },
    };
    ws.once('open', () => resolve(c));
    ws.once('error', reject);
  });
}

/** Connects and authenticates with a token minted by auth/issueToken. */
export async function pairedClient(
  client: HelperClient,
  url: string,
  scopes: Scope[] = ['read'],
  userId = 'phone',
): Promise<WsClient> {
  const tok = await client.issueToken({ userId, scopes, ttlSeconds: 600 });
  const c = await connectWs(url);
  c.send({ type: 'auth', id: 'a1', data: { token: tok.token, workspaceId: tok.workspaceId } });
  const res = await c.next((m) => m.id === 'a1');
  const data = res.data as { success: boolean };
  if (!data.success) throw new Error(`auth failed: ${JSON.stringify(res)}`);
  return c;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** A JWT signed here (HS256 with a string key, RS256 with a private key), not by the helper. */
export function signJwt(alg: 'HS256' | 'RS256', key: string | KeyObject, claims: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  const sig =
    alg === 'HS256'
      ? createHmac('sha256', key as string).update(input).digest()
      : sign('sha256', Buffer.from(input), key as KeyObject);
  return `${input}.${b64url(sig)}`;
}
