// scripts/check-layers.mjs against small trees made to break each rule, and
// against the project itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, '..', '..', 'scripts', 'check-layers.mjs');

function tree(files) {
  const root = mkdtempSync(path.join(tmpdir(), 'companion-layers-'));
  for (const d of ['core', 'ipc', 'workspace', 'server', 'app']) mkdirSync(path.join(root, d));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(root, name), text);
  return root;
}

function check(files) {
  const root = tree(files);
  try {
    return spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a clean tree passes', () => {
  const r = check({
    'core/a.h': '', 'core/a.c': '#include "core/a.h"\n',
    'server/s.c': '#include <libwebsockets.h>\n#include "core/a.h"\n',
    'app/m.c': '#include "ipc/r.h"\n#include "server/s.h"\n', 'ipc/r.h': '', 'server/s.h': '',
  });
  assert.equal(r.status, 0, r.stderr);
});

test('an include going up a layer fails', () => {
  const r = check({ 'core/a.c': '#include "app/helper.h"\n', 'app/helper.h': '' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /core\/ may not include app\//);
});

test('libwebsockets.h outside server/ fails', () => {
  const r = check({ 'app/m.c': '#include <libwebsockets.h>\n' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /outside server\//);
});

test('ipc/ from anywhere but app/ fails', () => {
  const r = check({ 'workspace/w.c': '#include "ipc/rpc.h"\n', 'ipc/rpc.h': '' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /workspace\/ may not include ipc\//);
});

test('an include circle between modules fails; the halves of one module may share a header', () => {
  const circle = check({
    'app/a.h': '', 'app/b.h': '',
    'app/a.c': '#include "app/b.h"\n', 'app/b.c': '#include "app/a.h"\n',
  });
  assert.equal(circle.status, 1);
  assert.match(circle.stderr, /include circle between modules app\/a, app\/b/);
  const halves = check({
    'app/g.h': '', 'app/g_impl.h': '#include "app/g.h"\n',
    'app/g_watch.c': '#include "app/g_impl.h"\n', 'app/g_cache.c': '#include "app/g_impl.h"\n',
  });
  assert.equal(halves.status, 0, halves.stderr);
});

test('a file over 900 lines fails', () => {
  const r = check({ 'core/long.c': 'int x;\n'.repeat(901) });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /core\/long.c: 901 lines/);
});

test('the project itself passes', () => {
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
