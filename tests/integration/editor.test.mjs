// Editor actions: editor.* commands become editor/* requests that the
// extension answers; vscode-jsonrpc plays the extension here.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { Editor, Served, configHome, connect, tempDir } from './lib/harness.mjs';

describe('editor actions', () => {
  let ed; let dir; const seen = [];
  let diagnostics = [];
  before(async () => {
    dir = tempDir();
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', 'a b.c'), 'int x;\n');
    symlinkSync('/etc/passwd', path.join(dir, 'passwd-link'));
    ed = new Editor();
    ed.conn.onRequest('editor/open', (p) => { seen.push(['open', p]); return {}; });
    ed.conn.onRequest('editor/showMessage', (p) => { seen.push(['message', p]); return {}; });
    ed.conn.onRequest('editor/diagnostics', (p) => { seen.push(['diagnostics', p]); return { diagnostics }; });
    ed.conn.onRequest('editor/executeCommand', (p) => {
      seen.push(['command', p]);
      if (p.command === 'fails') throw new Error('boom');
      return 42;
    });
    await ed.startServer({ folders: [dir], settings: { editorCommands: ['workbench.action.files.saveAll', 'fails'] } });
  });
  after(async () => { await ed.stop(); });

  test('editor.open sends the absolute path, a file URI and the line', async () => {
    const c = await ed.client({ scope: 'read editor' });
    const r = await c.command('editor.open', { path: 'src/a b.c', line: 3 });
    assert.deepEqual(r.data, { success: true, result: { opened: true } });
    const [, p] = seen.filter((x) => x[0] === 'open').pop();
    assert.equal(p.path, path.join(dir, 'src', 'a b.c'));
    assert.equal(p.uri, `file://${path.join(dir, 'src', 'a%20b.c')}`);
    assert.equal(p.line, 3);
    c.close();
  });

  test('editor.open refuses escapes without revealing the outside', async () => {
    const c = await ed.client({ scope: 'editor' });
    for (const [p, code] of [['../x', 'FORBIDDEN'], ['/etc/passwd', 'FORBIDDEN'], ['src/../../x', 'FORBIDDEN'],
      ['passwd-link', 'FORBIDDEN'], ['nope.c', 'NOT_FOUND'], ['', 'INVALID_ARGS']]) {
      const r = await c.command('editor.open', { path: p });
      assert.equal(r.data.error.code, code, `${p}: ${JSON.stringify(r.data)}`);
      assert.ok(!r.data.error.message.includes('/etc'), r.data.error.message);
    }
    assert.equal((await c.command('editor.open', { path: 'src/a b.c', line: 0 })).data.error.code, 'INVALID_ARGS');
    c.close();
  });

  test('editor.message with severity; bad severity refused', async () => {
    const c = await ed.client({ scope: 'editor' });
    const r = await c.command('editor.message', { text: 'hi from the phone', severity: 'warning' });
    assert.deepEqual(r.data.result, { shown: true });
    assert.deepEqual(seen.filter((x) => x[0] === 'message').pop()[1], { text: 'hi from the phone', severity: 'warning' });
    assert.equal((await c.command('editor.message', { text: 'x', severity: 'loud' })).data.error.code, 'INVALID_ARGS');
    assert.equal((await c.command('editor.message', {})).data.error.code, 'INVALID_ARGS');
    c.close();
  });

  test('editor.diagnostics keeps workspace files only, with relative paths', async () => {
    diagnostics = [
      { path: path.join(dir, 'src', 'a b.c'), line: 1, severity: 'error', message: 'bad', source: 'cc' },
      { path: '/usr/include/stdio.h', line: 9, severity: 'warning', message: 'outside', source: 'cc' },
      { path: `file://${path.join(dir, 'src', 'a%20b.c')}`, line: 2, severity: 'info', message: 'uri form', source: 'x' },
    ];
    const c = await ed.client({ scope: 'read' });
    const r = await c.command('editor.diagnostics');
    const d = r.data.result.diagnostics;
    assert.equal(d.length, 2);
    assert.equal(d[0].path, 'src/a b.c');
    assert.equal(d[0].message, 'bad');
    assert.equal(d[1].message, 'uri form');
    assert.ok(!JSON.stringify(r).includes('/usr/include'));
    c.close();
  });

  test('editor.command runs only listed ids; editor errors are reported', async () => {
    const c = await ed.client({ scope: 'editor' });
    const ok = await c.command('editor.command', { command: 'workbench.action.files.saveAll' });
    assert.deepEqual(ok.data.result, { result: 42 });
    const no = await c.command('editor.command', { command: 'workbench.action.terminal.new' });
    assert.equal(no.data.error.code, 'FORBIDDEN');
    const fails = await c.command('editor.command', { command: 'fails' });
    assert.equal(fails.data.error.code, 'PROCESSING_ERROR');
    c.close();
  });

  test('scopes: editor.open needs editor; diagnostics needs read', async () => {
    const ro = await ed.client({ scope: 'read' });
    assert.equal((await ro.command('editor.open', { path: 'src/a b.c' })).data.error.code, 'FORBIDDEN');
    ro.close();
    const eo = await ed.client({ scope: 'editor' });
    assert.equal((await eo.command('editor.diagnostics')).data.error.code, 'FORBIDDEN');
    eo.close();
  });
});

describe('editor actions without an answer', () => {
  test('an editor that never answers gives EDITOR_UNAVAILABLE after the timeout', async () => {
    const ed = new Editor();
    ed.conn.onRequest('editor/showMessage', () => new Promise(() => {}));
    try {
      await ed.startServer({});
      const c = await ed.client({ scope: 'editor' });
      const t0 = Date.now();
      const r = await c.command('editor.message', { text: 'x' }, 'slow');
      assert.equal(r.data.error.code, 'EDITOR_UNAVAILABLE');
      assert.ok(Date.now() - t0 >= 9000, `answered after ${Date.now() - t0} ms`);
      c.close();
    } finally { await ed.stop(); }
  });

  test('serve mode has no editor: EDITOR_UNAVAILABLE at once', async () => {
    const home = configHome();
    const s = new Served(['--workspace', tempDir(), '--port', '0', '--scope', 'read,editor'], { env: home.env });
    try {
      const b = await s.banner();
      const c = await connect(b.url);
      await c.auth(b.token, b.workspaceId);
      assert.equal((await c.command('editor.message', { text: 'x' })).data.error.code, 'EDITOR_UNAVAILABLE');
      c.close();
    } finally { await s.stop(); home.cleanup(); }
  });
});
