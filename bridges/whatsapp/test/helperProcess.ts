/**
 * Starts the real companion-helper binary (`serve`) for the tests, in a temp
 * git repository with its own XDG_CONFIG_HOME, and mints tokens with
 * `companion-helper token`.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const HELPER_BIN_SOURCE = process.env.HELPER_BIN ?? path.resolve(import.meta.dirname, '../../../../build/companion-helper');

export const sleep = (ms: number): Promise<void> => new Promise((r) => { setTimeout(r, ms); });

const cleanups: (() => void)[] = [];
export function cleanupAll(): void {
  for (const c of cleanups.splice(0)) {
    try { c(); } catch { /* best effort */ }
  }
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  cleanups.push(() => { rmSync(d, { recursive: true, force: true }); });
  return d;
}

/**
 * The tests run a private copy of the helper binary (and its git module), so a rebuild of
 * build/companion-helper while they run (a shared checkout) cannot break a
 * spawn half-way. The copy is retried until it runs.
 */
function snapshotHelper(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cw-bin-'));
  process.on('exit', () => { rmSync(dir, { recursive: true, force: true }); });
  const bin = path.join(dir, 'companion-helper');
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      copyFileSync(HELPER_BIN_SOURCE, bin);
      chmodSync(bin, 0o755);
      // The git commands are a module the helper loads from beside itself.
      copyFileSync(path.join(path.dirname(HELPER_BIN_SOURCE), 'companion-git.so'), path.join(dir, 'companion-git.so'));
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
      return bin;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`cannot use the helper binary ${HELPER_BIN_SOURCE}: ${(e as Error).message}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
}

export const HELPER_BIN = snapshotHelper();

function git(dir: string, ...args: string[]): void {
  execFileSync('git', args, {
    cwd: dir,
    stdio: 'ignore',
    env: { ...process.env, GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.com' },
  });
}

/** A git repository with one commit ("first commit") on `branch`. */
export function gitRepo(branch = 'main'): string {
  const dir = tempDir('cw-repo-');
  git(dir, 'init', '-q', '-b', branch);
  writeFileSync(path.join(dir, 'a.txt'), 'a\n');
  git(dir, 'add', 'a.txt');
  git(dir, 'commit', '-q', '-m', 'first commit');
  return dir;
}

/** An empty commit with this summary. */
export function commit(dir: string, summary: string): void {
  git(dir, 'commit', '-q', '--allow-empty', '-m', summary);
}

export function writeFile(dir: string, rel: string, text: string): void {
  const p = path.join(dir, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
}

export interface ServeOptions {
  settings?: Record<string, unknown>;
  port?: number;
}

/** One `companion-helper serve` for a repository; restartable on the same port. */
export class ServedHelper {
  readonly home: string;
  readonly configFile: string;
  child: ChildProcess | null = null;
  url = '';
  port = 0;
  workspaceId = '';
  stderr = '';

  constructor(readonly repo: string, settings: Record<string, unknown> = {}) {
    this.home = tempDir('cw-home-');
    this.configFile = path.join(this.home, 'companion.json');
    writeFileSync(this.configFile, JSON.stringify(settings));
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, XDG_CONFIG_HOME: path.join(this.home, 'config'), HOME: this.home };
  }

  async start(port = this.port): Promise<void> {
    const child = spawn(HELPER_BIN, ['serve', '--workspace', this.repo, '--host', '127.0.0.1', '--port', String(port),
      '--scope', 'read,run', '--config', this.configFile], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    const deadline = Date.now() + 10000;
    while (!out.includes('Press Ctrl+C')) {
      if (child.exitCode !== null) throw new Error(`helper exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no banner: ${out} ${this.stderr}`);
      await sleep(20);
    }
    const field = (name: string): string => (new RegExp(`${name}:\\s+(\\S+)`).exec(out) ?? [])[1] ?? '';
    this.url = field('URL');
    this.workspaceId = field('Workspace id');
    this.port = Number(new URL(this.url).port);
    cleanups.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  }

  /** SIGTERM (clients get 1001) and wait for the exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => { child.once('exit', () => { r(); }); });
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  /** A token signed with this helper's stored secret. */
  token(scope = 'read,run', user = 'whatsapp-bridge'): string {
    return execFileSync(HELPER_BIN, ['token', '--scope', scope, '--user', user, '--workspace', this.repo, '--config', this.configFile],
      { env: this.env, encoding: 'utf8' }).trim();
  }

  /** Writes a fresh token to a file and returns its path. */
  tokenFile(scope = 'read,run', user?: string): string {
    const f = path.join(tempDir('cw-token-'), 'token');
    writeFileSync(f, `${this.token(scope, user)}\n`, { mode: 0o600 });
    return f;
  }
}
