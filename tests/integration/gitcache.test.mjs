// git.status answered from the last answer and the paths inotify saw change
// (helper/status_cache.c): every answer must still be what `git status`
// says at that moment. No test here waits between a change and the request:
// an answer that predates the caller's own write is the bug to catch.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  writeFileSync, rmSync, renameSync, mkdirSync, chmodSync, symlinkSync, openSync, writeSync,
  closeSync, utimesSync,
} from 'node:fs';
import path from 'node:path';
import { Editor } from './lib/harness.mjs';
import { git, write, baseRepo, oracleStatus, assertStatusMatches } from './lib/gitfix.mjs';

const editors = [];
async function serve(folders) {
  const ed = new Editor();
  editors.push(ed);
  await ed.startServer({ folders, settings: { limits: { commandsPerSecond: 1000 } } });
  const c = await ed.client({ scope: 'read' });
  return { ed, c };
}
after(async () => { for (const e of editors) await e.stop(); });

async function counters(ed) {
  return (await ed.request('server/status')).counters;
}

async function statusNow(c, args) {
  const r = await c.command('git.status', args);
  assert.equal(r.data.success, true, JSON.stringify(r.data));
  return r.data.result;
}

describe('git.status kept between calls', () => {
  test('after each kind of change, at once, the answer is what git status says', async () => {
    const dir = baseRepo();
    write(dir, '.gitignore', '*.log\n');
    write(dir, 'deep/one/two/t.txt', 'tee\n');
    git(dir, 'add', '-A'); git(dir, 'commit', '-qm', 'more');
    const { ed, c } = await serve([dir]);
    assertStatusMatches(await statusNow(c), oracleStatus(dir));
    let held = null;
    const steps = [
      ['modify a tracked file', () => write(dir, 'a.txt', 'changed\n')],
      ['create a file', () => write(dir, 'n.txt', 'new\n')],
      ['files in new nested folders', () => write(dir, 'x/y/z/deep.txt', 'd\n')],
      ['a file in a folder made a moment ago', () => { mkdirSync(path.join(dir, 'fresh')); write(dir, 'fresh/f.txt', 'f\n'); }],
      ['delete a tracked file', () => rmSync(path.join(dir, 'b.txt'))],
      ['delete a tracked folder', () => rmSync(path.join(dir, 'dir'), { recursive: true })],
      ['rename a tracked folder', () => renameSync(path.join(dir, 'deep'), path.join(dir, 'moved'))],
      ['change a file in the renamed folder', () => write(dir, 'moved/one/two/t.txt', 'changed after the move\n')],
      ['a file kept open while written', () => {
        held = openSync(path.join(dir, 'moved/one/two/t.txt'), 'a');
        writeSync(held, 'appended, not closed yet\n');
      }],
      ['mode change', () => chmodSync(path.join(dir, 'a.txt'), 0o755)],
      ['time stamp only', () => utimesSync(path.join(dir, 'n.txt'), new Date(), new Date(Date.now() + 5000))],
      ['a symlink', () => symlinkSync('a.txt', path.join(dir, 'link'))],
      ['a lock file of another tool', () => write(dir, 'yarn.lock', 'lock\n')],
      ['an ignored file', () => write(dir, 'debug.log', 'ignored\n')],
      ['.gitignore changed', () => write(dir, '.gitignore', '*.log\nn.txt\n')],
      ['.git/info/exclude changed', () => write(dir, '.git/info/exclude', 'yarn.lock\n')],
      ['git add', () => git(dir, 'add', 'a.txt', 'x')],
      ['git commit', () => git(dir, 'commit', '-qm', 'third')],
      ['git checkout -b', () => git(dir, 'checkout', '-qb', 'topic')],
      ['a nested repository', () => { git(path.join(dir, 'fresh'), 'init', '-q'); }],
      ['a change undone', () => { write(dir, 'moved/one/two/t.txt', 'tee\n'); }],
      ['a folder replaced by a file', () => { rmSync(path.join(dir, 'x'), { recursive: true }); write(dir, 'x', 'now a file\n'); }],
    ];
    for (const [what, change] of steps) {
      change();
      try {
        assertStatusMatches(await statusNow(c), oracleStatus(dir));
      } catch (e) {
        e.message = `after "${what}": ${e.message}`;
        throw e;
      }
    }
    closeSync(held);
    const n = await counters(ed);
    // The answers above came from the cache, not from full walks alone.
    assert.ok(n.gitStatusPartial >= 5, JSON.stringify(n));
    assert.ok(n.gitStatusFull >= 1, JSON.stringify(n));
    c.close();
  });

  test('nothing changed: answered from the last status, without a walk', async () => {
    const dir = baseRepo();
    write(dir, 'a.txt', 'changed\n');
    const { ed, c } = await serve([dir]);
    const first = await statusNow(c);
    const before = await counters(ed);
    for (let i = 0; i < 5; i++) assert.deepEqual(await statusNow(c), first);
    const now = await counters(ed);
    // The helper's own look for git.changed may be among them.
    assert.ok(now.gitStatusCached - before.gitStatusCached >= 5, JSON.stringify(now));
    assert.equal(now.gitStatusFull, before.gitStatusFull);
    assert.equal(now.gitStatusPartial, before.gitStatusPartial);
    assertStatusMatches(first, oracleStatus(dir));
    // By folder name too, and a folder that is not watched still answers.
    assert.deepEqual(await statusNow(c, { folder: path.basename(dir) }), first);
    c.close();
  });

  test('many callers at once around a change all get the new state', async () => {
    const dir = baseRepo();
    const { c } = await serve([dir]);
    await statusNow(c);
    for (let round = 0; round < 5; round++) {
      write(dir, `r${round}.txt`, 'r\n');
      const asked = Array.from({ length: 10 }, () => c.command('git.status'));
      write(dir, 'a.txt', `round ${round}\n`);
      const late = Array.from({ length: 10 }, () => c.command('git.status'));
      const want = oracleStatus(dir);
      for (const r of await Promise.all(late)) {
        assert.equal(r.data.success, true);
        assertStatusMatches(r.data.result, want);
      }
      for (const r of await Promise.all(asked)) {
        assert.equal(r.data.success, true);
        assert.ok(r.data.result.untracked.some((u) => u.path === `r${round}.txt`), `round ${round}`);
      }
    }
    c.close();
  });

  test('a subfolder of a repository (not watched) answers from a full walk', async () => {
    const dir = baseRepo();
    const sub = path.join(dir, 'dir');
    const { ed, c } = await serve([sub]);
    write(dir, 'dir/c.txt', 'changed\n');
    const before = await counters(ed);
    const r = await statusNow(c);
    assert.deepEqual(r.unstaged.map((e) => e.path), ['c.txt']);
    writeFileSync(path.join(sub, 'c.txt'), 'sea\n');
    assert.deepEqual((await statusNow(c)).unstaged, []);
    const now = await counters(ed);
    assert.equal(now.gitStatusCached, before.gitStatusCached);
    assert.equal(now.gitStatusPartial, before.gitStatusPartial);
    c.close();
  });
});
