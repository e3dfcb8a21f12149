// web/scripts/embed.mjs: the generated web-assets.c compiles with the
// helper's warnings as errors, and the compiled table gives back every
// file of web/dist/ exactly (gunzipped), with the right type, a strong
// content-hash ETag, and immutable only for hashed names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { WEB, ROOT, DIST, tempDir } from './lib/env.mjs';

const CFLAGS = ['-std=c11', '-Wall', '-Wextra', '-Werror', '-Wshadow', '-Wmissing-prototypes', '-Wstrict-prototypes', '-pedantic'];

function distFiles() {
  const out = [];
  (function walk(d) {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(`/${path.relative(DIST, p).split(path.sep).join('/')}`);
    }
  })(DIST);
  return out.sort();
}

test('web-assets.c compiles cleanly and serves back every file of dist/', () => {
  const out = tempDir('companion-embed-');
  execFileSync('node', [path.join(WEB, 'scripts/embed.mjs'), out]);
  assert.deepEqual(readdirSync(out), ['web-assets.c'], 'embed wrote something else');
  const bin = path.join(out, 'embed_check');
  execFileSync('gcc', [...CFLAGS, '-I', ROOT, path.join(out, 'web-assets.c'), path.join(WEB, 'test/embed_check.c'), '-o', bin]);
  const files = distFiles();
  assert.ok(files.includes('/index.html') && files.includes('/sw.js') && files.includes('/manifest.webmanifest'));
  for (const f of files) {
    const raw = readFileSync(path.join(DIST, f));
    const gz = execFileSync(bin, ['gzip', f], { maxBuffer: 64 << 20 });
    assert.ok(gunzipSync(gz).equals(raw), `${f} does not gunzip to the file`);
    const [p, type, gzLen, size, etag, immutable] = execFileSync(bin, ['meta', f], { encoding: 'utf8' }).trim().split('\t');
    assert.equal(p, f);
    assert.equal(Number(gzLen), gz.length);
    assert.equal(Number(size), raw.length);
    assert.equal(etag, `"${createHash('sha256').update(raw).digest('hex').slice(0, 32)}"`);
    assert.equal(immutable, f.startsWith('/assets/') ? '1' : '0', `${f} immutable flag`);
    assert.match(f.startsWith('/assets/') ? path.basename(f) : 'fixed', /-[0-9A-Z]{8}\.|fixed/, `${f} is not a hashed name`);
    const expected = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml', '.png': 'image/png' }[path.extname(f)];
    assert.ok(type.startsWith(expected), `${f}: ${type}`);
  }
  assert.equal(execFileSync(bin, ['meta', '/'], { encoding: 'utf8' }).split('\t')[0], '/index.html', '"/" is index.html');
  for (const missing of ['/nope', '/index.htm', '/index.html?x', '', '/assets/', '/../web_assets.h']) {
    assert.equal(spawnSync(bin, ['meta', missing]).status, 3, `${JSON.stringify(missing)} found`);
  }
});

test('embedding is reproducible: the same dist gives the same C file', () => {
  const a = tempDir('companion-embed-a-');
  const b = tempDir('companion-embed-b-');
  execFileSync('node', [path.join(WEB, 'scripts/embed.mjs'), a]);
  execFileSync('node', [path.join(WEB, 'scripts/embed.mjs'), b]);
  assert.ok(readFileSync(path.join(a, 'web-assets.c')).equals(readFileSync(path.join(b, 'web-assets.c'))));
});
