/* Helper discovery and version checks, with the real binary and stand-ins. */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compatibleVersion, discoverHelper, HelperNotFoundError } from '../src/discovery';
import { HELPER_BIN } from './util';

function script(dir: string, name: string, body: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('helper discovery', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'companion-disc-'));
  const empty = mkdtempSync(path.join(tmpdir(), 'companion-empty-'));

  it('uses companion.helper.path when set', async () => {
    const f = await discoverHelper({ settingPath: HELPER_BIN, expectedVersion: '0.1.0', pathEnv: empty });
    assert.equal(f.path, HELPER_BIN);
    assert.equal(f.source, 'setting');
    assert.equal(f.version, '0.1.0');
  });

  it('prefers the bundled bin/ over PATH, and finds PATH otherwise', async () => {
    const ext = path.join(dir, 'ext');
    mkdirSync(path.join(ext, 'bin'), { recursive: true });
    copyFileSync(HELPER_BIN, path.join(ext, 'bin', 'companion-helper'));
    chmodSync(path.join(ext, 'bin', 'companion-helper'), 0o755);
    const onPath = path.dirname(HELPER_BIN);
    const bundled = await discoverHelper({ extensionPath: ext, expectedVersion: '0.1.0', pathEnv: onPath });
    assert.equal(bundled.source, 'bundled');
    const fromPath = await discoverHelper({ extensionPath: empty, expectedVersion: '0.1.0', pathEnv: onPath });
    assert.equal(fromPath.source, 'PATH');
    assert.equal(fromPath.path, HELPER_BIN);
  });

  it('reports a missing helper clearly', async () => {
    await assert.rejects(
      discoverHelper({ extensionPath: empty, expectedVersion: '0.1.0', pathEnv: empty }),
      (e: unknown) => e instanceof HelperNotFoundError && /not found/.test(e.message),
    );
    await assert.rejects(
      discoverHelper({ settingPath: path.join(empty, 'nope'), expectedVersion: '0.1.0', pathEnv: empty }),
      /companion.helper.path .* not an executable file/,
    );
  });

  it('refuses a program that is not companion-helper, or of another version', async () => {
    const other = script(dir, 'other', 'echo "something 1.0"');
    await assert.rejects(
      discoverHelper({ settingPath: other, expectedVersion: '0.1.0', pathEnv: empty }),
      /is not companion-helper/,
    );
    const old = script(dir, 'old', 'echo "companion-helper 0.0.9"');
    await assert.rejects(
      discoverHelper({ settingPath: old, expectedVersion: '0.1.0', pathEnv: empty }),
      /version 0\.0\.9; this extension needs 0\.1\.0/,
    );
  });

  it('compares versions by major (and minor below 1.0)', () => {
    assert.equal(compatibleVersion('0.1.5', '0.1.0'), true);
    assert.equal(compatibleVersion('0.2.0', '0.1.0'), false);
    assert.equal(compatibleVersion('1.4.0', '1.0.0'), true);
    assert.equal(compatibleVersion('2.0.0', '1.0.0'), false);
    assert.equal(compatibleVersion('garbage', '1.0.0'), false);
  });
});
