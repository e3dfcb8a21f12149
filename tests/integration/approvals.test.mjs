// Approvals (issue 15): a task marked `confirm` waits for the owner's
// consent, from the editor (vscode-jsonrpc plays it) or from a phone (a `ws`
// client whose token has the `approve` scope), in JSON or in chat words.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Editor, Served, connect, configHome, tempDir, sleep, SLOW } from './lib/harness.mjs';

/* Sends task.run and returns the approval_pending it is answered with. */
async function ask(c, id, name = 'deploy') {
  c.send({ type: 'command', id, data: { name: 'task.run', args: { name } } });
  const m = await c.next((x) => x.id === id);
  assert.equal(m.type, 'approval_pending', JSON.stringify(m));
  return m.data;
}

/* The rest of a task run's stream: {start, out, end} or {error}. */
async function outcome(c, id) {
  let out = '';
  let start = null;
  for (;;) {
    const m = await c.next((x) => x.id === id);
    if (m.type === 'command_response') return { error: m.data.error };
    if (m.type === 'stream_start') start = m;
    if (m.type === 'stream_chunk') out += m.data.text;
    if (m.type === 'stream_end') return { start, out, end: m.data };
  }
}

async function subscribed(ed, claims, events = ['approval.requested', 'approval.resolved']) {
  const c = await ed.client(claims);
  const r = await c.request({ type: 'subscribe', id: 's', data: { events } });
  assert.equal(r.type, 'subscribed', JSON.stringify(r));
  return c;
}

describe('approvals with an editor', () => {
  let ed, dir;
  before(async () => {
    dir = tempDir('companion-approve-');
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        approvals: { timeoutSeconds: 5 },
        limits: { commandsPerSecond: 1000 },
        tasks: {
          deploy: { command: 'echo', args: ['deployed'], confirm: true },
          other: { command: 'echo', args: ['other'], confirm: true },
          plain: { command: 'echo', args: ['plain'] },
        },
      },
    });
  });
  after(async () => { await ed.stop(); });

  test('a phone with approve sees approval.requested and allows once; the task runs', async () => {
    const phone = await subscribed(ed, { sub: 'owner', scope: 'read approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'r1');
    assert.ok(p.approvalId > 0);
    assert.ok(p.expiresAt > Date.now());
    const ev = await phone.next((m) => m.type === 'event' && m.data.event === 'approval.requested');
    const a = ev.data.payload;
    assert.equal(a.approvalId, p.approvalId);
    assert.equal(a.kind, 'task');
    assert.deepEqual(a.action, { task: 'deploy', command: 'echo', args: ['deployed'], cwd: '.', folder: path.basename(dir) });
    assert.equal(a.requestedBy.userId, 'runner');
    assert.deepEqual(a.options, ['allow_once', 'allow_always', 'deny']);
    // One deadline: the asker's approval_pending and the approval agree to the millisecond.
    assert.equal(p.expiresAt, a.expiresAt);
    const r = await phone.command('approve', { approvalId: a.approvalId, decision: 'allow_once' });
    assert.equal(r.data.success, true);
    assert.equal(r.data.result.took, true);
    const o = await outcome(asker, 'r1');
    assert.equal(o.out, 'deployed\n');
    const res = await phone.next((m) => m.type === 'event' && m.data.event === 'approval.resolved');
    assert.deepEqual([res.data.payload.approvalId, res.data.payload.decision, res.data.payload.decidedBy], [a.approvalId, 'allow_once', 'owner']);
    // The editor saw both.
    await ed.waitNotification('companion/approvalRequested', (n) => n.approvalId === a.approvalId);
    await ed.waitNotification('companion/approvalResolved', (n) => n.approvalId === a.approvalId && n.decidedBy === 'owner');
    // A later answer is told who decided, and changes nothing.
    const late = await phone.command('approve', { approvalId: a.approvalId, decision: 'deny' });
    assert.equal(late.data.result.took, false);
    assert.match(late.data.result.message, /already decided: allow_once by owner/);
    const lateEd = await ed.request('approval/decide', { approvalId: a.approvalId, decision: 'deny' });
    assert.equal(lateEd.took, false);
    assert.equal(lateEd.outcome, 'decided');
    phone.close();
    asker.close();
  });

  test('deny: the asker hears who denied; nothing runs', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'd1');
    const r = await phone.command('approve', { approvalId: p.approvalId, decision: 'deny' });
    assert.equal(r.data.result.took, true);
    const o = await outcome(asker, 'd1');
    assert.equal(o.error.code, 'FORBIDDEN');
    assert.match(o.error.message, /denied by owner/);
    phone.close();
    asker.close();
  });

  test('allow_always: the same action from the same token runs without asking; another token asks', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'aa1', 'other');
    await phone.command('approve', { approvalId: p.approvalId, decision: 'allow_always' });
    assert.equal((await outcome(asker, 'aa1')).out, 'other\n');
    asker.send({ type: 'command', id: 'aa2', data: { name: 'task.run', args: { name: 'other' } } });
    const again = await asker.next((m) => m.id === 'aa2');
    assert.equal(again.type, 'stream_start', 'asked again after allow_always');
    assert.equal((await outcome(asker, 'aa2')).out, 'other\n');
    // Another action (deploy) is a different approval.
    const p3 = await ask(asker, 'aa3', 'deploy');
    await phone.command('approve', { approvalId: p3.approvalId, decision: 'deny' });
    await outcome(asker, 'aa3');
    // Another token (same user, new token) asks again.
    const asker2 = await ed.client({ sub: 'runner', scope: 'run', jti: 'another' });
    const p4 = await ask(asker2, 'aa4', 'other');
    assert.ok(p4.approvalId > p.approvalId);
    await phone.command('approve', { approvalId: p4.approvalId, decision: 'deny' });
    await outcome(asker2, 'aa4');
    phone.close();
    asker.close();
    asker2.close();
  });

  test('bad answers: unknown id, a decision not offered, no approve scope, bad types', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    const reader = await ed.client({ sub: 'reader', scope: 'read run' });
    const unknown = await phone.command('approve', { approvalId: 999999, decision: 'allow_once' });
    assert.equal(unknown.data.error.code, 'NOT_FOUND');
    const p = await ask(reader, 'b1');
    const bad = await phone.command('approve', { approvalId: p.approvalId, decision: 'maybe' });
    assert.equal(bad.data.error.code, 'INVALID_ARGS');
    const noId = await phone.command('approve', { approvalId: 'x7', decision: 'deny' });
    assert.equal(noId.data.error.code, 'INVALID_ARGS');
    const forbidden = await reader.command('approve', { approvalId: p.approvalId, decision: 'allow_once' });
    assert.equal(forbidden.data.error.code, 'FORBIDDEN');
    const list = await reader.command('approvals.list');
    assert.equal(list.data.error.code, 'FORBIDDEN');
    const sub = await reader.request({ type: 'subscribe', id: 'x', data: { events: ['approval.requested'] } });
    assert.equal(sub.data.code, 'FORBIDDEN');
    // Still pending, listed for those who may answer.
    const l = await phone.command('approvals.list');
    assert.ok(l.data.result.approvals.some((a) => a.approvalId === p.approvalId));
    // A string id that is a number is fine.
    const ok = await phone.command('approve', { approvalId: String(p.approvalId), decision: 'deny' });
    assert.equal(ok.data.result.took, true);
    await outcome(reader, 'b1');
    phone.close();
    reader.close();
  });

  test('phone and editor answer at once: the first wins, the other is told', async () => {
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'race');
    const [a, b] = await Promise.all([
      phone.command('approve', { approvalId: p.approvalId, decision: 'deny' }),
      ed.request('approval/decide', { approvalId: p.approvalId, decision: 'allow_once' }),
    ]);
    const tookPhone = a.data.result.took;
    assert.notEqual(tookPhone, b.took, 'exactly one answer took effect');
    const o = await outcome(asker, 'race');
    if (tookPhone) assert.equal(o.error.code, 'FORBIDDEN');
    else assert.equal(o.out, 'deployed\n');
    phone.close();
    asker.close();
  });

  test('no answer before the expiry is a deny', async () => {
    const phone = await subscribed(ed, { sub: 'owner', scope: 'approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'exp');
    const o = await outcome(asker, 'exp');
    assert.equal(o.error.code, 'FORBIDDEN');
    assert.match(o.error.message, /nobody approved it in time/);
    const res = await phone.next((m) => m.type === 'event' && m.data.event === 'approval.resolved' && m.data.payload.approvalId === p.approvalId, 10000 * SLOW);
    assert.equal(res.data.payload.decision, 'expired');
    const late = await phone.command('approve', { approvalId: p.approvalId, decision: 'allow_once' });
    assert.equal(late.data.result.took, false);
    phone.close();
    asker.close();
  });

  test('the asking client disconnecting withdraws its approval, announced as such', async () => {
    const phone = await subscribed(ed, { sub: 'owner', scope: 'approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'w');
    asker.terminate();
    const res = await phone.next((m) => m.type === 'event' && m.data.event === 'approval.resolved' && m.data.payload.approvalId === p.approvalId);
    assert.equal(res.data.payload.decision, 'withdrawn');
    await ed.waitNotification('companion/approvalResolved', (n) => n.approvalId === p.approvalId && n.decision === 'withdrawn');
    const late = await phone.command('approve', { approvalId: p.approvalId, decision: 'allow_once' });
    assert.equal(late.data.result.took, false);
    phone.close();
  });

  test('task.cancel of a task waiting for approval withdraws it', async () => {
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'c1');
    const cancel = await asker.command('task.cancel', { id: 'c1' });
    assert.equal(cancel.data.result.cancelled, true);
    const o = await outcome(asker, 'c1');
    assert.match(o.error.message, /cancelled before it started/);
    const l = (await ed.request('approvals/list', {})).approvals;
    assert.ok(!l.some((a) => a.approvalId === p.approvalId));
    asker.close();
  });

  test('a flood: beyond 5 pending approvals per client, a deny at once', async () => {
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await ask(asker, `f${i}`)).approvalId);
    asker.send({ type: 'command', id: 'f5', data: { name: 'task.run', args: { name: 'deploy' } } });
    const r = await asker.next((m) => m.id === 'f5');
    assert.equal(r.data.error.code, 'FORBIDDEN');
    assert.match(r.data.error.message, /too many approvals waiting/);
    asker.close();
    await asker.waitClose();
  });

  test('chat: notify on announces it with the exact answers; "yes N" allows; anything else is not an answer', async () => {
    const chat = await ed.client({ sub: 'whatsapp', scope: 'read approve' });
    await chat.request({ type: 'chat', id: 'n', data: { text: 'notify on' } });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'ch');
    const ann = await chat.next((m) => m.type === 'chat_reply' && /Approval/.test(m.data.text));
    assert.match(ann.data.text, new RegExp(`Approval ${p.approvalId}: Run task "deploy" \\(echo deployed\\)`));
    assert.match(ann.data.text, /Asked by runner/);
    assert.match(ann.data.text, new RegExp(`yes ${p.approvalId} · always ${p.approvalId} · no ${p.approvalId}`));
    for (const text of ['yes', 'yes please', `yes ${p.approvalId} now`, 'ok']) {
      const r = await chat.request({ type: 'chat', id: `x${text}`, data: { text } });
      assert.doesNotMatch(r.data.text, /allow_once/, `"${text}" was taken as an answer`);
    }
    const list = await chat.request({ type: 'chat', id: 'l', data: { text: 'approvals' } });
    assert.match(list.data.text, new RegExp(`${p.approvalId} · Run task "deploy"`));
    const yes = await chat.request({ type: 'chat', id: 'y', data: { text: `yes ${p.approvalId}` } });
    assert.match(yes.data.text, new RegExp(`approval ${p.approvalId}: allow_once`));
    assert.equal((await outcome(asker, 'ch')).out, 'deployed\n');
    const resolved = await chat.next((m) => m.type === 'chat_reply' && /Approval \d+ allowed once by whatsapp/.test(m.data.text));
    assert.ok(resolved.data.event > 0);
    chat.close();
    asker.close();
  });

  test('a read-only subscriber never sees approvals; the audit log has request and decision', async () => {
    const reader = await subscribed(ed, { sub: 'reader', scope: 'read' }, ['task.started', 'task.finished']);
    const phone = await ed.client({ sub: 'owner', scope: 'approve' });
    const asker = await ed.client({ sub: 'runner', scope: 'run' });
    const p = await ask(asker, 'au');
    await phone.command('approve', { approvalId: p.approvalId, decision: 'allow_once' });
    await outcome(asker, 'au');
    await sleep(200);
    assert.ok(!reader.queue.some((m) => m.type === 'event' && /approval/.test(m.data.event)));
    assert.ok(ed.logs.some((l) => new RegExp(`approval ${p.approvalId} requested by runner`).test(l.message)));
    assert.ok(ed.logs.some((l) => new RegExp(`approval ${p.approvalId} .*allow_once by owner`).test(l.message)));
    reader.close();
    phone.close();
    asker.close();
  });
});

describe('approvals across a restart (serve)', () => {
  test('an id from before a restart is unknown, its action never runs, and ids are not reused', async () => {
    const home = configHome();
    const dir = tempDir('companion-approve-serve-');
    const cfg = path.join(dir, 'companion.json');
    writeFileSync(cfg, JSON.stringify({ tasks: { deploy: { command: 'sh', args: ['-c', `echo ran > ${dir}/ran`], confirm: true } } }));
    const start = async () => {
      const s = new Served(['--workspace', dir, '--port', '0', '--config', cfg, '--scope', 'read,run,approve'], { env: home.env });
      const b = await s.banner();
      const c = await connect(b.url);
      assert.equal((await c.auth(b.token, b.workspaceId)).data.success, true);
      return { s, c };
    };
    let first = await start();
    try {
      const p = await ask(first.c, 'r');
      await first.s.stop();
      first = null;
      const second = await start();
      try {
        const late = await second.c.command('approve', { approvalId: p.approvalId, decision: 'allow_once' });
        assert.equal(late.data.error.code, 'NOT_FOUND');
        const p2 = await ask(second.c, 'r2');
        assert.ok(p2.approvalId > p.approvalId, `id ${p2.approvalId} reused or smaller than ${p.approvalId}`);
        await sleep(300);
        const { existsSync } = await import('node:fs');
        assert.equal(existsSync(path.join(dir, 'ran')), false, 'the old action ran');
      } finally {
        await second.s.stop();
      }
    } finally {
      if (first) await first.s.stop();
      home.cleanup();
    }
  });
});
