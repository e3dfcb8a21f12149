// Security round 2 (issue 13): each attack tried through the real binary, as
// an attacker holding a `read` token (or less) would. Every test here failed
// against the helper before its fix; the closing note of the issue says which.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  writeFileSync, mkdirSync, symlinkSync, linkSync, rmSync, chmodSync, readFileSync, existsSync,
  realpathSync, statSync,
} from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  Editor, Served, connect, configHome, tempDir, sleep, waitFor, HELPER_BIN, SLOW,
} from './lib/harness.mjs';

const workspaceKey = (secret, workspaceId) =>
  createHmac('sha256', secret).update(`companion-workspace-key/v1:${workspaceId}`).digest('hex');

function git(dir, ...args) {
  return execFileSync('git', ['-C', dir, ...args], {
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' },
  });
}

async function served(home, cwd, args = []) {
  const srv = new Served(['--port', '0', ...args], { env: home.env, cwd });
  try {
    return { srv, ...(await srv.banner()) };
  } catch (e) {
    await srv.stop().catch(() => {});
    throw e;
  }
}

async function paired(url, token, workspaceId) {
  const c = await connect(url);
  const r = await c.auth(token, workspaceId);
  assert.equal(r.data.success, true, JSON.stringify(r));
  return c;
}

describe('finding 1: a read token never reaches the helper\'s own files', () => {
  // `serve` run from $HOME: the served folder holds ~/.config/companion.
  let home, srv, url, workspaceId, token, c;
  before(async () => {
    home = configHome();
    const wa = path.join(home.env.XDG_CONFIG_HOME, 'companion', 'whatsapp-auth');
    mkdirSync(wa, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(wa, 'creds.json'), '{"WHATSAPP-ACCOUNT":1}');
    // The WhatsApp bridge's API token (its default state folder is this one).
    writeFileSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'api-token'), 'BRIDGE-API-TOKEN-XYZ', { mode: 0o600 });
    writeFileSync(path.join(home.dir, 'notes.txt'), 'mine\n');
    ({ srv, url, workspaceId, token } = await served(home, home.dir));
    c = await paired(url, token, workspaceId);
  });
  after(async () => { c?.close(); await srv?.stop(); home?.cleanup(); });

  test('fs.read of the secret, the bridge session and the token file is FORBIDDEN', async () => {
    const secret = readFileSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'secret'), 'utf8');
    for (const p of ['config/companion/secret', 'config/companion/whatsapp-auth/creds.json',
      `state/companion/serve-${workspaceId}.token`]) {
      const r = await c.command('fs.read', { path: p });
      assert.equal(r.data.success, false, `${p} was served: ${JSON.stringify(r.data).slice(0, 200)}`);
      assert.equal(r.data.error.code, 'FORBIDDEN', p);
      assert.ok(!JSON.stringify(r).includes(secret.trim()));
    }
    // The rest of the folder is served as before.
    assert.equal((await c.command('fs.read', { path: 'notes.txt' })).data.result.content, 'mine\n');
  });

  test('fs.list leaves them out and refuses to list inside them', async () => {
    const cfg = (await c.command('fs.list', { path: 'config' })).data.result;
    assert.ok(!cfg.entries.some((e) => e.name === 'companion'), JSON.stringify(cfg.entries));
    const r = await c.command('fs.list', { path: 'config/companion' });
    assert.equal(r.data.error.code, 'FORBIDDEN');
  });

  test('whatever the path: a symlink or a hard link to them is refused the same way', async () => {
    symlinkSync('config/companion', path.join(home.dir, 'innocent-dir'));
    symlinkSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'secret'), path.join(home.dir, 'innocent-abs'));
    linkSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'secret'), path.join(home.dir, 'hardlink'));
    linkSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'api-token'), path.join(home.dir, 'hardlink-api'));
    for (const p of ['innocent-dir/secret', 'innocent-abs', 'hardlink', 'hardlink-api', 'innocent-dir']) {
      const r = await c.command(p === 'innocent-dir' ? 'fs.list' : 'fs.read', { path: p });
      assert.equal(r.data.error?.code, 'FORBIDDEN', `${p}: ${JSON.stringify(r.data).slice(0, 200)}`);
    }
    // The hard link is not even listed.
    const top = (await c.command('fs.list')).data.result.entries.map((e) => e.name);
    assert.ok(!top.includes('hardlink'), top.join(','));
  });

  test('serve warns at start that the folder holds Companion\'s private files', () => {
    assert.match(srv.stderr, /contains Companion's private .*config\/companion/);
  });

  test('the token serve made is signed with this workspace\'s key, not the stored secret', () => {
    const secret = readFileSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'secret'), 'utf8').trim();
    assert.throws(() => jwt.verify(token, secret, { algorithms: ['HS256'] }));
    assert.equal(jwt.verify(token, workspaceKey(secret, workspaceId), { algorithms: ['HS256'] }).workspaceId, workspaceId);
  });
});

describe('finding 1 in editor mode: the extension\'s storage and key files are private', () => {
  let ed, dir, c;
  before(async () => {
    const home = configHome();
    dir = tempDir('companion-edpriv-');
    mkdirSync(path.join(dir, 'storage'));
    writeFileSync(path.join(dir, 'storage', 'state.json'), 'EXTENSION-STATE');
    writeFileSync(path.join(dir, 'key.pem'), 'PUBLIC KEY FILE');
    ed = new Editor({ env: home.env });
    ed.home = home;
    await ed.initialize({ folders: [dir], settings: { server: { host: '127.0.0.1', port: 0 } } });
    // privatePaths comes with initialize; startServer would initialize again.
    ed.url = (await ed.request('server/start', {})).url;
    c = await ed.client({ scope: 'read' });
  });
  after(async () => { c?.close(); await ed?.stop(); ed?.home.cleanup(); });

  test('privatePaths from initialize are refused', async () => {
    const ed2 = new Editor();
    await ed2.request('initialize', {
      processId: process.pid, workspaceId: 'ws-priv', settings: { auth: { secret: 'k'.repeat(64) }, server: { host: '127.0.0.1', port: 0 } },
      workspaceFolders: [{ uri: `file://${dir}`, name: 'd' }], privatePaths: [path.join(dir, 'storage')],
    });
    ed2.secret = 'k'.repeat(64);
    ed2.workspaceId = 'ws-priv';
    ed2.url = (await ed2.request('server/start', {})).url;
    const c2 = await ed2.client({ scope: 'read' });
    try {
      assert.equal((await c2.command('fs.read', { path: 'storage/state.json' })).data.error.code, 'FORBIDDEN');
      assert.equal((await c2.command('fs.list', { path: 'storage' })).data.error.code, 'FORBIDDEN');
      // Without privatePaths (the other helper) the same file is served.
      assert.equal((await c.command('fs.read', { path: 'storage/state.json' })).data.result.content, 'EXTENSION-STATE');
    } finally {
      c2.close();
      await ed2.stop();
    }
  });

  test('a sub-32-byte auth.secret is refused (-32602 naming auth.secret)', async () => {
    const ed3 = new Editor();
    try {
      await assert.rejects(ed3.initialize({ secret: 'short-secret' }), (e) => e.code === -32602 && /auth\.secret/.test(e.message));
    } finally {
      await ed3.stop();
    }
  });
});

describe('finding 3: deleting the secret revokes every token of a running serve', () => {
  test('sessions close 4001, tokens are refused, a new secret brings new tokens', async () => {
    const home = configHome();
    const dir = tempDir('companion-rot-');
    const { srv, url, workspaceId, token } = await served(home, dir);
    try {
      const c = await paired(url, token, workspaceId);
      rmSync(path.join(home.env.XDG_CONFIG_HOME, 'companion', 'secret'));
      const closed = await c.waitClose(5000 * SLOW);
      assert.equal(closed.code, 4001);
      const c2 = await connect(url);
      assert.equal((await c2.auth(token, workspaceId)).data.success, false);
      // `token` makes a new secret; the running serve picks it up.
      const r = spawnSync(HELPER_BIN, ['token', '--workspace', dir], { env: { ...process.env, ...home.env }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const fresh = r.stdout.trim();
      const c3 = await waitFor(async () => {
        const x = await connect(url);
        const res = await x.auth(fresh, workspaceId);
        if (res.data.success) return x;
        x.close();
        return null;
      }, 'the new secret to be read');
      assert.equal((await c3.command('workspace.info')).data.success, true);
      // The old token stays dead.
      const c4 = await connect(url);
      assert.equal((await c4.auth(token, workspaceId)).data.success, false);
      c3.close();
      assert.match(srv.stderr, /the secret is gone|secret file .* does not exist/);
    } finally {
      await srv.stop();
      home.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a config file holding auth.secret that others can read is refused', () => {
    const home = configHome();
    try {
      const cfg = path.join(home.dir, 'c.json');
      writeFileSync(cfg, JSON.stringify({ auth: { secret: 'x'.repeat(64) } }));
      chmodSync(cfg, 0o644);
      const r = spawnSync(HELPER_BIN, ['token', '--config', cfg], { env: { ...process.env, ...home.env }, encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /chmod 600/);
      assert.ok(!r.stderr.includes('x'.repeat(64)));
    } finally {
      home.cleanup();
    }
  });

  test('serve never prints a token to a pipe (the journal): it writes a 0600 file', async () => {
    const home = configHome();
    const dir = tempDir('companion-journal-');
    const { srv, token, tokenFile } = await served(home, dir);
    try {
      assert.ok(tokenFile, srv.stdout);
      assert.ok(!srv.stdout.includes(token), 'token on stdout');
      assert.ok(!srv.stderr.includes(token), 'token on stderr');
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    } finally {
      await srv.stop();
      home.cleanup();
    }
  });
});

describe('finding 4: git never follows a .git file out of the folder', () => {
  let ed, c, root;
  before(async () => {
    root = realpathSync(tempDir('companion-gitdir-'));
    const other = path.join(root, 'other');
    mkdirSync(other);
    git(other, 'init', '-q');
    writeFileSync(path.join(other, 'private.txt'), 'OTHER-REPO-CONTENT\n');
    git(other, 'add', '.');
    git(other, 'commit', '-qm', 'other repository secret commit');
    // The attack: a folder whose .git file points at another repository.
    const evil = path.join(root, 'evil');
    mkdirSync(evil);
    writeFileSync(path.join(evil, '.git'), `gitdir: ${path.join(other, '.git')}\n`);
    // Alternates outside.
    const alt = path.join(root, 'alt');
    mkdirSync(alt);
    git(alt, 'init', '-q');
    writeFileSync(path.join(alt, '.git', 'objects', 'info', 'alternates'), `${path.join(other, '.git', 'objects')}\n`);
    // Legitimate: a linked worktree made by git itself.
    git(other, 'worktree', 'add', '-q', path.join(root, 'wt'));
    writeFileSync(path.join(root, 'wt', 'new.txt'), 'x\n');
    ed = new Editor();
    await ed.startServer({ folders: [evil, alt, path.join(root, 'wt')], settings: { limits: { commandsPerSecond: 1000 } } });
    c = await ed.client({ scope: 'read' });
  });
  after(async () => { c?.close(); await ed?.stop(); rmSync(root, { recursive: true, force: true }); });

  for (const name of ['git.status', 'git.log', 'git.diff', 'git.branches']) {
    test(`${name} of a folder whose .git file points elsewhere is FORBIDDEN`, async () => {
      const r = await c.command(name, { folder: 'evil' });
      assert.equal(r.data.success, false, JSON.stringify(r.data).slice(0, 300));
      assert.equal(r.data.error.code, 'FORBIDDEN');
      assert.ok(!JSON.stringify(r).includes('secret commit'));
    });
  }

  test('alternates that lead out of the folder are refused', async () => {
    const r = await c.command('git.log', { folder: 'alt' });
    assert.equal(r.data.error?.code, 'FORBIDDEN', JSON.stringify(r.data).slice(0, 300));
  });

  test('a linked worktree git made is still served, as `git status` sees it', async () => {
    const r = await c.command('git.status', { folder: 'wt' });
    assert.equal(r.data.success, true, JSON.stringify(r.data));
    const cli = git(path.join(root, 'wt'), 'status', '--porcelain');
    assert.match(cli, /\?\? new\.txt/);
    assert.deepEqual(r.data.result.untracked.map((e) => e.path ?? e), ['new.txt']);
  });
});

describe('findings 6-10 on the wire', () => {
  let ed, dir, outside, seen;
  before(async () => {
    dir = realpathSync(tempDir('companion-wire-'));
    outside = realpathSync(tempDir('companion-wire-out-'));
    writeFileSync(path.join(outside, 'exists.txt'), 'x');
    // Not valid UTF-8 (0xff) with NULs: comes back as base64 (4/3 larger).
    const bin = Buffer.alloc(8 * 1024 * 1024, 0xff);
    writeFileSync(path.join(dir, 'big.bin'), bin);
    // Control characters: valid UTF-8, but each is six bytes of JSON.
    writeFileSync(path.join(dir, 'ctl.txt'), Buffer.alloc(2 * 1024 * 1024, 1));
    symlinkSync(path.join(outside, 'exists.txt'), path.join(dir, 'out-exists'));
    symlinkSync(path.join(outside, 'missing.txt'), path.join(dir, 'out-missing'));
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', 'a.c'), 'int a;\n');
    seen = [];
    ed = new Editor();
    ed.conn.onRequest('editor/open', (p) => { seen.push(p); return {}; });
    ed.conn.onRequest('editor/executeCommand', (p) => { seen.push(p); return 1; });
    ed.conn.onRequest('editor/diagnostics', () => ({
      diagnostics: [
        { path: `${dir}/../${path.basename(outside)}/exists.txt`, line: 1, severity: 'error', message: 'outside via ..' },
        { path: `${dir}/src/../src/./a.c`, line: 2, severity: 'error', message: 'inside via ..' },
      ],
    }));
    await ed.startServer({ folders: [dir], settings: { editorCommands: ['ok.command'], limits: { commandsPerSecond: 1000 } } });
  });
  after(async () => { await ed.stop(); });

  test('6: fs.read up to 8 MiB is delivered (cut to what the queue holds, truncated: true)', async () => {
    const c = await ed.client({ scope: 'read' });
    const r = await c.command('fs.read', { path: 'big.bin', maxBytes: 8 * 1024 * 1024 });
    assert.equal(r.data.success, true);
    assert.equal(r.data.result.encoding, 'base64');
    assert.equal(r.data.result.truncated, true);
    assert.ok(Buffer.from(r.data.result.content, 'base64').length > 5 * 1024 * 1024);
    const t = await c.command('fs.read', { path: 'ctl.txt', maxBytes: 8 * 1024 * 1024 });
    assert.equal(t.data.success, true);
    assert.equal(t.data.result.truncated, true);
    assert.equal(c.closeInfo, undefined);
    assert.equal((await c.request({ type: 'ping', id: 'alive' })).type, 'pong');
    c.close();
  });

  test('6: with a small limits.maxQueuedBytes the answer still fits', async () => {
    const ed2 = new Editor();
    await ed2.startServer({ folders: [dir], settings: { limits: { maxQueuedBytes: 65536 } } });
    const c = await ed2.client({ scope: 'read' });
    try {
      const r = await c.command('fs.read', { path: 'ctl.txt', maxBytes: 1024 * 1024 });
      assert.equal(r.data.success, true);
      assert.ok(JSON.stringify(r).length <= 65536);
      assert.equal(r.data.result.truncated, true);
      assert.equal(c.closeInfo, undefined);
    } finally {
      c.close();
      await ed2.stop();
    }
  });

  test('7: exp near 9.2e15 is refused, not overflowed', async () => {
    const c = await connect(ed.url);
    const t = jwt.sign({ sub: 'x', workspaceId: ed.workspaceId, exp: 9_223_372_036_854_775 }, ed.secret, { algorithm: 'HS256', noTimestamp: true });
    const r = await c.auth(t, ed.workspaceId);
    assert.equal(r.data.success, false);
    assert.equal(r.data.error.code, 'AUTH_INVALID');
  });

  test('8: an embedded NUL makes a message invalid, whatever string holds it', async () => {
    const c = await ed.client({ scope: 'read editor' });
    const raw = (s) => c.send(s);
    raw('{"type":"ping\\u0000x","id":"n1"}');
    assert.equal((await c.next((m) => m.id === 'n1' || m.type === 'error')).data.code, 'INVALID_MESSAGE');
    raw('{"type":"command","id":"n2","data":{"name":"fs.read\\u0000x","args":{"path":"src/a.c"}}}');
    const r2 = await c.next((m) => m.type === 'error' || m.id === 'n2');
    assert.equal(r2.type, 'error');
    assert.equal(r2.data.code, 'INVALID_MESSAGE');
    raw('{"type":"command","id":"n3","data":{"name":"editor.command","args":{"command":"ok.command\\u0000rm -rf"}}}');
    const r3 = await c.next((m) => m.type === 'error' || m.id === 'n3');
    assert.equal(r3.data.code ?? r3.data.error.code, 'INVALID_MESSAGE');
    assert.ok(!seen.some((p) => JSON.stringify(p).includes('rm -rf')), 'forwarded to the editor');
    // An escaped backslash before u0000 is text, not a NUL.
    raw('{"type":"command","id":"n4","data":{"name":"editor.message","args":{"text":"a\\\\u0000b"}}}');
    assert.notEqual((await c.next((m) => m.id === 'n4')).type, 'error');
    c.close();
  });

  test('9: editor.open refuses exactly what fs.read refuses, with the same codes', async () => {
    const c = await ed.client({ scope: 'read editor' });
    for (const p of ['out-exists', 'out-missing', 'fifo', '../x', '/etc/passwd', 'src/../../x', 'nope.c', 'src']) {
      const o = await c.command('editor.open', { path: p });
      const f = await c.command('fs.read', { path: p });
      assert.equal(o.data.success, false, `editor.open ${p} accepted`);
      assert.equal(o.data.error.code, f.data.error.code, `${p}: editor.open ${o.data.error.code}, fs.read ${f.data.error.code}`);
      assert.ok(!o.data.error.message.includes(outside), o.data.error.message);
    }
    // Existing or not, a link that leaves gives the same answer.
    const a = await c.command('editor.open', { path: 'out-exists' });
    const b = await c.command('editor.open', { path: 'out-missing' });
    assert.equal(a.data.error.code, b.data.error.code);
    assert.equal(seen.filter((p) => p.uri).length, 0);
    c.close();
  });

  test('9: diagnostics paths are normalised: `..` never leads out', async () => {
    const c = await ed.client({ scope: 'read' });
    const d = (await c.command('editor.diagnostics')).data.result.diagnostics;
    assert.deepEqual(d.map((x) => x.path), ['src/a.c']);
    c.close();
  });

  test('10: ?token=...&workspaceId=bad is refused, whatever the arguments\' lengths', async () => {
    const good = ed.token({ sub: 'q' });
    for (const q of [
      `?token=${good}&workspaceId=bad`,
      `?pad=${'p'.repeat(300)}&token=${good}&workspaceId=bad`,
      `?token=${good}&pad=${'p'.repeat(2000)}&workspaceId=bad`,
      `?token=${good}&token=${good}&workspaceId=${ed.workspaceId}`,
    ]) {
      const c = await connect(`${ed.url}${q}`);
      const r = await c.next((m) => m.type === 'auth_response');
      assert.equal(r.data.success, false, q.slice(0, 80));
      assert.equal((await c.waitClose()).code, 4001);
    }
    const ok = await connect(`${ed.url}?x=1&token=${good}&workspaceId=${ed.workspaceId}`);
    assert.equal((await ok.next((m) => m.type === 'auth_response')).data.success, true);
    ok.close();
  });
});

describe('finding 11: tasks inherit no file descriptor; task output to other users', () => {
  test('a task sees only stdin, stdout and stderr, even if the helper inherited more', async () => {
    const dir = tempDir('companion-fds-');
    const ed = new Editor({ inheritFd: true });
    try {
      await ed.startServer({
        folders: [dir],
        // Builtins only (no pipe, no child): the shell's own descriptors.
        settings: { tasks: { fds: { command: 'sh', args: ['-c', 'for f in 3 4 5 6 7 8 9; do [ -e /proc/$$/fd/$f ] && echo "open $f"; done; echo done'] } } },
      });
      const c = await ed.client({ scope: 'read run' });
      c.send({ type: 'command', id: 't', data: { name: 'task.run', args: { name: 'fds' } } });
      let out = '';
      for (;;) {
        const m = await c.next((x) => x.id === 't');
        if (m.type === 'stream_chunk') out += m.data.text;
        if (m.type === 'stream_end' || m.type === 'command_response') break;
      }
      assert.equal(out.trim(), 'done', `the task had more than stdin, stdout and stderr: ${out}`);
      c.close();
    } finally {
      await ed.stop();
    }
  });

  test('events.taskOutput "own": another user\'s task.finished comes without its output', async () => {
    const dir = tempDir('companion-own-');
    const ed = new Editor();
    try {
      await ed.startServer({
        folders: [dir],
        settings: { events: { taskOutput: 'own' }, tasks: { say: { command: 'echo', args: ['PRIVATE-OUTPUT'] } } },
      });
      const mine = await ed.client({ sub: 'alice', scope: 'read run' });
      const other = await ed.client({ sub: 'bob', scope: 'read' });
      for (const s of [mine, other]) await s.request({ type: 'subscribe', id: 's', data: { events: ['task.finished'] } });
      mine.send({ type: 'command', id: 't', data: { name: 'task.run', args: { name: 'say' } } });
      const a = await mine.next((m) => m.type === 'event' && m.data.event === 'task.finished');
      const b = await other.next((m) => m.type === 'event' && m.data.event === 'task.finished');
      assert.match(a.data.payload.tail, /PRIVATE-OUTPUT/);
      assert.equal(b.data.payload.tail, undefined);
      assert.equal(b.data.payload.name, 'say');
      mine.close();
      other.close();
    } finally {
      await ed.stop();
    }
  });
});
