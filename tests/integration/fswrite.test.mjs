// fs.write / fs.delete over the WebSocket, through the real helper, with
// `ws` and `jsonwebtoken` clients: confinement (the same rule as fs.read,
// plus .git/, .vscode/ and the helper's own files), atomic replacement with
// the mode kept, CONFLICT on a stale expectedSha256, CONTENT_TOO_LARGE, the
// write scope, and file.changed for the helper's writes and for another
// process's. The file system (and sha256 by node:crypto) is the oracle.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  writeFileSync, mkdirSync, symlinkSync, readFileSync, readdirSync, statSync, existsSync,
  chmodSync, rmSync, lstatSync, readlinkSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { Editor, tempDir, sleep, SLOW, configHome, HELPER_BIN, connect } from './lib/harness.mjs';

const sha = (b) => createHash('sha256').update(b).digest('hex');

async function subscribe(c, events) {
  const id = `s${Math.random().toString(36).slice(2)}`;
  c.send({ type: 'subscribe', id, data: { events } });
  return c.next((m) => m.id === id && m.type === 'subscribed');
}

const changed = (c, p, change, folderName) => c.next((m) => m.type === 'event'
  && m.data.event === 'file.changed' && m.data.payload.path === p
  && (!change || m.data.payload.change === change)
  && (!folderName || m.data.payload.folder === folderName), 5000 * SLOW);

describe('fs.write and fs.delete', () => {
  let ed; let w; let r; let dir; let outside;
  before(async () => {
    dir = tempDir('companion-fsw-');
    outside = tempDir('companion-fsw-outside-');
    writeFileSync(path.join(outside, 'victim.txt'), 'OUTSIDE\n');
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', 'main.c'), 'int main(void) { return 0; }\n');
    writeFileSync(path.join(dir, 'script.sh'), '#!/bin/sh\necho hi\n');
    chmodSync(path.join(dir, 'script.sh'), 0o751);
    mkdirSync(path.join(dir, '.git', 'hooks'), { recursive: true });
    writeFileSync(path.join(dir, '.git', 'config'), '[core]\n');
    mkdirSync(path.join(dir, '.vscode'));
    writeFileSync(path.join(dir, '.vscode', 'tasks.json'), '{}');
    symlinkSync(outside, path.join(dir, 'outdir'));
    symlinkSync(path.join(outside, 'victim.txt'), path.join(dir, 'victim-link'));
    symlinkSync('src/main.c', path.join(dir, 'inside-link'));
    symlinkSync('.git', path.join(dir, 'gitlink'));
    ed = new Editor();
    await ed.startServer({ folders: [dir], settings: { limits: { commandsPerSecond: 1000, maxWriteBytes: 1000 } } });
    w = await ed.client({ scope: 'read write' });
    r = await ed.client({ scope: 'read run editor approve agent' });
  });
  after(async () => { w?.close(); r?.close(); await ed?.stop(); rmSync(dir, { recursive: true, force: true }); rmSync(outside, { recursive: true, force: true }); });

  const ok = async (c, name, args) => {
    const m = await c.command(name, args);
    assert.equal(m.data.success, true, `${name} ${JSON.stringify(args).slice(0, 200)}: ${JSON.stringify(m)}`);
    return m.data.result;
  };
  const err = async (c, name, args, code) => {
    const m = await c.command(name, args);
    assert.equal(m.data.success, false, `${name} ${JSON.stringify(args).slice(0, 200)} succeeded: ${JSON.stringify(m)}`);
    assert.equal(m.data.error.code, code, `${name} ${JSON.stringify(args).slice(0, 200)}: ${JSON.stringify(m)}`);
    const text = JSON.stringify(m);
    assert.ok(!text.includes(dir) && !text.includes(outside), `absolute path in ${text}`);
    return m.data.error;
  };
  const noTemp = () => {
    const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => {
      if (e.name.startsWith('.companion-write-')) return [path.join(d, e.name)];
      return e.isDirectory() && !e.isSymbolicLink() ? walk(path.join(d, e.name)) : [];
    });
    assert.deepEqual(walk(dir), [], 'a temporary file was left behind');
  };

  test('write, then read: the same bytes and the same sha256', async () => {
    const res = await ok(w, 'fs.write', { path: 'src/new.txt', content: 'héllo\n' });
    assert.deepEqual(res, { path: 'src/new.txt', bytes: Buffer.byteLength('héllo\n'), sha256: sha('héllo\n'), created: true });
    assert.equal(readFileSync(path.join(dir, 'src/new.txt'), 'utf8'), 'héllo\n');
    assert.equal(statSync(path.join(dir, 'src/new.txt')).mode & 0o777, 0o644 & ~process.umask());
    const back = await ok(r, 'fs.read', { path: 'src/new.txt' });
    assert.equal(back.content, 'héllo\n');
    assert.equal(back.sha256, res.sha256);
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    const b = await ok(w, 'fs.write', { path: 'bin.dat', content: bin.toString('base64'), encoding: 'base64' });
    assert.equal(b.sha256, sha(bin));
    assert.equal(b.bytes, 5);
    assert.deepEqual(readFileSync(path.join(dir, 'bin.dat')), bin);
    assert.equal((await ok(r, 'fs.read', { path: 'bin.dat' })).sha256, sha(bin));
    const empty = await ok(w, 'fs.write', { path: 'empty.txt', content: '' });
    assert.equal(empty.sha256, sha(''));
    noTemp();
  });

  test('fs.read sha256 covers the whole file, not only what is returned', async () => {
    const big = 'y'.repeat(5000);
    writeFileSync(path.join(dir, 'big.txt'), big);
    const res = await ok(r, 'fs.read', { path: 'big.txt', maxBytes: 10 });
    assert.equal(res.truncated, true);
    assert.equal(res.sha256, sha(big));
  });

  test('replacing keeps the mode, is a new inode (atomic rename), leaves no temp file', async () => {
    const p = path.join(dir, 'script.sh');
    const before = statSync(p);
    const cur = sha(readFileSync(p));
    const res = await ok(w, 'fs.write', { path: 'script.sh', content: '#!/bin/sh\necho bye\n', expectedSha256: cur });
    assert.equal(res.created, false);
    const after = statSync(p);
    assert.equal(after.mode & 0o7777, 0o751);
    assert.notEqual(after.ino, before.ino, 'written in place instead of renamed');
    assert.equal(readFileSync(p, 'utf8'), '#!/bin/sh\necho bye\n');
    noTemp();
  });

  test('expectedSha256: a stale hash is CONFLICT with the current one; the file is untouched', async () => {
    const p = path.join(dir, 'src/main.c');
    const cur = sha(readFileSync(p));
    const e = await err(w, 'fs.write', { path: 'src/main.c', content: 'stale', expectedSha256: sha('older') }, 'CONFLICT');
    assert.equal(e.data.currentSha256, cur);
    assert.equal(sha(readFileSync(p)), cur);
    // Uppercase hex is the same hash.
    await ok(w, 'fs.write', { path: 'src/main.c', content: 'int x;\n', expectedSha256: cur.toUpperCase() });
    // A hash for a file that does not exist: CONFLICT, nothing created.
    const gone = await err(w, 'fs.write', { path: 'nothere.txt', content: 'x', expectedSha256: cur }, 'CONFLICT');
    assert.equal(gone.data.currentSha256, null);
    assert.equal(existsSync(path.join(dir, 'nothere.txt')), false);
    // create:false on a missing file.
    await err(w, 'fs.write', { path: 'nothere.txt', content: 'x', create: false }, 'NOT_FOUND');
    assert.equal(existsSync(path.join(dir, 'nothere.txt')), false);
    noTemp();
  });

  test('CONTENT_TOO_LARGE past limits.maxWriteBytes (decoded bytes)', async () => {
    await ok(w, 'fs.write', { path: 'fits.txt', content: 'a'.repeat(1000) });
    await err(w, 'fs.write', { path: 'toobig.txt', content: 'a'.repeat(1001) }, 'CONTENT_TOO_LARGE');
    await ok(w, 'fs.write', { path: 'fits.bin', content: Buffer.alloc(1000).toString('base64'), encoding: 'base64' });
    await err(w, 'fs.write', { path: 'toobig.bin', content: Buffer.alloc(1001).toString('base64'), encoding: 'base64' }, 'CONTENT_TOO_LARGE');
    assert.equal(existsSync(path.join(dir, 'toobig.txt')), false);
    assert.equal(existsSync(path.join(dir, 'toobig.bin')), false);
    noTemp();
  });

  test('escapes are refused and nothing outside changes', async () => {
    const attempts = [
      [{ path: '../' + path.basename(outside) + '/victim.txt' }, 'FORBIDDEN'],
      [{ path: path.join(outside, 'victim.txt') }, 'FORBIDDEN'],
      [{ path: 'outdir/victim.txt' }, 'FORBIDDEN'],
      [{ path: 'outdir/new.txt' }, 'FORBIDDEN'],
      [{ path: 'victim-link' }, 'FORBIDDEN'],
      [{ path: 'inside-link' }, 'FORBIDDEN'],
      [{ path: 'src/../../x' }, 'FORBIDDEN'],
    ];
    for (const [args, code] of attempts) {
      await err(w, 'fs.write', { ...args, content: 'PWNED' }, code);
      await err(w, 'fs.delete', args, code);
    }
    assert.equal(readFileSync(path.join(outside, 'victim.txt'), 'utf8'), 'OUTSIDE\n');
    assert.deepEqual(readdirSync(outside), ['victim.txt']);
    // The links themselves are untouched.
    assert.ok(lstatSync(path.join(dir, 'inside-link')).isSymbolicLink());
    assert.equal(readlinkSync(path.join(dir, 'victim-link')), path.join(outside, 'victim.txt'));
    noTemp();
  });

  test('.git/ and .vscode/ are refused, however they are spelled or reached', async () => {
    for (const p of ['.git/config', '.git/hooks/pre-commit', '.vscode/tasks.json', '.vscode/settings.json',
      'src/.git/config', '.GIT/config', '.VSCode/launch.json', '.git', '.vscode', 'gitlink/config', 'gitlink/hooks/post-checkout']) {
      await err(w, 'fs.write', { path: p, content: 'x' }, 'FORBIDDEN');
      await err(w, 'fs.delete', { path: p }, 'FORBIDDEN');
    }
    assert.equal(readFileSync(path.join(dir, '.git/config'), 'utf8'), '[core]\n');
    assert.equal(readFileSync(path.join(dir, '.vscode/tasks.json'), 'utf8'), '{}');
    assert.equal(existsSync(path.join(dir, '.git/hooks/pre-commit')), false);
    assert.equal(existsSync(path.join(dir, '.git/hooks/post-checkout')), false);
  });

  test('the helper\'s private files are refused, existing or not', async () => {
    const ed2 = new Editor();
    const d2 = tempDir('companion-fsw-priv-');
    const store = path.join(d2, 'storage');
    mkdirSync(store);
    writeFileSync(path.join(store, 'devices.json'), '[]');
    const keyFile = path.join(d2, 'key.pem'); // private, not there yet
    try {
      await ed2.request('initialize', {
        processId: process.pid, workspaceId: 'ws-fsw-priv',
        settings: { auth: { secret: 'k'.repeat(64) }, server: { host: '127.0.0.1', port: 0 } },
        workspaceFolders: [{ uri: `file://${d2}`, name: 'd' }], privatePaths: [store, keyFile],
      });
      ed2.secret = 'k'.repeat(64);
      ed2.workspaceId = 'ws-fsw-priv';
      ed2.url = (await ed2.request('server/start', {})).url;
      const c = await ed2.client({ scope: 'read write' });
      try {
        await err(c, 'fs.write', { path: 'storage/devices.json', content: '[1]' }, 'FORBIDDEN');
        await err(c, 'fs.write', { path: 'storage/new.json', content: '{}' }, 'FORBIDDEN');
        await err(c, 'fs.delete', { path: 'storage/devices.json' }, 'FORBIDDEN');
        await err(c, 'fs.write', { path: 'key.pem', content: 'planted' }, 'FORBIDDEN');
        await ok(c, 'fs.write', { path: 'key.pem.txt', content: 'fine' });
      } finally { c.close(); }
      assert.equal(existsSync(keyFile), false, 'a private path that did not exist was created');
      assert.equal(readFileSync(path.join(store, 'devices.json'), 'utf8'), '[]');
      assert.deepEqual(readdirSync(store), ['devices.json']);
    } finally {
      await ed2.stop();
      rmSync(d2, { recursive: true, force: true });
    }
  });

  test('the write scope: a token without it is FORBIDDEN, with it alone may not read', async () => {
    for (const [name, args] of [['fs.write', { path: 'x.txt', content: 'x' }], ['fs.delete', { path: 'bin.dat' }]]) {
      const m = await r.command(name, args);
      assert.equal(m.data.success, false);
      assert.equal(m.data.error.code, 'FORBIDDEN', JSON.stringify(m));
    }
    assert.equal(existsSync(path.join(dir, 'x.txt')), false);
    assert.ok(existsSync(path.join(dir, 'bin.dat')));
    const only = await ed.client({ scope: 'write' });
    try {
      const auth = await only.command('fs.read', { path: 'bin.dat' });
      assert.equal(auth.data.error.code, 'FORBIDDEN');
      await ok(only, 'fs.write', { path: 'only-write.txt', content: 'w' });
    } finally { only.close(); }
  });

  test('the write scope is issued by auth/issueToken and the CLI, never implied', async () => {
    const issued = await ed.request('auth/issueToken', { userId: 'pairing', scopes: ['read', 'write'], ttlSeconds: 600 });
    assert.equal(jwt.decode(issued.token).scope, 'read write');
    const c = await connect(ed.url);
    try {
      const a = await c.auth(issued.token, ed.workspaceId);
      assert.deepEqual(a.data.scopes, ['read', 'write']);
      await ok(c, 'fs.write', { path: 'issued.txt', content: 'i' });
    } finally { c.close(); }
    const strong = await ed.request('auth/issueToken', { userId: 'p2', scopes: ['read', 'run', 'editor', 'approve', 'agent'], ttlSeconds: 600 });
    assert.ok(!jwt.decode(strong.token).scope.includes('write'));
    await assert.rejects(ed.request('auth/issueToken', { userId: 'p3', scopes: ['admin'], ttlSeconds: 600 }), /write/);
    const home = configHome();
    try {
      const out = execFileSync(HELPER_BIN, ['token', '--scope', 'read,write', '--workspace', dir], { env: home.env }).toString();
      const tok = out.trim().split(/\s+/).find((t) => t.split('.').length === 3);
      assert.equal(jwt.decode(tok).scope, 'read write');
      const help = execFileSync(HELPER_BIN, ['--help']).toString();
      assert.match(help, /approve,agent,write/);
    } finally { home.cleanup(); }
  });

  test('delete: a file goes; directories, links and missing files are refused', async () => {
    writeFileSync(path.join(dir, 'doomed.txt'), 'bye');
    await err(w, 'fs.delete', { path: 'doomed.txt', expectedSha256: sha('other') }, 'CONFLICT');
    assert.ok(existsSync(path.join(dir, 'doomed.txt')));
    assert.deepEqual(await ok(w, 'fs.delete', { path: 'doomed.txt', expectedSha256: sha('bye') }), { path: 'doomed.txt', deleted: true });
    assert.equal(existsSync(path.join(dir, 'doomed.txt')), false);
    await err(w, 'fs.delete', { path: 'doomed.txt' }, 'NOT_FOUND');
    await err(w, 'fs.delete', { path: 'src' }, 'INVALID_ARGS');
    await err(w, 'fs.delete', { path: '.' }, 'INVALID_ARGS');
    await err(w, 'fs.write', { path: 'src', content: 'x' }, 'INVALID_ARGS');
    assert.ok(statSync(path.join(dir, 'src')).isDirectory());
    await err(w, 'fs.delete', { path: 'inside-link' }, 'FORBIDDEN');
    assert.ok(lstatSync(path.join(dir, 'inside-link')).isSymbolicLink());
    // Directories are never created.
    await err(w, 'fs.write', { path: 'no/such/dir.txt', content: 'x' }, 'NOT_FOUND');
    assert.equal(existsSync(path.join(dir, 'no')), false);
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    await err(w, 'fs.write', { path: 'fifo', content: 'x' }, 'FORBIDDEN');
    await err(w, 'fs.delete', { path: 'fifo' }, 'FORBIDDEN');
  });

  test('bad arguments: types, unknown members, encodings, hashes', async () => {
    const cases = [
      { path: 'a.txt' },
      { content: 'x' },
      { path: 7, content: 'x' },
      { path: 'a.txt', content: 7 },
      { path: 'a.txt', content: 'x', encoding: 'latin1' },
      { path: 'a.txt', content: 'x', encoding: 5 },
      { path: 'a.txt', content: 'not base64!', encoding: 'base64' },
      { path: 'a.txt', content: 'QUJD=', encoding: 'base64' },
      { path: 'a.txt', content: 'x', expectedSha256: 'abc' },
      { path: 'a.txt', content: 'x', expectedSha256: 'z'.repeat(64) },
      { path: 'a.txt', content: 'x', create: 'yes' },
      { path: 'a.txt', content: 'x', mode: 0o777 },
      { path: 'a.txt', content: 'x', folder: 3 },
    ];
    for (const args of cases) await err(w, 'fs.write', args, 'INVALID_ARGS');
    await err(w, 'fs.write', { path: 'a.txt', content: 'x', folder: 'nope' }, 'NOT_FOUND');
    for (const args of [{}, { path: 5 }, { path: 'a.txt', recursive: true }, { path: 'a.txt', expectedSha256: 1 }]) {
      await err(w, 'fs.delete', args, 'INVALID_ARGS');
    }
    const m = await w.request({ type: 'command', id: 'arr', data: { name: 'fs.write', args: [1] } });
    assert.equal(m.data.error.code, 'INVALID_ARGS');
    assert.equal(existsSync(path.join(dir, 'a.txt')), false);
  });

  test('file.changed: the helper\'s own writes, exactly, and another process\'s', async () => {
    const sub = await ed.client({ scope: 'read' });
    try {
      await subscribe(sub, ['file.changed']);
      const name = path.basename(dir);
      // Each wait names the change it expects: a stray event of another kind
      // would time the wait out, never satisfy it.
      await ok(w, 'fs.write', { path: 'src/watched.txt', content: '1' });
      await changed(sub, 'src/watched.txt', 'created', name);
      await ok(w, 'fs.write', { path: 'src/watched.txt', content: '2' });
      await changed(sub, 'src/watched.txt', 'changed', name);
      await ok(w, 'fs.delete', { path: 'src/watched.txt' });
      await changed(sub, 'src/watched.txt', 'deleted', name);

      // Another process.
      writeFileSync(path.join(dir, 'src', 'other.txt'), 'from elsewhere');
      await changed(sub, 'src/other.txt', 'created', name);
      await sleep(400);
      writeFileSync(path.join(dir, 'src', 'other.txt'), 'again');
      await changed(sub, 'src/other.txt', 'changed', name);
      rmSync(path.join(dir, 'src', 'other.txt'));
      await changed(sub, 'src/other.txt', 'deleted', name);
      // A directory made after the watch started is watched too.
      mkdirSync(path.join(dir, 'later'));
      await changed(sub, 'later', 'created', name);
      await sleep(300);
      writeFileSync(path.join(dir, 'later', 'deep.txt'), 'x');
      await changed(sub, 'later/deep.txt', 'created', name);
      // .git is never reported, nor the temporary files.
      writeFileSync(path.join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
      await ok(w, 'fs.write', { path: 'marker.txt', content: 'm' });
      await changed(sub, 'marker.txt', 'created', name);
      await sleep(400);
      const seen = sub.queue.filter((m) => m.type === 'event' && m.data.event === 'file.changed').map((m) => m.data.payload);
      assert.ok(!seen.some((p) => p.path.startsWith('.git') || p.path.includes('.companion-write-')), `unexpected: ${JSON.stringify(seen)}`);
      // The helper's own writes were announced once each (exactly, not also as inotify saw them).
      const mine = seen.filter((p) => p.path === 'src/watched.txt' || p.path === 'marker.txt');
      assert.deepEqual(mine, [], `duplicates: ${JSON.stringify(seen)}`);
    } finally { sub.close(); }
  });

  test('a burst is coalesced and bounded', async () => {
    const sub = await ed.client({ scope: 'read' });
    try {
      await subscribe(sub, ['file.changed']);
      mkdirSync(path.join(dir, 'burst'));
      await changed(sub, 'burst', 'created');
      await sleep(300);
      for (let i = 0; i < 300; i++) writeFileSync(path.join(dir, 'burst', `f${i}.txt`), 'x'.repeat(i));
      await changed(sub, '.', 'changed');
      await sleep(600);
      const evs = sub.queue.filter((m) => m.type === 'event' && m.data.event === 'file.changed');
      assert.ok(evs.length <= 200, `${evs.length} events for 300 files`);
    } finally { sub.close(); }
  });
});
