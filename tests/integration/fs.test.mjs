// fs.list / fs.read over the WebSocket: confinement to the workspace folder
// and caps. The replies must never carry anything from outside.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, symlinkSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Editor, tempDir } from './lib/harness.mjs';

describe('fs commands', () => {
  let ed; let c; let dir; let outside;
  const passwd = readFileSync('/etc/passwd', 'utf8');
  before(async () => {
    dir = tempDir('companion-fs-');
    outside = tempDir('companion-outside-');
    writeFileSync(path.join(outside, 'secret.txt'), 'TOP-SECRET-OUTSIDE\n');
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', 'main.c'), 'int main(void) { return 0; }\n');
    writeFileSync(path.join(dir, 'bin.dat'), Buffer.from([0, 255, 1, 2]));
    writeFileSync(path.join(dir, 'big.txt'), 'x'.repeat(300 * 1024));
    symlinkSync('/etc/passwd', path.join(dir, 'passwd'));
    symlinkSync(outside, path.join(dir, 'outdir'));
    symlinkSync('src/main.c', path.join(dir, 'inside-link'));
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    ed = new Editor();
    await ed.startServer({ folders: [dir], settings: { limits: { commandsPerSecond: 1000 } } });
    c = await ed.client({ scope: 'read' });
  });
  after(async () => { c.close(); await ed.stop(); });

  test('fs.list lists entries with types, sorted', async () => {
    const r = (await c.command('fs.list')).data.result;
    const names = r.entries.map((e) => e.name);
    assert.deepEqual(names, [...names].sort());
    const get = (n) => r.entries.find((e) => e.name === n);
    assert.equal(get('src').type, 'dir');
    assert.equal(get('bin.dat').type, 'file');
    assert.equal(get('bin.dat').size, 4);
    assert.equal(get('passwd').type, 'symlink');
    assert.equal(get('fifo').type, 'other');
    const sub = (await c.command('fs.list', { path: 'src' })).data.result;
    assert.deepEqual(sub.entries.map((e) => e.name), ['main.c']);
  });

  test('fs.read: text, binary as base64, caps', async () => {
    const t = (await c.command('fs.read', { path: 'src/main.c' })).data.result;
    assert.equal(t.encoding, 'utf8');
    assert.equal(t.content, 'int main(void) { return 0; }\n');
    assert.equal(t.truncated, false);
    const b = (await c.command('fs.read', { path: 'bin.dat' })).data.result;
    assert.equal(b.encoding, 'base64');
    assert.deepEqual([...Buffer.from(b.content, 'base64')], [0, 255, 1, 2]);
    const big = (await c.command('fs.read', { path: 'big.txt', maxBytes: 1000 })).data.result;
    assert.equal(big.truncated, true);
    assert.equal(big.content.length, 1000);
    assert.equal(big.size, 300 * 1024);
    const link = (await c.command('fs.read', { path: 'inside-link' })).data.result;
    assert.equal(link.content, 'int main(void) { return 0; }\n');
  });

  test('escapes are refused and never carry outside content', async () => {
    const attempts = [
      ['fs.read', { path: '../' + path.basename(outside) + '/secret.txt' }],
      ['fs.read', { path: '/etc/passwd' }],
      ['fs.read', { path: 'passwd' }],
      ['fs.read', { path: 'outdir/secret.txt' }],
      ['fs.list', { path: 'outdir' }],
      ['fs.list', { path: '..' }],
      ['fs.read', { path: 'src/../../etc/passwd' }],
      ['fs.read', { path: 'fifo' }],
    ];
    for (const [name, args] of attempts) {
      const t0 = Date.now();
      const r = await c.command(name, args);
      const text = JSON.stringify(r);
      assert.equal(r.data.success, false, `${name} ${args.path} succeeded: ${text}`);
      assert.ok(['FORBIDDEN', 'NOT_FOUND'].includes(r.data.error.code), `${name} ${args.path}: ${text}`);
      assert.ok(!text.includes('TOP-SECRET') && !text.includes(passwd.slice(0, 20)), `outside content in ${text}`);
      assert.ok(!text.includes(outside) && !text.includes(dir), `absolute path in ${text}`);
      assert.ok(Date.now() - t0 < 2000, 'answered promptly (a FIFO must not block)');
    }
  });

  test('bad arguments', async () => {
    assert.equal((await c.command('fs.read', {})).data.error.code, 'INVALID_ARGS');
    assert.equal((await c.command('fs.read', { path: 3 })).data.error.code, 'INVALID_ARGS');
    assert.equal((await c.command('fs.read', { path: 'src/main.c', maxBytes: 'x' })).data.error.code, 'INVALID_ARGS');
    assert.equal((await c.command('fs.read', { path: 'nope.txt' })).data.error.code, 'NOT_FOUND');
    assert.equal((await c.command('fs.list', { path: 'src/main.c' })).data.success, false);
  });
});
