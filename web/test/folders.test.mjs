// A multi-folder workspace and symlinks, as the editor hands them to the
// helper: the helper runs in editor mode (vscode-jsonrpc plays VS Code,
// tests/integration/lib/harness.mjs) with two folders, the first of which
// is not a repository, and serves the app the phone opens. Status says which
// folder it is of and opens an untracked file in that folder; Files picks a
// folder; a symlink to a folder inside opens as a folder, one to a file in
// the viewer, one leading outside says why it cannot be read.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { launch, phone, tempDir } from './lib/env.mjs';
import { Editor } from '../../tests/integration/lib/harness.mjs';

let ed, browser, notes, app;
const opened = [];

before(async () => {
  const base = tempDir('companion-web-folders-');
  notes = path.join(base, 'notes');
  app = path.join(base, 'app');
  mkdirSync(path.join(notes, 'drafts'), { recursive: true });
  writeFileSync(path.join(notes, 'drafts', 'plan.txt'), 'the plan, in drafts\n');
  writeFileSync(path.join(notes, 'readme.txt'), 'notes readme\n');
  symlinkSync('drafts', path.join(notes, 'current'));
  symlinkSync('readme.txt', path.join(notes, 'readme-link'));
  symlinkSync('/etc', path.join(notes, 'outside'));
  mkdirSync(app);
  const git = (...a) => execFileSync('git', a, { cwd: app, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', 'commit', '-q', '--allow-empty', '-m', 'start');
  writeFileSync(path.join(app, 'todo.txt'), 'only in the app folder\n');
  const home = tempDir('companion-web-folders-home-');
  ed = new Editor({ env: { XDG_STATE_HOME: path.join(home, 'state'), XDG_CONFIG_HOME: path.join(home, 'config') } });
  await ed.startServer({ folders: [notes, app] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await ed?.stop();
});

afterEach(async () => {
  for (const ph of opened.splice(0)) {
    assert.deepEqual(ph.problems.csp, [], 'CSP errors in the console');
    assert.deepEqual(await ph.cspEvents(), [], 'securitypolicyviolation events');
    assert.deepEqual(ph.problems.errors, [], 'page errors');
    await ph.context.close();
  }
});

async function open() {
  const ph = await phone(browser);
  ph.context.setDefaultTimeout(10000);
  opened.push(ph);
  const token = ed.token({ sub: 'phone', scope: 'read' });
  const payload = { v: 1, url: `ws://127.0.0.1:${ed.port}/ws`, workspaceId: ed.workspaceId, token };
  await ph.page.goto(`http://127.0.0.1:${ed.port}/#pair=${Buffer.from(JSON.stringify(payload)).toString('base64url')}`);
  await ph.page.locator('[data-phase="online"]').waitFor();
  return ph.page;
}

describe('two workspace folders (editor mode), symlinks', { concurrency: false }, () => {
  test('Status is of the first folder that is a repository, says so, and opens its untracked file there', async () => {
    const page = await open();
    await page.getByText('in the folder app').waitFor();
    await page.getByRole('button', { name: /todo\.txt/ }).click();
    await page.getByRole('region', { name: 'Contents of todo.txt' }).getByText('only in the app folder').waitFor();
  });

  test('Files: the folders to pick from; a symlinked folder opens as a folder, a symlinked file in the viewer, one outside says why', async () => {
    const page = await open();
    await page.getByRole('tab', { name: /^Files/ }).click();
    const chips = page.getByRole('list', { name: 'Workspace folders' });
    assert.deepEqual(await chips.getByRole('button').allTextContents(), ['notes', 'app']);
    assert.equal(await chips.getByRole('button', { name: 'notes' }).getAttribute('aria-current'), 'true');
    await page.getByRole('button', { name: /^current/ }).click();
    await page.getByRole('list', { name: 'Contents of current' }).getByRole('button', { name: /^plan\.txt/ }).click();
    await page.getByRole('region', { name: 'Contents of current/plan.txt' }).getByText('the plan, in drafts').waitFor();
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: /^readme-link/ }).click();
    await page.getByRole('region', { name: 'Contents of readme-link' }).getByText('notes readme').waitFor();
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: /^outside/ }).click();
    await page.getByText(/Not allowed|outside/).first().waitFor();
    assert.equal(await page.getByRole('region', { name: 'Contents of outside' }).count(), 0);
    // The other folder.
    await page.getByRole('button', { name: 'Back' }).click();
    await chips.getByRole('button', { name: 'app' }).click();
    await page.getByRole('button', { name: /^todo\.txt/ }).click();
    await page.getByRole('region', { name: 'Contents of todo.txt' }).getByText('only in the app folder').waitFor();
    await page.getByRole('button', { name: 'Back' }).click();
    assert.equal(await chips.getByRole('button', { name: 'app' }).getAttribute('aria-current'), 'true');
  });
});
