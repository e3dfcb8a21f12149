// What goes wrong in real life: the helper restarts (the app reconnects
// with backoff, learns it missed events, and carries on), a token expires
// (a clear screen that offers to forget it), and pairing links that lack
// a URL or are damaged.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startWorld, launch, phone, sleep, screenshot } from './lib/env.mjs';

let world, browser;
const opened = [];

before(async () => {
  world = await startWorld();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await world?.close();
});

async function newPhone(opts) {
  const ph = await phone(browser, opts);
  ph.context.setDefaultTimeout(10000);
  opened.push(ph);
  return ph;
}

afterEach(async () => {
  for (const ph of opened.splice(0)) {
    assert.deepEqual(ph.problems.csp, [], 'CSP errors in the console');
    assert.deepEqual(await ph.cspEvents(), [], 'securitypolicyviolation events');
    assert.deepEqual(ph.problems.errors, [], 'page errors');
    assert.deepEqual(ph.problems.dialogs, [], 'dialogs');
    await ph.context.close();
  }
});

describe('resilience', { concurrency: false }, () => {
  test('a pairing link without url connects to this page\'s own host', async () => {
    const { page } = await newPhone();
    await page.goto(world.pairLink(world.helper.token, { url: null }));
    assert.equal(await page.evaluate(() => location.hash), '');
    await page.locator('[data-phase="online"]').waitFor();
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('companion.workspaces')));
    assert.equal(stored[0].url, `ws://${new URL(world.origin).host}/ws`);
  });

  test('a damaged pairing link says so, and is removed from the address bar too', async () => {
    const { page } = await newPhone();
    await page.goto(`${world.origin}/#pair=bm90IGpzb24`);
    assert.equal(await page.evaluate(() => location.hash), '');
    await page.getByRole('alert').getByText('damaged').waitFor();
    await page.goto(`${world.origin}/#pair=${Buffer.from(JSON.stringify({ v: 2, workspaceId: 'x', token: 'y' })).toString('base64url')}`);
    await page.getByRole('alert').getByText('newer version').waitFor();
  });

  test('the helper restarts: the app shows it is offline, reconnects by itself, and refreshes after a resync', async () => {
    const { page } = await newPhone();
    await page.goto(world.pairLink());
    await page.locator('[data-phase="online"]').waitFor();
    await page.getByTestId('branch').waitFor();
    // Events before the restart, so the app has a seq the new helper lacks.
    await page.getByRole('tab', { name: /^Tasks/ }).click();
    await page.getByRole('button', { name: 'Run fail' }).click();
    await page.getByTestId('run-state').getByText('exit code 3').waitFor();
    const seq = await page.evaluate((id) => Number(localStorage.getItem(`companion.seq.${id}`)), world.helper.workspaceId);
    assert.ok(seq >= 2, `seq ${seq}`);

    await world.helper.stop();
    await page.locator('[data-phase="waiting"]').waitFor();
    await page.getByRole('status').getByText(/Offline: .*retry in \d+ s/).waitFor();
    await screenshot(page, 'offline-light');
    await sleep(1500); // a few failed attempts: the backoff grows
    await world.helper.start();
    await page.locator('[data-phase="online"]').waitFor({ timeout: 20000 });
    await page.getByRole('tab', { name: /^Alerts/ }).click();
    await page.locator('[data-event="resync"]').waitFor();
    // The app follows the new helper's numbering from now on.
    const after = await page.evaluate((id) => Number(localStorage.getItem(`companion.seq.${id}`)), world.helper.workspaceId);
    assert.ok(after < seq, `seq ${after} should follow the restarted helper (was ${seq})`);
    await page.getByRole('tab', { name: /^Status/ }).click();
    await page.getByTestId('branch').getByText('main').waitFor();
    await page.getByRole('tab', { name: /^Tasks/ }).click();
    await page.getByRole('button', { name: 'Run color' }).click();
    await page.getByTestId('run-state').getByText('exit code 0').waitFor();
  });

  test('an expired token: the session ends, a clear screen offers to forget it', async () => {
    const ph = await newPhone({ colorScheme: 'dark' });
    const { page } = ph;
    const token = world.helper.mint({ scope: 'read', ttl: '3s' });
    await page.goto(world.pairLink(token));
    await ph.expect(page.locator('[data-phase="online"]'));
    await ph.expect(page.getByRole('heading', { name: 'Access expired' }), { timeout: 15000 });
    await page.getByText('token for').waitFor();
    await page.getByText('AUTH_EXPIRED').waitFor();
    await screenshot(page, 'expired-dark');
    // Opening it again later lands on the same screen, not a reconnect loop.
    await page.reload();
    await ph.expect(page.getByRole('heading', { name: 'Access expired' }));
    await page.getByRole('button', { name: 'Forget this workspace' }).click();
    await page.getByRole('button', { name: 'Forget', exact: true }).click();
    await page.getByText('not paired with any workspace').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('companion.workspaces')), '[]');
  });

  test('a read-only token: tasks are listed but Run is disabled, with the reason', async () => {
    const { page } = await newPhone();
    await page.goto(world.pairLink(world.helper.mint({ scope: 'read' })));
    await page.locator('[data-phase="online"]').waitFor();
    await page.getByRole('tab', { name: /^Tasks/ }).click();
    assert.equal(await page.getByRole('button', { name: 'Run color' }).isDisabled(), true);
    await page.getByText('lacks the run scope').waitFor();
  });

  test('two workspaces are kept; the user picks one (the other one\'s token is refused: its screen says so)', async () => {
    const { page } = await newPhone();
    await page.goto(world.pairLink());
    await page.locator('[data-phase="online"]').waitFor();
    // A second stored workspace (another helper's id): listed, and can be forgotten alone.
    await page.evaluate(() => {
      const all = JSON.parse(localStorage.getItem('companion.workspaces'));
      all.push({ workspaceId: 'other-ws', url: `ws://${location.host}/ws`, token: 'x.y.z', device: true, name: 'other', pairedAt: Date.now() });
      localStorage.setItem('companion.workspaces', JSON.stringify(all));
    });
    await page.reload();
    await page.locator('[data-phase="online"]').waitFor();
    await page.getByRole('button', { name: /^Workspace/ }).click();
    const list = page.getByRole('list', { name: 'Paired workspaces' });
    await list.getByRole('heading', { name: 'other' }).waitFor();
    await list.locator('li', { hasText: 'other' }).getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: 'Access ended' }).waitFor();
    await page.getByRole('button', { name: 'Other workspaces' }).click();
    const mine = list.locator('li').filter({ hasNotText: 'other-ws' }).first();
    await mine.getByRole('button', { name: /^Open/ }).click();
    await page.locator('[data-phase="online"]').waitFor();
  });
});
