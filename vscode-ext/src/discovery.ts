/*
 * Finding companion-helper: the `companion.helper.path` setting, then the
 * binary bundled in the extension's bin/, then PATH. Each candidate is
 * checked with `--version`. No vscode import.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export const VERSION_PREFIX = 'companion-helper ';

export interface HelperFound {
  path: string;
  version: string;
  source: 'setting' | 'bundled' | 'PATH';
}

export class HelperNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HelperNotFoundError';
  }
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string, pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Runs `<bin> --version`; resolves with the version, rejects with a clear message. */
export function helperVersion(bin: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['--version'], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      if (err) {
        reject(new HelperNotFoundError(`${bin} --version failed: ${err.message.split('\n')[0] ?? ''}`));
        return;
      }
      const line = stdout.split('\n')[0]?.trim() ?? '';
      if (!line.startsWith(VERSION_PREFIX)) {
        reject(
          new HelperNotFoundError(
            `${bin} is not companion-helper (its --version printed "${line.slice(0, 80)}")`,
          ),
        );
        return;
      }
      resolve(line.slice(VERSION_PREFIX.length).trim());
    });
  });
}

/** Same major version (same minor too while the major is 0). */
export function compatibleVersion(found: string, expected: string): boolean {
  const a = /^(\d+)\.(\d+)/.exec(found);
  const b = /^(\d+)\.(\d+)/.exec(expected);
  if (!a || !b) return false;
  if (a[1] !== b[1]) return false;
  return a[1] !== '0' || a[2] === b[2];
}

export interface DiscoverOptions {
  /** The companion.helper.path setting ('' or undefined: not set). */
  settingPath?: string;
  /** The extension's folder, holding bin/companion-helper when bundled. */
  extensionPath?: string;
  /** The extension's version: the helper must be compatible with it. */
  expectedVersion: string;
  pathEnv?: string;
}

/**
 * Returns the helper to run. A path set in the setting is used alone: when
 * it is wrong the user hears about it instead of silently getting another.
 */
export async function discoverHelper(opts: DiscoverOptions): Promise<HelperFound> {
  const candidates: { path: string; source: HelperFound['source'] }[] = [];
  const setting = opts.settingPath?.trim();
  if (setting) {
    if (!isExecutableFile(setting)) {
      throw new HelperNotFoundError(
        `companion.helper.path is "${setting}", which is not an executable file.`,
      );
    }
    candidates.push({ path: setting, source: 'setting' });
  } else {
    if (opts.extensionPath) {
      const bundled = path.join(opts.extensionPath, 'bin', 'companion-helper');
      if (isExecutableFile(bundled)) candidates.push({ path: bundled, source: 'bundled' });
    }
    const onPath = searchPath('companion-helper', opts.pathEnv ?? process.env.PATH);
    if (onPath) candidates.push({ path: onPath, source: 'PATH' });
  }
  if (candidates.length === 0) {
    throw new HelperNotFoundError(
      'companion-helper was not found: it is not bundled with the extension and not on PATH. ' +
        'Install it or set companion.helper.path.',
    );
  }
  const problems: string[] = [];
  for (const c of candidates) {
    try {
      const version = await helperVersion(c.path);
      if (!compatibleVersion(version, opts.expectedVersion)) {
        problems.push(
          `${c.path} is version ${version}; this extension needs ${opts.expectedVersion}`,
        );
        continue;
      }
      return { path: c.path, version, source: c.source };
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    }
  }
  throw new HelperNotFoundError(`No usable companion-helper: ${problems.join('; ')}`);
}
