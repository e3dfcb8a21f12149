// The app against the real helper, in a phone-sized Chromium: pairing,
// every screen with the fixture's real data, injection attempts rendered
// as text, live events and their replay, keyboard use, axe-core, and no
// CSP violation anywhere (checked after every test).
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startWorld, launch, phone, axe, screenshot, sleep, CSP } from './lib/env.mjs';

let world, browser, ph, page, pairingToken, deviceToken;
const tab = (name) => page.getByRole('tab', { name: new RegExp(`^${name}`) });
const online = () => page.locator('[data-phase="online"]').waitFor({ timeout: 15000 });
const gitLines = (...args) => execFileSync('git', args, { cwd: world.workspace, encoding: 'utf8' }).split('\n').filter(Boolean);

before(async () => {
  world = await startWorld();
  browser = await launch();
  ph = await phone(browser);
  page = ph.page;
  ph.context.setDefaultTimeout(10000);
});

after(async () => {
  await browser?.close();
  await world?.close();
});

afterEach(async () => {
  assert.deepEqual(ph.problems.csp, [], 'CSP errors in the console');
  assert.deepEqual(await ph.cspEvents(), [], 'securitypolicyviolation events');
  assert.deepEqual(ph.problems.errors, [], 'page errors');
  assert.deepEqual(ph.problems.dialogs, [], 'dialogs opened');
});

describe('the app against the real helper', { concurrency: false }, () => {
  test('pairing from a #pair= link: fragment removed at once, device token stored, live status', async () => {
    pairingToken = world.helper.mintPairing();
    const res = await page.goto(world.pairLink(pairingToken));
    // The page comes from the helper itself, with its headers.
    assert.equal(new URL(res.url()).port, String(world.helper.port));
    const h = await res.allHeaders();
    assert.equal(h['content-security-policy'], CSP);
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.equal(await page.evaluate(() => location.hash), '', 'fragment still in the address bar');
    assert.equal(page.url(), `${world.origin}/`);
    await online();
    await page.getByTestId('branch').getByText('main').waitFor();
    await page.getByText('tracking origin/main').waitFor();
    assert.equal(await page.getByLabel('1 ahead').textContent(), '↑1');
    // Every path git reports is on the screen.
    const porcelain = gitLines('status', '--porcelain', '-uall').map((l) => l.slice(3));
    for (const p of porcelain) await page.getByRole('button', { name: new RegExp(`${p.replace('.', '\\.')}$`) }).first().waitFor();
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('companion.workspaces')));
    assert.equal(stored.length, 1);
    assert.equal(stored[0].workspaceId, world.helper.workspaceId);
    // The single-use pairing token was exchanged for a device token, which is kept.
    assert.notEqual(stored[0].token, pairingToken, 'the spent pairing token is not kept');
    const claims = JSON.parse(Buffer.from(stored[0].token.split('.')[1], 'base64url').toString());
    const pairClaims = JSON.parse(Buffer.from(pairingToken.split('.')[1], 'base64url').toString());
    assert.equal(pairClaims.pairing, true);
    assert.equal(claims.pairing, undefined);
    assert.equal(claims.dev, pairClaims.dev, 'the device token names the paired device');
    assert.equal(stored[0].device, true);
    deviceToken = stored[0].token;
    // A second use of the link is refused by the helper.
    const again = await world.helper.client(pairingToken).then(() => 'accepted', (e) => e.message);
    assert.match(again, /already used: pair again/);
    assert.ok(!(await page.evaluate(() => JSON.stringify(history.state ?? '') + location.href)).includes('pair='));
    await screenshot(page, 'status-light');
  });

  test('Agent and Approvals stay hidden: the token has neither the agent nor the approve scope', async () => {
    const names = await page.getByRole('tab').allTextContents();
    assert.deepEqual(names.map((n) => n.replace(/\d+$/, '')), ['Status', 'Diff', 'Log', 'Files', 'Tasks', 'Alerts']);
  });

  test('a file on the status screen opens its diff: coloured, with line numbers; staged side too', async () => {
    await page.getByRole('button', { name: /src\/app\.js$/ }).click();
    const list = page.getByRole('region', { name: 'Diff of src/app.js' });
    await list.waitFor();
    const added = list.locator('.k-add', { hasText: 'const added = true;' });
    await added.waitFor();
    assert.equal(await added.locator('.ln').nth(1).textContent(), '11', 'new line number');
    assert.equal(await added.locator('.ln').nth(0).textContent(), '', 'no old line number on an added line');
    const del = list.locator('.k-del', { hasText: '-const line5 = 5;' });
    assert.equal(await del.locator('.ln').nth(0).textContent(), '5');
    assert.equal(await list.locator('.k-hunk').count() >= 1, true);
    const bgAdd = await added.evaluate((e) => getComputedStyle(e).backgroundColor);
    const bgDel = await del.evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.notEqual(bgAdd, bgDel, 'added and deleted lines coloured differently');
    await screenshot(page, 'diff-light');
    await page.getByRole('button', { name: 'Staged', exact: true }).click();
    await page.getByRole('region', { name: 'Diff of src/staged.js' }).locator('.k-add', { hasText: 'export const staged = 1;' }).waitFor();
    await page.getByRole('button', { name: 'Unstaged', exact: true }).click();
  });

  test('a 5,000-line diff is rendered lazily and scrolls to its end', async () => {
    await tab('Diff').click();
    await page.getByRole('button', { name: /^big\.txt/ }).click();
    const list = page.getByRole('region', { name: 'Diff of big.txt' });
    await list.locator('.k-del').first().waitFor();
    assert.equal(await page.getByText('The diff was cut').count(), 0, 'a 5,000-line patch was cut');
    const rows = await list.locator('.vrow').count();
    assert.ok(rows < 200, `${rows} rows in the DOM for a 10,000-line patch`);
    const scrollHeight = await list.evaluate((e) => e.scrollHeight);
    assert.ok(scrollHeight > 10000 * 20 - 100, `scroll height ${scrollHeight}`);
    await list.evaluate((e) => { e.scrollTop = e.scrollHeight; });
    await list.locator('.k-add', { hasText: '+line 5000 of the big file, changed' }).waitFor();
  });

  test('log: the commits git has, newest first, summaries as text', async () => {
    await tab('Log').click();
    const items = page.getByRole('list', { name: 'Commits, newest first' }).locator('li');
    await items.first().waitFor();
    const summaries = await items.locator('.summary').allTextContents();
    assert.deepEqual(summaries, gitLines('log', '--format=%s'));
    assert.equal(await page.locator('.summary b').count(), 0, '<b> in a summary became an element');
    await screenshot(page, 'log-light');
  });

  test('files: browse, view with line numbers, binary and truncated files', async () => {
    await tab('Files').click();
    await page.getByRole('button', { name: 'src/' }).click();
    await page.getByRole('button', { name: /^app\.js/ }).click();
    const view = page.getByRole('region', { name: 'Contents of src/app.js' });
    const row = view.locator('.dl', { hasText: 'const line5 = "five";' });
    await row.waitFor();
    assert.equal(await row.locator('.ln').textContent(), '5');
    await screenshot(page, 'file-light');
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: /^image\.bin/ }).click();
    await page.getByText('binary, 10 bytes: not shown.').waitFor();
    assert.match(await page.getByTestId('file-meta').textContent(), /Binary, 10 bytes/);
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: /^large\.log/ }).click();
    await page.getByRole('note').getByText('larger than what the helper sends').waitFor();
    assert.match(await page.getByTestId('file-meta').textContent(), /truncated/);
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByRole('button', { name: 'src/' }).waitFor();
    await screenshot(page, 'files-light');
  });

  test('<script> and HTML in a file, its Markdown preview and a diff are text: nothing injected, no dialog', async () => {
    const scriptsBefore = await page.evaluate(() => document.scripts.length);
    await page.getByRole('button', { name: /^evil\.md/ }).click();
    const view = page.getByRole('region', { name: 'Contents of evil.md' });
    await view.getByText('<script>window.__pwned = 1; alert("script")</script>', { exact: false }).waitFor();
    await page.getByRole('button', { name: 'Preview' }).click();
    const md = page.locator('.markdown');
    await md.waitFor();
    await md.getByText('bold').first().waitFor();
    assert.equal(await md.locator('script, img, iframe, div, style, [onerror], [style]').count(), 0, 'an element was injected');
    assert.ok((await md.textContent()).includes('<script>'), 'the raw HTML shows as text');
    const hrefs = await md.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    for (const h of hrefs) assert.ok(h === null || /^https?:/.test(h), `link ${h}`);
    await screenshot(page, 'markdown-light');
    await tab('Diff').click();
    await page.getByRole('button', { name: /^src\/page\.html/ }).click();
    await page.getByRole('region', { name: 'Diff of src/page.html' })
      .locator('.k-add', { hasText: '+<script>window.__pwned = 3; alert("diff")</script>' }).waitFor();
    await sleep(200);
    assert.equal(await page.evaluate(() => document.scripts.length), scriptsBefore, 'a script element appeared');
    assert.equal(await page.evaluate(() => document.querySelectorAll('iframe, img').length), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  });

  test('tasks: ANSI colours in live output, exit codes, cancel', async () => {
    await tab('Tasks').click();
    await page.getByRole('button', { name: 'Run color' }).click();
    await page.getByTestId('run-state').getByText('exit code 0').waitFor();
    const out = page.getByRole('region', { name: 'Output of color' });
    const red = out.locator('span.f-red', { hasText: 'red error' });
    await red.waitFor();
    const green = out.locator('span.f-green.d-bold', { hasText: 'bold green' });
    assert.equal(await green.evaluate((e) => getComputedStyle(e).fontWeight), '700');
    assert.notEqual(await red.evaluate((e) => getComputedStyle(e).color), await out.evaluate((e) => getComputedStyle(e).color));
    assert.equal(await out.getByText('orange').evaluate((e) => getComputedStyle(e).color), 'rgb(255, 135, 0)');
    await out.getByText('<b>not bold</b>', { exact: false }).waitFor();
    assert.equal(await out.locator('b').count(), 0);
    await screenshot(page, 'tasks-light');
    await page.getByRole('button', { name: 'Run fail' }).click();
    await page.getByTestId('run-state').getByText('exit code 3').waitFor();
    await page.getByRole('button', { name: 'Run slow' }).click();
    await page.getByTestId('run-state').getByText('Running…').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('run-state').getByText(/killed by signal TERM.*cancelled/).waitFor({ timeout: 10000 });
  });

  test('notifications: task events, a live git.changed that also refreshes the status', async () => {
    await tab('Alerts').click();
    const notes = page.getByRole('list', { name: 'Notifications, newest first' });
    await notes.locator('[data-event="task.finished"]', { hasText: 'Task color succeeded' }).waitFor();
    await notes.locator('[data-event="task.finished"]', { hasText: 'Task fail failed' }).waitFor();
    await notes.locator('[data-event="task.started"]').first().waitFor();
    writeFileSync(path.join(world.workspace, 'live.txt'), 'written while the app watched\n');
    await notes.locator('[data-event="git.changed"]').first().waitFor({ timeout: 10000 });
    await screenshot(page, 'notifications-light');
    await tab('Status').click();
    await page.getByRole('button', { name: /live\.txt$/ }).waitFor();
  });

  test('events missed while away are replayed on the next visit (since), none twice', async () => {
    await tab('Alerts').click();
    const before = await page.locator('[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
    const maxSeq = Math.max(...before);
    await page.close();
    // While no page is open, a script runs a task.
    const c = await world.helper.client();
    c.send({ type: 'command', id: 't1', data: { name: 'task.run', args: { name: 'fail' } } });
    await c.next((m) => m.type === 'stream_end' && m.id === 't1');
    c.close();
    page = await ph.context.newPage();
    await page.goto(`${world.origin}/`);
    await online();
    await tab('Alerts').click();
    const seqs = () => page.locator('[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
    await page.locator('[data-event="task.finished"]').filter({ hasText: 'Task fail failed' }).nth(1).waitFor();
    const after = await seqs();
    assert.equal(new Set(after).size, after.length, `a seq shown twice: ${after}`);
    assert.ok(after.filter((s) => s > maxSeq).length >= 2, `no replayed events after ${maxSeq}: ${after}`);
  });

  test('keyboard: arrows move between tabs, Tab and Enter open a file, focus is visible', async () => {
    await tab('Status').click();
    await tab('Status').focus();
    await page.keyboard.press('ArrowRight');
    await page.getByRole('heading', { name: 'Diff' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-diff');
    await page.keyboard.press('End');
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
    await page.keyboard.press('Home');
    await page.getByRole('heading', { name: 'Status' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-selected')), 'true');
    // From the top of the page, Tab reaches the first file; Enter opens it.
    await page.getByRole('button', { name: /^Workspace/ }).focus();
    let found = false;
    for (let i = 0; i < 12 && !found; i++) {
      await page.keyboard.press('Tab');
      found = /src\/staged\.js/.test(await page.evaluate(() => document.activeElement?.textContent ?? ''));
    }
    assert.ok(found, 'Tab never reached the first file');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'no visible focus');
    await page.keyboard.press('Enter');
    await page.getByRole('region', { name: 'Diff of src/staged.js' }).waitFor();
  });

  test('accessibility (axe-core): no serious or critical violation on any screen, light and dark', async () => {
    const screens = [
      ['Status', 'status'], ['Diff', 'diff'], ['Log', 'log'], ['Files', 'files'], ['Tasks', 'tasks'], ['Alerts', 'notifications'],
    ];
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [t, shot] of screens) {
        await tab(t).click();
        await page.getByRole('heading', { level: 1 }).first().waitFor();
        await sleep(300);
        const v = await axe(page);
        assert.deepEqual(v, [], `${t} (${scheme}): ${JSON.stringify(v, null, 1)}`);
        if (scheme === 'dark') await screenshot(page, `${shot}-dark`);
      }
      await tab('Files').click();
      await page.getByRole('button', { name: /^README\.md/ }).click();
      await page.getByRole('region', { name: 'Contents of README.md' }).waitFor();
      assert.deepEqual(await axe(page), [], `file viewer (${scheme})`);
      await page.getByRole('button', { name: 'Back' }).click();
      await page.getByRole('button', { name: /^Workspace/ }).click();
      await page.getByRole('heading', { name: 'Workspaces' }).waitFor();
      assert.deepEqual(await axe(page), [], `workspaces (${scheme})`);
      await screenshot(page, `workspaces-${scheme}`);
      await page.getByRole('button', { name: 'Back' }).click();
    }
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('touch targets are at least 44 px', async () => {
    await tab('Status').click();
    await page.getByRole('button', { name: /src\/app\.js$/ }).waitFor();
    const small = await page.evaluate(() => [...document.querySelectorAll('button, [role=tab], summary, a')]
      .map((e) => ({ r: e.getBoundingClientRect(), t: (e.textContent || e.getAttribute('aria-label') || '').trim() }))
      .filter(({ r }) => r.width > 0 && (r.width < 44 || r.height < 44))
      .map(({ r, t }) => `${t} ${r.width}x${r.height}`));
    assert.deepEqual(small, []);
  });

  test('"Forget this workspace" deletes its token and shows the welcome screen', async () => {
    await page.getByRole('button', { name: /^Workspace/ }).click();
    await page.getByRole('button', { name: 'Forget this workspace' }).click();
    await page.getByRole('button', { name: 'Forget', exact: true }).click();
    await page.getByRole('heading', { name: 'Companion' }).waitFor();
    await page.getByText('not paired with any workspace').waitFor();
    const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('companion.')).map((k) => `${k}=${localStorage.getItem(k)}`));
    assert.ok(!left.some((kv) => kv.includes(deviceToken)), `token still stored: ${left}`);
    assert.ok(!left.some((kv) => kv.includes(world.helper.workspaceId)), `workspace still stored: ${left}`);
  });
});

describe('the guards themselves', () => {
  test('the CSP guard sees a violation when there is one (an inline style attribute)', async () => {
    const other = await phone(browser);
    try {
      await other.page.goto(`${world.origin}/`);
      await other.page.locator('h1').first().waitFor();
      await other.page.evaluate(() => { document.body.innerHTML += '<p style="color: red">styled</p>'; });
      await sleep(300);
      const seen = [...(await other.cspEvents()), ...other.problems.csp];
      assert.ok(seen.some((s) => /style-src|style/.test(s)), `no violation recorded: ${JSON.stringify(seen)}`);
    } finally {
      await other.context.close();
    }
  });
});
