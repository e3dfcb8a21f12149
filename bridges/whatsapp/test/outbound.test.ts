/**
 * Phone-friendly output (issue 19 item 6): numbered parts, `file <path>` and
 * `diff all` / `diff file` as WhatsApp documents. The REAL companion-helper
 * serves a git fixture over real WebSockets; WhatsApp's servers are stood in
 * by InMemoryWhatsAppTransport, which records the documents the bridge sends.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startBridge } from '../src/bridge.js';
import type { Bridge } from '../src/bridge.js';
import type { Config } from '../src/config.js';
import { FILE_USAGE, MAX_DOCUMENT_BYTES, parseFileWord } from '../src/files.js';
import { MemoryReporter } from '../src/log.js';
import { InMemoryWhatsAppTransport } from '../src/memoryTransport.js';
import type { FakeDocument, FakeSent } from '../src/memoryTransport.js';
import { mimeTypeFor, numberParts } from '../src/outbound.js';
import { e164ToJid } from '../src/transport.js';
import { cleanupAll, commit, gitRepo, ServedHelper, sleep, tempDir, writeFile } from './helperProcess.js';

const OWNER = '+15550000001';
const ALICE = '+15550000002';

/** The helper with its config home (the secret) inside the served folder: a private path in the workspace. */
class InRepoConfigHelper extends ServedHelper {
  override get env(): NodeJS.ProcessEnv {
    return { ...process.env, XDG_CONFIG_HOME: path.join(this.repo, '.config'), HOME: this.home };
  }
}

function config(h: ServedHelper, tokenFile: string): Config {
  return {
    workspaces: [{ name: 'default', url: h.url, tokenFile, workspaceId: h.workspaceId }],
    allow: [ALICE],
    groups: [],
    authDir: path.join(tempDir('cw-wa-'), 'auth'),
    json: false,
    relink: false,
    perSenderPerMinute: 100,
    helperSendsPerSecond: 10,
    logLevel: 'debug',
  };
}

interface Rig { bridge: Bridge; wa: InMemoryWhatsAppTransport; reporter: MemoryReporter }

async function rig(h: ServedHelper, scope = 'read,run'): Promise<Rig> {
  const wa = new InMemoryWhatsAppTransport(OWNER);
  const reporter = new MemoryReporter();
  const bridge = await startBridge(config(h, h.tokenFile(scope)), wa, reporter, { reconnectInitialMs: 200, reconnectMaxMs: 1000, tokenPollMs: 100 });
  const deadline = Date.now() + 10000;
  while (!bridge.helpers.every((x) => x.isReady())) {
    if (Date.now() > deadline) throw new Error(`helper not ready: ${JSON.stringify(reporter.logs)}`);
    await sleep(20);
  }
  return { bridge, wa, reporter };
}

const toAlice = (s: FakeSent | FakeDocument): boolean => s.chatId === e164ToJid(ALICE);

/** Sends text as Alice and waits for the next n texts (and the documents sent meanwhile). */
async function ask(r: Rig, text: string, n = 1): Promise<{ texts: string[]; docs: FakeDocument[] }> {
  const t0 = r.wa.sent.filter(toAlice).length;
  const d0 = r.wa.documents.filter(toAlice).length;
  r.wa.inject({ from: ALICE, text });
  // A document or n texts: whichever the word answers with.
  const deadline = Date.now() + 20000;
  while (r.wa.sent.filter(toAlice).length < t0 + n && r.wa.documents.filter(toAlice).length === d0) {
    if (Date.now() > deadline) throw new Error(`no answer to ${text}: ${JSON.stringify(r.wa.sent.map((s) => s.text.slice(0, 100)))}`);
    await sleep(20);
  }
  await sleep(300); // nothing else comes
  return { texts: r.wa.sent.filter(toAlice).slice(t0).map((s) => s.text), docs: r.wa.documents.filter(toAlice).slice(d0) };
}

function gitCli(dir: string, ...args: string[]): Buffer {
  return execFileSync('git', args, { cwd: dir, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_PAGER: 'cat' } });
}

after(() => { cleanupAll(); });

describe('outbound words (unit)', () => {
  test('numberParts: "(i/n)" prefixes, on its own line before a code fence; one part untouched', () => {
    assert.deepEqual(numberParts(['only']), ['only']);
    assert.deepEqual(numberParts(['a', '```sh\nls\n```', 'c']), ['(1/3) a', '(2/3)\n```sh\nls\n```', '(3/3) c']);
  });

  test('mimeTypeFor: a small table, application/octet-stream otherwise', () => {
    assert.equal(mimeTypeFor('README.md'), 'text/markdown');
    assert.equal(mimeTypeFor('docs/Photo.JPG'), 'image/jpeg');
    assert.equal(mimeTypeFor('x.diff'), 'text/x-diff');
    assert.equal(mimeTypeFor('Makefile'), 'application/octet-stream');
    assert.equal(mimeTypeFor('.env'), 'application/octet-stream');
    assert.equal(mimeTypeFor('blob.unknownext'), 'application/octet-stream');
  });

  test('parseFileWord: file <one path>, quoted paths, diff all / diff file; prose and plain diff are not taken', () => {
    assert.deepEqual(parseFileWord('file README.md'), { kind: 'file', path: 'README.md' });
    assert.deepEqual(parseFileWord('File "my notes.txt"'), { kind: 'file', path: 'my notes.txt' });
    assert.deepEqual(parseFileWord('file'), { kind: 'usage', text: FILE_USAGE });
    assert.equal(parseFileWord('file the bug report please'), null);
    assert.deepEqual(parseFileWord('diff all'), { kind: 'diff', path: null });
    assert.deepEqual(parseFileWord('diff file'), { kind: 'diff', path: null });
    assert.deepEqual(parseFileWord('diff file src/a.c'), { kind: 'diff', path: 'src/a.c' });
    assert.equal(parseFileWord('diff'), null);
    assert.equal(parseFileWord('diff src/a.c'), null);
    assert.equal(parseFileWord('status'), null);
  });
});

describe('outbound words through the real helper (WhatsApp stood in by InMemoryWhatsAppTransport)', () => {
  let repo: string;
  let h: ServedHelper;
  let r: Rig;
  const binary = Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0xc3, 0x28]), randomBytes(4096)]);

  before(async () => {
    repo = gitRepo('main');
    writeFile(repo, 'README.md', '# Fixture\n\nHéllo, phone — ünïcode and `code`.\n');
    writeFile(repo, 'src/main.c', 'int main(void) { return 0; }\n');
    execFileSync('git', ['add', '.'], { cwd: repo });
    execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'fixture'], { cwd: repo });
    // 60 commits with long summaries: "log 60" needs several 4096-character parts.
    for (let i = 0; i < 60; i++) commit(repo, `change ${i}: ${'a rather long commit summary that goes on and on '.repeat(3)}`);
    // Unstaged changes for the diff.
    writeFile(repo, 'README.md', '# Fixture\n\nHéllo, phone — changed.\nA new line.\n');
    writeFile(repo, 'src/main.c', 'int main(void) { return 1; }\n');
    writeFile(repo, 'a.txt', 'a\nb\n');
    writeFileSync(path.join(repo, 'blob.bin'), binary);
    writeFileSync(path.join(repo, 'big.txt'), Buffer.alloc(MAX_DOCUMENT_BYTES + 1024 * 1024, 'x'));
    const outside = path.join(tempDir('cw-outside-'), 'secret.txt');
    writeFileSync(outside, 'outside secret\n');
    symlinkSync(outside, path.join(repo, 'leak.txt'));
    h = new InRepoConfigHelper(repo);
    await h.start();
    r = await rig(h);
  });

  after(async () => {
    await r.bridge.stop();
    await h.stop();
  });

  test('a long answer: its parts are numbered (1/n) ... (n/n), in order', async () => {
    const t0 = r.wa.sent.filter(toAlice).length;
    r.wa.inject({ from: ALICE, text: 'log 60' });
    await r.wa.waitSent((s) => s.filter(toAlice).length > t0 && /^\(1\/(\d+)\) /.test(s.filter(toAlice)[t0]!.text), 20000, 'first part');
    const n = Number(/^\(1\/(\d+)\)/.exec(r.wa.sent.filter(toAlice)[t0]!.text)![1]);
    assert.ok(n > 1, `several parts: ${n}`);
    const texts = (await r.wa.waitSent((s) => s.filter(toAlice).length >= t0 + n, 20000, 'all parts')).filter(toAlice).slice(t0, t0 + n).map((s) => s.text);
    texts.forEach((t, i) => { assert.ok(t.startsWith(`(${i + 1}/${n}) `), `part ${i + 1}: ${t.slice(0, 20)}`); });
    const body = texts.map((t) => t.replace(/^\(\d+\/\d+\) /, '')).join('\n');
    for (let i = 0; i < 60; i++) assert.ok(body.includes(`change ${i}:`), `change ${i} in the answer`);
    // A short answer is not numbered.
    const { texts: one } = await ask(r, 'log 1');
    assert.equal(one.length, 1);
    assert.doesNotMatch(one[0]!, /^\(1\/1\)/);
  });

  test('file README.md: a document with the right bytes, name and type', async () => {
    const { texts, docs } = await ask(r, 'file README.md');
    assert.deepEqual(texts, []);
    assert.equal(docs.length, 1);
    assert.equal(docs[0]!.fileName, 'README.md');
    assert.equal(docs[0]!.mimetype, 'text/markdown');
    assert.deepEqual(docs[0]!.data, readFileSync(path.join(repo, 'README.md')));
    const nested = await ask(r, 'file src/main.c');
    assert.equal(nested.docs[0]!.fileName, 'main.c');
    assert.deepEqual(nested.docs[0]!.data, readFileSync(path.join(repo, 'src/main.c')));
  });

  test('a binary file comes byte for byte (the helper answers base64)', async () => {
    const { docs } = await ask(r, 'file blob.bin');
    assert.equal(docs.length, 1);
    assert.equal(docs[0]!.fileName, 'blob.bin');
    assert.equal(docs[0]!.mimetype, 'application/octet-stream');
    assert.deepEqual(docs[0]!.data, binary);
  });

  test('outside the folder, a link out, a private path, a missing file, a folder: plain words and no document', async () => {
    // The helper's secret lies inside the served folder here: private all the same.
    assert.ok(existsSync(path.join(repo, '.config/companion/secret')), 'the secret is in the workspace');
    const cases: [string, RegExp][] = [
      ['file ../secret', /^Cannot send "\.\.\/secret": not allowed/],
      ['file /etc/passwd', /^Cannot send "\/etc\/passwd": not allowed/],
      ['file leak.txt', /^Cannot send "leak\.txt": not allowed \(.*outside/],
      ['file .config/companion/secret', /^Cannot send "\.config\/companion\/secret": not allowed/],
      ['file nope.txt', /^Cannot send "nope\.txt": not found in the workspace\.$/],
      ['file src', /^Cannot send "src": /],
      ['file', /^Usage: file <path>/],
    ];
    for (const [text, want] of cases) {
      const { texts, docs } = await ask(r, text);
      assert.equal(docs.length, 0, `${text}: no document`);
      assert.equal(texts.length, 1, `${text}: one answer: ${JSON.stringify(texts)}`);
      assert.match(texts[0]!, want, text);
      assert.doesNotMatch(texts[0]!, /outside secret/);
    }
  });

  test('a file over the cap: plain words with its size, no document', async () => {
    const { texts, docs } = await ask(r, 'file big.txt');
    assert.equal(docs.length, 0);
    assert.match(texts[0]!, /^Cannot send "big\.txt": it is 5\.0 MiB, more than the 4\.0 MiB a document may be\.$/);
  });

  test('diff all: the whole patch as workspace.diff, equal to `git diff` from the git CLI; plain diff stays text', async () => {
    const oracle = gitCli(repo, 'diff');
    assert.ok(oracle.length > 0);
    const { texts, docs } = await ask(r, 'diff all');
    assert.deepEqual(texts, []);
    assert.equal(docs.length, 1);
    assert.equal(docs[0]!.fileName, 'workspace.diff');
    assert.equal(docs[0]!.mimetype, 'text/x-diff');
    assert.equal(docs[0]!.data.toString('utf8'), oracle.toString('utf8'));
    assert.match(docs[0]!.caption ?? '', /^3 files changed, \+\d+ −\d+$/);
    // diff file <path>: that file's patch.
    const one = await ask(r, 'diff file src/main.c');
    assert.equal(one.docs[0]!.fileName, 'main.c.diff');
    assert.equal(one.docs[0]!.data.toString('utf8'), gitCli(repo, 'diff', '--', 'src/main.c').toString('utf8'));
    // Plain diff keeps its text answer.
    const plain = await ask(r, 'diff');
    assert.equal(plain.docs.length, 0);
    assert.ok(plain.texts.length >= 1);
  });

  test('without the read scope: plain words, no document', async () => {
    const r2 = await rig(h, 'run');
    try {
      const before = r2.wa.documents.length;
      const { texts, docs } = await ask(r2, 'file README.md');
      assert.equal(docs.length, 0);
      assert.equal(r2.wa.documents.length, before);
      assert.match(texts[0]!, /^Cannot send "README\.md": not allowed/);
      const d = await ask(r2, 'diff all');
      assert.equal(d.docs.length, 0);
      assert.match(d.texts[0]!, /^Cannot send the diff: not allowed/);
    } finally {
      await r2.bridge.stop();
    }
  });
});
