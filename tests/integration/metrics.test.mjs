// GET /metrics and /health's timestamp (issue 18 item 5) against the real
// helper. The format's oracle is Prometheus' own `promtool check metrics`
// (from Debian's prometheus package; scripts/deps.sh puts it in .cache/
// without installing the package; PROMTOOL overrides); the counts
// are driven with `ws` clients and read back by a small parser of the
// text format.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Editor, ROOT, connect, httpGet, httpRequest, tempDir, waitFor } from './lib/harness.mjs';

const PROMTOOL = process.env.PROMTOOL || path.join(ROOT, '.cache/promtool/promtool');

/* promtool's verdict: throws with its output when the text is not valid
 * exposition format or breaks a naming rule. */
function promtoolCheck(text) {
  assert.ok(existsSync(PROMTOOL), `no promtool at ${PROMTOOL}: run scripts/deps.sh (or set PROMTOOL)`);
  try {
    return execFileSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`promtool check metrics failed:\n${e.stdout}${e.stderr}`);
  }
}

/* name{labels} -> value, for the samples (comments skipped). */
function samples(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

async function scrape(ed) {
  const res = await httpGet(ed.port, '/metrics');
  assert.equal(res.status, 200, res.body);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(res.headers['cache-control'], 'no-store');
  return res.body;
}

describe('/metrics', () => {
  let ed;
  let dir;
  before(async () => {
    dir = tempDir('companion-metrics-');
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      workspaceId: 'ws-metrics-secret-id',
      settings: {
        tasks: {
          hello: { command: 'echo', args: ['hello'] },
          deploy: { command: 'echo', args: ['deployed'], confirm: true },
        },
      },
    });
  });
  after(async () => { await ed.stop(); });

  test('a fresh helper: valid exposition format (promtool), every family present, zero counts', async () => {
    const text = await scrape(ed);
    promtoolCheck(text);
    const s = samples(text);
    assert.equal(s.get('companion_connections{state="authenticated"}'), 0);
    assert.equal(s.get('companion_auth_total{result="success"}'), 0);
    assert.equal(s.get('companion_messages_received_total{type="ping"}'), 0);
    assert.equal(s.get('companion_tasks_running'), 0);
    assert.equal(s.get('companion_approvals_pending'), 0);
    assert.equal(s.get('companion_agent_turns_running'), 0);
    for (const family of ['companion_command_duration_seconds', 'companion_agent_turn_duration_seconds',
      'companion_events_total', 'companion_messages_sent_total', 'companion_error_messages_total']) {
      assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
    }
  });

  test('counts what clients do: connections by state, messages by type, errors by code, command latency, events, tasks, approvals', async () => {
    const t0 = samples(await scrape(ed));
    const c = await ed.client({ sub: 'phone-user-x', scope: 'read run approve' });
    const waiting = await connect(ed.url);
    // A ping, a command, an unknown command, an unknown message type, a bad auth.
    assert.equal((await c.request({ type: 'ping', id: 'p1' })).type, 'pong');
    assert.equal((await c.command('workspace.info', {}, 'w1')).data.success, true);
    const unk = await c.command('no.such.command', {}, 'u1');
    assert.equal(unk.data.error.code, 'UNKNOWN_COMMAND');
    assert.equal((await c.request({ type: 'secret-type-from-client', id: 'x1' })).data.code, 'UNKNOWN_TYPE');
    const bad = await connect(ed.url);
    const r = await bad.auth('not-a-token', ed.workspaceId);
    assert.equal(r.data.success, false);
    // A task, and one that waits for approval.
    c.send({ type: 'command', id: 't1', data: { name: 'task.run', args: { name: 'hello' } } });
    await c.next((m) => m.id === 't1' && m.type === 'stream_end');
    c.send({ type: 'command', id: 't2', data: { name: 'task.run', args: { name: 'deploy' } } });
    const pending = await c.next((m) => m.id === 't2');
    assert.equal(pending.type, 'approval_pending');

    let s = samples(await scrape(ed));
    const d = (k) => (s.get(k) ?? 0) - (t0.get(k) ?? 0);
    assert.equal(s.get('companion_connections{state="authenticated"}'), 1);
    assert.equal(s.get('companion_connections{state="authenticating"}'), 1, 'the socket that has not authenticated');
    assert.equal(d('companion_connections_total'), 3);
    assert.equal(d('companion_auth_total{result="success"}'), 1);
    assert.equal(d('companion_auth_total{result="failure"}'), 1);
    assert.equal(d('companion_messages_received_total{type="ping"}'), 1);
    assert.equal(d('companion_messages_received_total{type="auth"}'), 2);
    assert.equal(d('companion_messages_received_total{type="other"}'), 1);
    assert.equal(d('companion_messages_sent_total{type="pong"}'), 1);
    assert.equal(d('companion_error_messages_total{code="UNKNOWN_TYPE"}'), 1);
    assert.equal(d('companion_command_errors_total{code="UNKNOWN_COMMAND"}'), 1);
    assert.equal(d('companion_command_duration_seconds_count{command="workspace.info"}'), 1);
    assert.equal(s.get('companion_command_duration_seconds_bucket{command="workspace.info",le="+Inf"}'),
      s.get('companion_command_duration_seconds_count{command="workspace.info"}'));
    assert.equal(d('companion_events_total{kind="task.started"}'), 1);
    assert.equal(d('companion_events_total{kind="task.finished"}'), 1);
    assert.equal(d('companion_events_total{kind="approval.requested"}'), 1);
    assert.equal(s.get('companion_approvals_pending'), 1);
    assert.equal(d('companion_approvals_requested_total'), 1);
    assert.ok(d('companion_received_bytes_total') > 0);
    assert.ok(d('companion_sent_bytes_total') > 0);

    await ed.request('approval/decide', { approvalId: pending.data.approvalId, decision: 'deny' });
    await c.next((m) => m.id === 't2' && m.type === 'command_response');
    s = samples(await scrape(ed));
    assert.equal(s.get('companion_approvals_pending'), 0);
    assert.equal(d('companion_approvals_resolved_total{outcome="deny"}'), 1);
    assert.equal(d('companion_command_errors_total{code="FORBIDDEN"}'), 1, 'the denied task.run');

    c.close();
    waiting.close();
    bad.close();
    await waitFor(async () => samples(await scrape(ed)).get('companion_connections{state="authenticated"}') === 0,
      'the closed client to leave the gauge');
    const text = await scrape(ed);
    promtoolCheck(text);
    // Counts only: nothing a client or the workspace named, nothing secret.
    for (const secret of ['phone-user-x', 'secret-type-from-client', 'ws-metrics-secret-id', dir,
      path.basename(dir), 'not-a-token', ed.secret]) {
      assert.ok(!text.includes(secret), `/metrics shows ${secret}`);
    }
  });

  test('a client cannot grow the label sets: 200 invented message types all count as "other"', async () => {
    const c = await ed.client({ sub: 'flood', scope: 'read' });
    for (let i = 0; i < 200; i++) c.send({ type: `invented-${i}`, id: `i${i}` });
    await c.next((m) => m.id === 'i199');
    const text = await scrape(ed);
    assert.ok(!text.includes('invented-'), 'a client-chosen type became a label');
    assert.ok(text.length < 64 * 1024, `the page grew to ${text.length} bytes`);
    c.close();
  });

  test('the same gates as /health: a foreign Host or Origin is refused, only GET', async () => {
    assert.equal((await httpGet(ed.port, '/metrics', { Host: 'evil.example:80' })).status, 403);
    assert.equal((await httpGet(ed.port, '/metrics', { Origin: 'https://evil.example' })).status, 403);
    assert.equal((await httpRequest(ed.port, 'POST', '/metrics', {}, 'x')).status, 405);
    assert.equal((await httpGet(ed.port, '/metrics/x')).status, 404);
  });
});

describe('/health', () => {
  test('timestamp: ISO 8601 UTC with milliseconds, the current time', async () => {
    const ed = new Editor();
    try {
      await ed.startServer({});
      const before = Date.now();
      const body = JSON.parse((await httpGet(ed.port, '/health')).body);
      assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const t = Date.parse(body.timestamp);
      assert.ok(t >= before - 1000 && t <= Date.now() + 1000, `${body.timestamp} is not now`);
      assert.equal(body.status, 'ok');
    } finally {
      await ed.stop();
    }
  });
});
