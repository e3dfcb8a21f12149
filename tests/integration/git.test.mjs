// git.* over the WebSocket against repositories made with the git CLI, the
// CLI being the oracle for every answer (libgit2 inside the helper).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, symlinkSync, copyFileSync, existsSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Editor, tempDir, HELPER_BIN } from './lib/harness.mjs';
import { git, write, baseRepo, oracleStatus, numstat, assertStatusMatches } from './lib/gitfix.mjs';

const editors = [];
async function serve(folders) {
  const ed = new Editor();
  editors.push(ed);
  await ed.startServer({ folders, settings: { limits: { commandsPerSecond: 1000 } } });
  return ed.client({ scope: 'read' });
}
after(async () => { for (const e of editors) await e.stop(); });

describe('git.status against git status --porcelain=v2', () => {
  test('staged, modified, deleted, untracked, renamed', async () => {
    const dir = baseRepo();
    write(dir, 'new.txt', 'n\n'); git(dir, 'add', 'new.txt');
    write(dir, 'a.txt', 'one\nTWO\nthree\n');
    rmSync(path.join(dir, 'b.txt'));
    git(dir, 'mv', 'dir/c.txt', 'dir/renamed.txt');
    write(dir, 'untracked/deep/u.txt', 'u\n');
    const c = await serve([dir]);
    const r = await c.command('git.status');
    assert.equal(r.data.success, true, JSON.stringify(r.data));
    assert.equal(r.data.result.detached, false);
    assert.equal(r.data.result.unborn, false);
    assert.equal(r.data.result.truncated, false);
    assertStatusMatches(r.data.result, oracleStatus(dir));
    c.close();
  });

  test('detached HEAD', async () => {
    const dir = baseRepo();
    write(dir, 'a.txt', 'changed\n'); git(dir, 'commit', '-qam', 'second');
    git(dir, 'checkout', '-q', 'HEAD~1');
    const c = await serve([dir]);
    const r = (await c.command('git.status')).data.result;
    assert.equal(r.detached, true);
    assertStatusMatches(r, oracleStatus(dir));
    c.close();
  });

  test('unborn branch with a staged file', async () => {
    const dir = tempDir('companion-git-');
    git(dir, 'init', '-q'); write(dir, 'x.txt', 'x\n'); git(dir, 'add', 'x.txt');
    const c = await serve([dir]);
    const r = (await c.command('git.status')).data.result;
    assert.equal(r.unborn, true);
    assert.equal(r.head, null);
    assertStatusMatches(r, oracleStatus(dir));
    c.close();
  });

  test('merge conflict', async () => {
    const dir = baseRepo();
    git(dir, 'checkout', '-qb', 'other'); write(dir, 'a.txt', 'other\n'); git(dir, 'commit', '-qam', 'other');
    git(dir, 'checkout', '-q', 'main'); write(dir, 'a.txt', 'mine\n'); git(dir, 'commit', '-qam', 'mine');
    try { git(dir, 'merge', '-q', 'other'); } catch { /* the conflict is the point */ }
    const c = await serve([dir]);
    const r = (await c.command('git.status')).data.result;
    assert.deepEqual(r.conflicted.map((x) => x.path), ['a.txt']);
    assertStatusMatches(r, oracleStatus(dir));
    c.close();
  });

  test('upstream ahead and behind', async () => {
    const origin = baseRepo();
    const clone = tempDir('companion-clone-');
    git(clone, 'clone', '-q', origin, '.');
    write(clone, 'local.txt', 'l\n'); git(clone, 'add', '-A'); git(clone, 'commit', '-qm', 'local 1');
    write(clone, 'local2.txt', 'l\n'); git(clone, 'add', '-A'); git(clone, 'commit', '-qm', 'local 2');
    write(origin, 'remote.txt', 'r\n'); git(origin, 'add', '-A'); git(origin, 'commit', '-qm', 'remote');
    git(clone, 'fetch', '-q');
    const c = await serve([clone]);
    const r = (await c.command('git.status')).data.result;
    assert.equal(r.upstream, 'origin/main');
    assert.equal(r.ahead, 2);
    assert.equal(r.behind, 1);
    assertStatusMatches(r, oracleStatus(clone));
    c.close();
  });

  test('a submodule and a non-UTF-8 file name give valid answers', async () => {
    const sub = baseRepo();
    const dir = baseRepo();
    git(dir, 'submodule', 'add', '-q', sub, 'mod');
    git(dir, 'commit', '-qm', 'add submodule');
    write(path.join(dir, 'mod'), 'a.txt', 'changed in submodule\n');
    writeFileSync(Buffer.concat([Buffer.from(path.join(dir, 'caf')), Buffer.from([0xe9]), Buffer.from('.txt')]), 'x');
    const c = await serve([dir]);
    const r = await c.command('git.status');
    assert.equal(r.data.success, true, JSON.stringify(r.data));
    const res = r.data.result;
    assert.ok(res.unstaged.some((e) => e.path === 'mod'), JSON.stringify(res.unstaged));
    assert.ok(res.untracked.some((e) => e.path.startsWith('caf') && e.path.includes('\uFFFD')), JSON.stringify(res.untracked));
    c.close();
  });

  test('concurrent git.status calls all get the same answer', async () => {
    const dir = baseRepo();
    write(dir, 'a.txt', 'x\n');
    const c = await serve([dir]);
    const ids = Array.from({ length: 20 }, (_, i) => `s${i}`);
    ids.forEach((id) => c.send({ type: 'command', id, data: { name: 'git.status' } }));
    const replies = await Promise.all(ids.map((id) => c.next((m) => m.id === id)));
    for (const r of replies) assert.deepEqual(r.data.result, replies[0].data.result);
    assertStatusMatches(replies[0].data.result, oracleStatus(dir));
    c.close();
  });

  test('not a repository, unknown folder, multi-root default', async () => {
    const plain = tempDir('companion-plain-');
    const repo = baseRepo();
    const c = await serve([plain, repo]);
    const r = await c.command('git.status');
    assert.equal(r.data.success, true, 'defaults to the first folder that is a repository');
    assert.equal(r.data.result.branch, 'main');
    const np = await c.command('git.status', { folder: path.basename(plain) });
    assert.equal(np.data.error.code, 'NOT_A_REPOSITORY');
    assert.equal((await c.command('git.status', { folder: 'nope' })).data.error.code, 'NOT_FOUND');
    assert.equal((await c.command('git.status', { folder: 7 })).data.error.code, 'INVALID_ARGS');
    c.close();
    const only = await serve([tempDir('companion-plain-')]);
    assert.equal((await only.command('git.status')).data.error.code, 'NOT_A_REPOSITORY');
    only.close();
  });
});

describe('git.log, git.diff, git.branches against the CLI', () => {
  test('git.log: limit, path, ref, newest first', async () => {
    const dir = baseRepo();
    for (let i = 0; i < 5; i++) { write(dir, i % 2 ? 'a.txt' : 'b.txt', `v${i}\n`); git(dir, 'commit', '-qam', `change ${i}`); }
    const c = await serve([dir]);
    const oracle = (...a) => git(dir, 'log', '--format=%H%x00%s%x00%an%x00%ae%x00%at', ...a).split('\n').filter(Boolean)
      .map((l) => { const [id, summary, author, email, time] = l.split('\0'); return { id, summary, author, email, time: Number(time) }; });
    const pick = (cs) => cs.map(({ id, summary, author, email, time }) => ({ id, summary, author, email, time }));
    const all = (await c.command('git.log')).data.result.commits;
    assert.deepEqual(pick(all), oracle('-n', '20'));
    assert.equal(all[0].shortId, all[0].id.slice(0, 7));
    assert.deepEqual(pick((await c.command('git.log', { limit: 2 })).data.result.commits), oracle('-n', '2'));
    assert.deepEqual(pick((await c.command('git.log', { path: 'a.txt' })).data.result.commits), oracle('-n', '20', '--', 'a.txt'));
    assert.deepEqual(pick((await c.command('git.log', { ref: 'HEAD~3' })).data.result.commits), oracle('-n', '20', 'HEAD~3'));
    for (const bad of [0, 101, 'x', 1.5]) assert.equal((await c.command('git.log', { limit: bad })).data.error.code, 'INVALID_ARGS', `limit ${bad}`);
    assert.equal((await c.command('git.log', { ref: 'no-such-ref' })).data.error.code, 'NOT_FOUND');
    c.close();
  });

  test('git.diff: working tree and staged match --numstat; patch capped', async () => {
    const dir = baseRepo();
    write(dir, 'a.txt', 'one\n2\n3\nfour\n');
    write(dir, 'b.txt', 'bee\nsecond\n'); git(dir, 'add', 'b.txt');
    writeFileSync(path.join(dir, 'bin.dat'), Buffer.from([0, 1, 2, 3])); git(dir, 'add', 'bin.dat');
    const c = await serve([dir]);
    const shape = (files) => files.map((f) => (f.binary ? { path: f.path, binary: true } : { path: f.path, additions: f.additions, deletions: f.deletions, binary: false })).sort((x, y) => (x.path < y.path ? -1 : 1));
    const wt = (await c.command('git.diff')).data.result;
    assert.deepEqual(shape(wt.files), numstat(dir));
    assert.match(wt.patch, /^diff --git a\/a.txt b\/a.txt/m);
    const st = (await c.command('git.diff', { staged: true })).data.result;
    assert.deepEqual(shape(st.files), numstat(dir, '--cached'));
    const one = (await c.command('git.diff', { staged: true, path: 'b.txt' })).data.result;
    assert.deepEqual(shape(one.files), numstat(dir, '--cached', '--', 'b.txt'));
    const capped = (await c.command('git.diff', { maxBytes: 40 })).data.result;
    assert.equal(capped.truncated, true);
    assert.ok(Buffer.byteLength(capped.patch) <= 40);
    c.close();
  });

  test('git.branches matches git branch', async () => {
    const origin = baseRepo();
    git(origin, 'branch', 'feature');
    const clone = tempDir('companion-clone-');
    git(clone, 'clone', '-q', origin, '.');
    git(clone, 'branch', 'local-only');
    const c = await serve([clone]);
    const r = (await c.command('git.branches')).data.result;
    assert.equal(r.current, 'main');
    assert.deepEqual(r.local, git(clone, 'branch', '--format=%(refname:short)').split('\n').filter(Boolean).sort());
    assert.deepEqual(r.remote, git(clone, 'branch', '-r', '--format=%(refname:short)').split('\n').filter((b) => b && !b.endsWith('/HEAD') && b !== 'origin').sort());
    c.close();
  });
});

describe('the git module (companion-git.so) is loaded on first use', () => {
  test('it sits beside the helper, and the helper does not link libgit2 itself', () => {
    assert.ok(existsSync(path.join(path.dirname(HELPER_BIN), 'companion-git.so')));
    const maps = execFileSync('ldd', [HELPER_BIN], { encoding: 'utf8' });
    assert.doesNotMatch(maps, /libgit2/);
  });

  test('a helper without the module answers git commands with a clear error and serves the rest', async () => {
    const dir = baseRepo();
    const alone = tempDir('companion-nogit-');
    const bin = path.join(alone, 'companion-helper');
    copyFileSync(HELPER_BIN, bin);
    chmodSync(bin, 0o755);
    const ed = new Editor({ bin });
    editors.push(ed);
    await ed.startServer({ folders: [dir] });
    const c = await ed.client({ scope: 'read' });
    for (const name of ['git.status', 'git.log']) {
      const r = await c.command(name);
      assert.equal(r.data.success, false, JSON.stringify(r.data));
      assert.equal(r.data.error.code, 'PROCESSING_ERROR');
      assert.match(r.data.error.message, /git support is unavailable: companion-git\.so not found/);
    }
    const f = await c.command('fs.read', { path: 'a.txt' });
    assert.equal(f.data.success, true);
    assert.equal(f.data.result.content, 'one\ntwo\nthree\n');
    c.close();
  });
});
