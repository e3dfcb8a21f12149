// Fixture repositories made with the git CLI, which is also the oracle the
// helper's libgit2 answers are compared with.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './harness.mjs';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Ada Tester', GIT_AUTHOR_EMAIL: 'ada@example.test',
  GIT_COMMITTER_NAME: 'Ada Tester', GIT_COMMITTER_EMAIL: 'ada@example.test',
  GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null',
};

export function git(cwd, ...args) {
  return execFileSync('git', ['-c', 'init.defaultBranch=main', '-c', 'protocol.file.allow=always', ...args],
    { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function write(dir, rel, text) {
  mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  writeFileSync(path.join(dir, rel), text);
}

/* A repo with one commit of a.txt, b.txt, dir/c.txt. */
export function baseRepo() {
  const dir = tempDir('companion-git-');
  git(dir, 'init', '-q');
  write(dir, 'a.txt', 'one\ntwo\nthree\n');
  write(dir, 'b.txt', 'bee\n');
  write(dir, 'dir/c.txt', 'sea\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'first commit');
  return dir;
}

/* `git status --porcelain=v2 --branch -uall` parsed into the helper's shape. */
export function oracleStatus(dir) {
  const out = git(dir, 'status', '--porcelain=v2', '--branch', '-uall');
  const r = { branch: null, head: null, upstream: null, ahead: 0, behind: 0, staged: [], unstaged: [], untracked: [], conflicted: [] };
  for (const line of out.split('\n').filter(Boolean)) {
    if (line.startsWith('# branch.oid ')) { const v = line.slice(13); r.head = v === '(initial)' ? null : v; }
    else if (line.startsWith('# branch.head ')) { const v = line.slice(14); r.branch = v === '(detached)' ? null : v; }
    else if (line.startsWith('# branch.upstream ')) r.upstream = line.slice(18);
    else if (line.startsWith('# branch.ab ')) { const [a, b] = line.slice(12).split(' '); r.ahead = Number(a); r.behind = -Number(b); }
    else if (line.startsWith('1 ') || line.startsWith('2 ')) {
      const parts = line.split(' ');
      const xy = parts[1];
      const p = line.startsWith('2 ') ? line.split('\t')[0].split(' ').slice(9).join(' ') : parts.slice(8).join(' ');
      if (xy[0] !== '.') r.staged.push({ path: p, status: xy[0] });
      if (xy[1] !== '.') r.unstaged.push({ path: p, status: xy[1] });
    } else if (line.startsWith('u ')) r.conflicted.push({ path: line.split(' ').slice(10).join(' ') });
    else if (line.startsWith('? ')) r.untracked.push({ path: line.slice(2) });
  }
  const byPath = (a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  for (const k of ['staged', 'unstaged', 'untracked', 'conflicted']) r[k].sort(byPath);
  return r;
}

export function numstat(dir, ...args) {
  return git(dir, 'diff', '--numstat', ...args).split('\n').filter(Boolean).map((l) => {
    const [a, d, p] = l.split('\t');
    return a === '-' ? { path: p, binary: true } : { path: p, additions: Number(a), deletions: Number(d), binary: false };
  }).sort((x, y) => (x.path < y.path ? -1 : 1));
}

const byPath = (a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
/* The helper's git.status result against oracleStatus(). */
export function assertStatusMatches(result, oracle) {
  assert.equal(result.branch, oracle.branch);
  assert.equal(result.head, oracle.head);
  assert.equal(result.upstream ?? null, oracle.upstream);
  assert.equal(result.ahead, oracle.ahead);
  assert.equal(result.behind, oracle.behind);
  for (const k of ['staged', 'unstaged']) {
    assert.deepEqual(result[k].map(({ path: p, status }) => ({ path: p, status })).sort(byPath), oracle[k], k);
  }
  assert.deepEqual(result.untracked.map(({ path: p }) => ({ path: p })).sort(byPath), oracle.untracked, 'untracked');
  assert.deepEqual(result.conflicted.map(({ path: p }) => ({ path: p })).sort(byPath), oracle.conflicted, 'conflicted');
}

