/*
 * The approvals model against the real helper: a `ws` client runs a task
 * marked confirm, the helper announces the approval, and it leaves the model
 * when the editor answers, when a phone (a token with the approve scope)
 * answers first, when it expires, when its asker leaves and when the helper
 * goes. Also the menus of package.json against the items' context values.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import {
  ApprovalModel, commandLine, contextValueOf, endedText, timeLeft, type ApprovalEnded,
} from '../src/approvals';
import type { ApprovalOption } from '../src/protocol';
import { makeClient, pairedClient, waitFor, type TestClient, type WsClient } from './util';

const TASKS = { deploy: { command: 'echo', args: ['approved'], confirm: true } };

interface Live { t: TestClient; model: ApprovalModel; ws: WsClient[] }
const live: Live[] = [];
afterEach(async () => {
  for (let l = live.pop(); l; l = live.pop()) {
    for (const w of l.ws) w.ws.terminate();
    l.model.dispose();
    await l.t.client.dispose();
  }
});

/** A helper with the deploy task, the model attached before it starts (as the extension does), a runner. */
async function setup(settings: Record<string, unknown> = {}): Promise<Live & { url: string; runner: WsClient; ended: ApprovalEnded[] }> {
  const t = makeClient({ tasks: TASKS, ...settings });
  const model = new ApprovalModel(t.client, t.logger);
  const l: Live = { t, model, ws: [] };
  live.push(l);
  const ended: ApprovalEnded[] = [];
  model.onEnded.on((e) => ended.push(e));
  const r = await t.client.start({ server: true });
  assert.ok(r);
  const runner = await pairedClient(t.client, r.url, ['run'], 'runner');
  l.ws.push(runner);
  return { ...l, url: r.url, runner, ended };
}

/** task.run of deploy: the approval_pending answer. */
async function ask(runner: WsClient, id: string): Promise<{ approvalId: number; title: string; expiresAt: number }> {
  runner.send({ type: 'command', id, data: { name: 'task.run', args: { name: 'deploy' } } });
  const m = await runner.next((x) => x.id === id);
  assert.equal(m.type, 'approval_pending', JSON.stringify(m));
  return m.data as { approvalId: number; title: string; expiresAt: number };
}

/** The rest of a run: its output, or the error it was refused with. */
async function outcome(runner: WsClient, id: string): Promise<{ out?: string; error?: { code: string; message: string } }> {
  let out = '';
  for (;;) {
    const m = await runner.next((x) => x.id === id);
    const data = m.data as { text?: string; success?: boolean; error?: { code: string; message: string } };
    if (m.type === 'command_response') return { error: data.error };
    if (m.type === 'stream_chunk') out += data.text ?? '';
    if (m.type === 'stream_end') return { out };
  }
}

describe('approvals in the extension, with the real helper', { timeout: 60000 }, () => {
  it('approvalRequested reaches the model; deciding sends approval/decide; approvalResolved drops it', async () => {
    const s = await setup();
    const p = await ask(s.runner, 'r1');
    const a = await waitFor(() => s.model.get(p.approvalId), 'the approval in the model');
    assert.equal(a.kind, 'task');
    assert.equal(a.title, 'Run task "deploy"');
    assert.deepEqual(a.action, { task: 'deploy', command: 'echo', args: ['approved'], cwd: '.', folder: path.basename(s.t.folder) });
    assert.equal(a.requestedBy.userId, 'runner');
    assert.deepEqual(a.options, ['allow_once', 'allow_always', 'deny']);
    // approval_pending and the notification are made apart in the helper: the same expiry within a few ms
    assert.ok(Math.abs(a.expiresAt - p.expiresAt) <= 5, `expiresAt ${a.expiresAt} vs ${p.expiresAt}`);
    assert.deepEqual(s.model.pending.map((x) => x.approvalId), [p.approvalId]);
    assert.match(s.t.logger.text(), new RegExp(`approval ${p.approvalId} requested by runner: Run task "deploy" \\(echo approved\\)`));

    const r = await s.model.decide(p.approvalId, 'allow_once');
    assert.deepEqual([r.took, r.outcome, r.approvalId, r.decision], [true, 'took', p.approvalId, 'allow_once']);
    assert.equal((await outcome(s.runner, 'r1')).out, 'approved\n');
    await waitFor(() => s.model.pending.length === 0, 'the model to drop it');
    assert.equal(s.ended.length, 1);
    assert.deepEqual([s.ended[0]?.resolved?.decision, s.ended[0]?.resolved?.decidedBy], ['allow_once', 'editor']);
    assert.match(s.t.logger.text(), new RegExp(`approval ${p.approvalId} \\(Run task "deploy": echo approved\\) allowed once by you \\(VS Code\\)`));
    // The helper's audit line names the editor as the decider.
    await waitFor(() => new RegExp(`\\[helper\\].*approval ${p.approvalId} .*allow_once by editor`).test(s.t.logger.text()), 'the audit line');
  });

  it("a phone's answer withdraws it from the model; the editor's late answer is told who decided", async () => {
    const s = await setup();
    const phone = await pairedClient(s.t.client, s.url, ['approve'], 'my-phone');
    s.ws.push(phone);
    const p = await ask(s.runner, 'r2');
    await waitFor(() => s.model.get(p.approvalId), 'the approval in the model');
    phone.send({ type: 'command', id: 'ap', data: { name: 'approve', args: { approvalId: p.approvalId, decision: 'deny' } } });
    const reply = (await phone.next((m) => m.id === 'ap')).data as { success: boolean; result: { took: boolean } };
    assert.equal(reply.result.took, true);
    await waitFor(() => s.model.pending.length === 0, 'the model to drop it');
    assert.deepEqual([s.ended[0]?.resolved?.decision, s.ended[0]?.resolved?.decidedBy], ['deny', 'my-phone']);
    assert.match(s.t.logger.text(), new RegExp(`approval ${p.approvalId} \\(Run task "deploy": echo approved\\) denied by my-phone`));
    const o = await outcome(s.runner, 'r2');
    assert.match(o.error?.message ?? '', /denied by my-phone/);
    const late = await s.model.decide(p.approvalId, 'allow_once');
    assert.equal(late.took, false);
    assert.equal(late.outcome, 'decided');
    assert.match(late.message, /my-phone/);
    assert.equal(s.ended.length, 1, 'ended once');
  });

  it('no answer before approvals.timeoutSeconds: it expires and leaves the model', async () => {
    const s = await setup({ approvals: { timeoutSeconds: 5 } });
    const p = await ask(s.runner, 'r3');
    const a = await waitFor(() => s.model.get(p.approvalId), 'the approval in the model');
    assert.ok(a.expiresAt - a.createdAt <= 5000, `expires ${a.expiresAt - a.createdAt} ms after it was made`);
    await waitFor(() => s.model.pending.length === 0, 'expiry', 12000);
    assert.equal(s.ended[0]?.resolved?.decision, 'expired');
    assert.match(s.t.logger.text(), new RegExp(`approval ${p.approvalId} .* expired: nobody answered in time`));
    assert.match((await outcome(s.runner, 'r3')).error?.message ?? '', /nobody approved it in time/);
  });

  it('a model made later lists what is waiting (approvals/list); the asker leaving and the helper exiting end them', async () => {
    const s = await setup();
    const p1 = await ask(s.runner, 'r4');
    const other = await pairedClient(s.t.client, s.url, ['run'], 'other');
    s.ws.push(other);
    const p2 = await ask(other, 'r5');
    await waitFor(() => s.model.pending.length === 2, 'two approvals');
    const later = new ApprovalModel(s.t.client, s.t.logger);
    try {
      assert.equal(later.pending.length, 0);
      await later.refresh();
      assert.deepEqual(later.pending.map((a) => a.approvalId), [p1.approvalId, p2.approvalId]);
      // the asker leaves: withdrawn
      other.ws.terminate();
      await waitFor(() => !s.model.get(p2.approvalId) && !later.get(p2.approvalId), 'the withdrawal');
      assert.deepEqual([s.ended[0]?.resolved?.decision, s.ended[0]?.approval.approvalId], ['withdrawn', p2.approvalId]);
      // the helper dies: what it held is gone, and the restarted helper has nothing pending
      const pid = s.t.client.pid;
      assert.ok(pid);
      process.kill(pid, 'SIGKILL');
      await waitFor(() => s.model.pending.length === 0 && later.pending.length === 0, 'the models to empty');
      assert.equal(s.ended[1]?.resolved, undefined);
      assert.match(s.ended[1]?.text ?? '', new RegExp(`approval ${p1.approvalId} .*no longer waiting: the helper stopped`));
      await waitFor(() => s.t.client.status.state === 'running' && s.t.client.pid !== pid, 'the restart');
      await later.refresh();
      assert.equal(later.pending.length, 0);
    } finally {
      later.dispose();
    }
  });
});

describe('approvals: words and menus', () => {
  const a = {
    approvalId: 7, kind: 'task', title: 'Run task "deploy"',
    action: { task: 'deploy', command: 'make', args: ['deploy', 'all targets'], cwd: '.', folder: 'app' },
    requestedBy: { userId: 'phone', sessionId: 's' }, createdAt: 0, expiresAt: 300000,
    options: ['allow_once', 'allow_always', 'deny'] as ApprovalOption[],
  };

  it('describes the action, the time left and the end', () => {
    assert.equal(commandLine(a), 'make deploy "all targets"');
    assert.equal(timeLeft(300000, 0), '5 min left');
    assert.equal(timeLeft(300000, 299000 - 41000), '42 s left');
    assert.equal(timeLeft(300000, 300000), 'expiring');
    assert.equal(endedText(a, { approvalId: 7, decision: 'allow_always', decidedBy: 'editor', decidedAt: 1 }),
      'approval 7 (Run task "deploy": make deploy "all targets") allowed always by you (VS Code)');
    assert.equal(endedText(a, { approvalId: 7, decision: 'withdrawn', decidedBy: 'the asking client (gone)', decidedAt: 1 }),
      'approval 7 (Run task "deploy": make deploy "all targets") withdrawn by the asking client (gone)');
  });

  it("package.json shows inline exactly the options an item offers, and hides the decisions from the palette", () => {
    interface MenuItem { command: string; when: string; group?: string }
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      contributes: { menus: Record<string, MenuItem[]>; views: Record<string, { id: string }[]> };
    };
    const commandOf: Record<ApprovalOption, string> = {
      allow_once: 'companion.approval.allowOnce', allow_always: 'companion.approval.allowAlways', deny: 'companion.approval.deny',
    };
    /* The part of VS Code's when clause used here: view == X && viewItem =~ /re/. */
    const shown = (m: MenuItem, view: string, viewItem: string): boolean => {
      const w = /^view == (\S+) && viewItem =~ \/(.*)\/$/.exec(m.when);
      assert.ok(w, `unexpected when clause ${m.when}`);
      return w[1] === view && new RegExp(w[2] as string).test(viewItem);
    };
    const inline = (pkg.contributes.menus['view/item/context'] ?? []).filter((m) => m.group?.startsWith('inline'));
    const sets: ApprovalOption[][] = [
      ['allow_once', 'allow_always', 'deny'], ['allow_once', 'deny'], ['allow_always', 'deny'], ['deny'], ['allow_once'], ['allow_once', 'allow_always'],
    ];
    for (const options of sets) {
      const cv = contextValueOf({ options });
      const got = inline.filter((m) => shown(m, 'companion.approvals', cv)).map((m) => m.command);
      assert.deepEqual(got, options.map((o) => commandOf[o]), `inline actions for ${cv}`);
    }
    assert.ok(pkg.contributes.views.companion?.some((v) => v.id === 'companion.approvals'));
    const hidden = (pkg.contributes.menus.commandPalette ?? []).filter((m) => m.when === 'false').map((m) => m.command).sort();
    assert.deepEqual(hidden, Object.values(commandOf).sort());
  });
});
