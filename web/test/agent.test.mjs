// The agent screen against the real helper and the scripted ACP agent of
// the integration tests (tests/integration/agents/scripted-agent.mjs, the
// official ACP SDK): hidden without the agent scope, a streamed answer as
// Markdown, thoughts, plans, a tool call whose permission is allowed and
// denied from the phone, cancel, new conversation, an earlier conversation
// followed from History, and a turn that runs while the phone is away
// caught up with agent.follow after the reconnect; the Approvals screen
// answering a script's `confirm` task; a `confirm` task run from the
// Tasks screen waiting, denied, then allowed; an approve-only device. No
// CSP violation.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startWorld, launch, phone, axe, screenshot, ROOT, TASKS } from './lib/env.mjs';

const AGENT = path.join(ROOT, 'tests/integration/agents/scripted-agent.mjs');
const SDK = path.join(ROOT, 'tests/integration/node_modules/@agentclientprotocol/sdk');

let world, browser;
const opened = [];

async function open(token) {
  const ph = await phone(browser);
  ph.context.setDefaultTimeout(15000);
  opened.push(ph);
  await ph.page.goto(world.pairLink(token));
  await ph.page.locator('[data-phase="online"]').waitFor();
  return ph;
}

before(async () => {
  assert.ok(existsSync(SDK), 'the scripted agent needs its SDK: (cd tests/integration && npm ci)');
  world = await startWorld({
    scope: 'read,run,agent,approve',
    extraConfig: {
      agents: { scripted: { command: process.execPath, args: [AGENT] } },
      tasks: { ...TASKS, deploy: { command: 'echo', args: ['deployed'], confirm: true } },
    },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await world?.close();
});

afterEach(async () => {
  for (const ph of opened.splice(0)) {
    assert.deepEqual(ph.problems.csp, [], 'CSP errors in the console');
    assert.deepEqual(await ph.cspEvents(), [], 'securitypolicyviolation events');
    assert.deepEqual(ph.problems.errors, [], 'page errors');
    assert.deepEqual(ph.problems.dialogs, [], 'dialogs');
    await ph.context.close();
  }
});

const turns = (page) => page.getByRole('list', { name: 'Conversation' }).locator('li.turn');
async function send(page, text) {
  await page.getByLabel('Message to the agent').fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

describe('the agent screen with the scripted ACP agent', { concurrency: false }, () => {
  test('hidden for a token without the agent scope', async () => {
    const { page } = await open(world.helper.mint({ scope: 'read,run' }));
    await page.getByRole('tab', { name: /^Status/ }).waitFor();
    const names = (await page.getByRole('tab').allTextContents()).map((n) => n.replace(/\d+$/, ''));
    assert.ok(!names.includes('Agent'), `tabs: ${names}`);
  });

  test('a prompt streams back as Markdown, with thoughts and a plan; HTML stays text', async () => {
    const { page } = await open();
    await page.getByRole('tab', { name: /^Agent/ }).click();
    await send(page, 'echo **bold** <img src=x onerror="window.__pwned=1"> done');
    const first = turns(page).first();
    await first.locator('.bubble.me', { hasText: 'echo **bold**' }).waitFor();
    await first.locator('.markdown strong', { hasText: 'bold' }).waitFor();
    await first.locator('[aria-busy="false"]').waitFor();
    assert.equal(await first.locator('.markdown img').count(), 0, 'an <img> was rendered');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await send(page, 'think');
    await turns(page).nth(1).locator('details.thought').waitFor();
    await send(page, 'plan');
    await turns(page).nth(2).getByRole('list', { name: 'Plan' }).locator('li').nth(2).waitFor();
    await turns(page).nth(2).locator('[aria-busy="false"]').waitFor();
    await screenshot(page, 'agent-light');
    const results = await axe(page);
    assert.deepEqual(results.filter((v) => ['serious', 'critical'].includes(v.impact)).map((v) => v.id), []);
  });

  test('a tool call asks permission: Allow once runs it, Deny rejects it; both shown as decided', async () => {
    const { page } = await open();
    await page.getByRole('tab', { name: /^Agent/ }).click();
    await page.getByRole('button', { name: 'New' }).click();
    await send(page, 'tool');
    const perm = page.getByRole('group', { name: /^Permission:/ }).first();
    await perm.getByRole('button', { name: 'Allow once' }).waitFor();
    await screenshot(page, 'agent-permission-light');
    await perm.getByRole('button', { name: 'Allow once' }).click();
    await perm.getByText(/Allowed once/).waitFor();
    const t1 = turns(page).first();
    await t1.getByText('tool ran').waitFor();
    await t1.locator('.pill.st-completed').waitFor();
    await send(page, 'tool');
    const perm2 = page.getByRole('group', { name: /^Permission:/ }).nth(1);
    await perm2.getByRole('button', { name: 'Deny' }).click();
    await perm2.getByText(/Denied/).waitFor();
    await turns(page).nth(1).getByText('tool rejected').waitFor();
  });

  test('Cancel stops a running turn; New starts an empty conversation', async () => {
    const { page } = await open();
    await page.getByRole('tab', { name: /^Agent/ }).click();
    await page.getByRole('button', { name: 'New' }).click();
    await send(page, 'slow 20000');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await turns(page).first().getByText('Stopped: cancelled').waitFor();
    const conv = await page.getByText(/^Conversation c\d+$/).first().textContent();
    await page.getByRole('button', { name: 'New' }).click();
    await page.getByText(/^Conversation c\d+$/).filter({ hasNotText: new RegExp(`^${conv}$`) }).first().waitFor();
    assert.equal(await turns(page).count(), 0);
  });

  test('History follows an earlier conversation; a turn run while the phone was away is caught up', async () => {
    const a = await open();
    await a.page.getByRole('tab', { name: /^Agent/ }).click();
    await a.page.getByRole('button', { name: 'New' }).click();
    await send(a.page, 'echo first message of this conversation');
    await turns(a.page).first().locator('[aria-busy="false"]').waitFor();
    const conv = (await a.page.getByText(/^Conversation c\d+/).first().textContent()).replace('Conversation ', '');

    // A second phone, whose WebSocket the test can cut (routeWebSocket
    // passes everything through to the helper until then), opens the same
    // conversation from History.
    let blocked = false;
    const routes = [];
    const b = await (async () => {
      const ph = await phone(browser);
      ph.context.setDefaultTimeout(15000);
      opened.push(ph);
      await ph.context.routeWebSocket(/\/ws$/, (ws) => {
        if (blocked) { ws.close({ code: 1001, reason: 'test: away' }); return; }
        const server = ws.connectToServer();
        routes.push({ ws, server });
      });
      await ph.page.goto(world.pairLink());
      await ph.page.locator('[data-phase="online"]').waitFor();
      return ph;
    })();
    await b.page.getByRole('tab', { name: /^Agent/ }).click();
    await b.page.getByRole('button', { name: 'History' }).click();
    await b.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: new RegExp(`^${conv} `) }).click();
    await turns(b.page).first().getByText('first message of this conversation', { exact: false }).first().waitFor();

    // Phone B loses its connection; phone A prompts; B comes back and
    // catches up from the last update it saw.
    blocked = true;
    for (const r of routes.splice(0)) {
      r.server.close({ code: 1001, reason: 'test: away' });
      r.ws.close({ code: 1001, reason: 'test: away' });
    }
    await b.page.locator('[data-phase="waiting"]').waitFor();
    await send(a.page, 'echo said while B was away');
    await turns(a.page).nth(1).locator('[aria-busy="false"]').waitFor();
    assert.equal(await turns(b.page).count(), 1, 'B saw the turn while away');
    blocked = false;
    await turns(b.page).nth(1).locator('.bubble.me', { hasText: 'said while B was away' }).waitFor({ timeout: 40000 });
    await turns(b.page).nth(1).locator('.markdown', { hasText: 'said while B was away' }).waitFor();
  });

  test('Approvals: a script\'s confirm task waits; the phone allows one run and denies the next', async () => {
    const { page } = await open();
    await page.getByRole('tab', { name: /^Approvals/ }).click();
    await page.getByText('Nothing is waiting for your approval.').waitFor();
    // A script (a plain ws client with its own token) runs the task.
    const script = await world.helper.client(world.helper.mint({ scope: 'read,run', user: 'script' }));
    const ask = async (id) => {
      script.send({ type: 'command', id, data: { name: 'task.run', args: { name: 'deploy' } } });
      const m = await script.next((x) => x.id === id);
      assert.equal(m.type, 'approval_pending', JSON.stringify(m));
      return m.data.approvalId;
    };
    const outcome = async (id) => {
      let out = '';
      for (;;) {
        const m = await script.next((x) => x.id === id);
        if (m.type === 'stream_chunk') out += m.data.text;
        if (m.type === 'stream_end') return { out, end: m.data };
        if (m.type === 'command_response') return { error: m.data.error };
      }
    };
    const list = page.getByRole('list', { name: 'Waiting for approval' });
    const first = await ask('r1');
    const card = list.locator('li', { hasText: 'Run task "deploy"' });
    await card.getByText(/task · asked by script · expires in \d+ s/).waitFor();
    assert.equal(await card.locator('pre').textContent(), `echo deployed\nin ${path.basename(world.workspace)}`);
    assert.deepEqual(await card.getByRole('button').allTextContents(), ['Allow once', 'Always allow', 'Deny']);
    await screenshot(page, 'approvals-light');
    assert.deepEqual(await axe(page), []);
    await card.getByRole('button', { name: 'Allow once' }).click();
    assert.equal((await outcome('r1')).out, 'deployed\n');
    await page.getByText('Nothing is waiting for your approval.').waitFor();

    const second = await ask('r2');
    assert.ok(second > first, `ids ${first} then ${second}`);
    await card.getByRole('button', { name: 'Deny' }).click();
    const o = await outcome('r2');
    assert.equal(o.error.code, 'FORBIDDEN');
    assert.match(o.error.message, /denied by paired-device/);
    await page.getByText('Nothing is waiting for your approval.').waitFor();
    // Both requests are in the notification list, with who asked for what.
    await page.getByRole('tab', { name: /^Alerts/ }).click();
    await page.getByText('script asks: echo deployed').first().waitFor();
    assert.equal(await page.getByText('Approval requested: Run task "deploy"').count(), 2);
    script.close();
  });
  test('Tasks: a confirm task run from the phone says it waits for approval; denied, "Not run" and by whom; allowed from Approvals, it runs', async () => {
    const { page } = await open();
    const owner = await world.helper.client(world.helper.mint({ scope: 'approve', user: 'owner-script' }));
    const decide = async (id, approvalId, decision) => {
      owner.send({ type: 'command', id, data: { name: 'approve', args: { approvalId, decision } } });
      const r = await owner.next((m) => m.id === id);
      assert.equal(r.data.success, true, JSON.stringify(r));
    };
    await page.getByRole('tab', { name: /^Tasks/ }).click();
    const state = page.getByTestId('run-state');
    await page.getByRole('button', { name: 'Run deploy' }).click();
    await state.filter({ hasText: /^Waiting for approval \d+$/ }).waitFor();
    const first = Number((await state.textContent()).match(/\d+/)[0]);
    await page.getByTestId('run-waiting').getByText(/asks for the owner's approval before it runs \(until .+\)\. This device may answer it\./).waitFor();
    await decide('d1', first, 'deny');
    await state.filter({ hasText: 'Not run: denied by owner-script.' }).waitFor();
    assert.equal(await page.getByTestId('run-waiting').count(), 0);
    // Again, allowed on this phone's own Approvals screen: it runs.
    await page.getByRole('button', { name: 'Run deploy' }).click();
    await state.filter({ hasText: /^Waiting for approval \d+$/ }).waitFor();
    await page.getByRole('button', { name: 'Open Approvals' }).click();
    await page.getByRole('list', { name: 'Waiting for approval' }).locator('li', { hasText: 'Run task "deploy"' })
      .getByRole('button', { name: 'Allow once' }).click();
    await page.getByRole('tab', { name: /^Tasks/ }).click();
    await state.filter({ hasText: /^exit code 0 after/ }).waitFor();
    await page.getByRole('region', { name: 'Output of deploy' }).getByText('deployed').waitFor();
    owner.close();
  });

  test('an approve-only device (no read scope) sees only Alerts and Approvals, and approvals arrive live', async () => {
    const { page } = await open(world.helper.mint({ scope: 'approve', user: 'approver' }));
    // It lands on Approvals: nothing of read's to show.
    await page.getByText('Nothing is waiting for your approval.').waitFor();
    assert.deepEqual((await page.getByRole('tab').allTextContents()).map((t) => t.replace(/\d+$/, '').trim()), ['Alerts', 'Approvals']);
    const script = await world.helper.client(world.helper.mint({ scope: 'read,run', user: 'script' }));
    script.send({ type: 'command', id: 'r1', data: { name: 'task.run', args: { name: 'deploy' } } });
    assert.equal((await script.next((x) => x.id === 'r1')).type, 'approval_pending');
    // Live (an approval.requested event), not from the list read at connect.
    const card = page.getByRole('list', { name: 'Waiting for approval' }).locator('li', { hasText: 'Run task "deploy"' });
    await card.getByRole('button', { name: 'Deny' }).click();
    const end = await script.next((x) => x.id === 'r1' && x.type === 'command_response');
    assert.match(end.data.error.message, /denied by approver/);
    script.close();
  });
});
