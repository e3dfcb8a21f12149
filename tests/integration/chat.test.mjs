// Chat mode: plain text in, plain text out, as a WhatsApp bridge uses it.
// Real helper, real tasks; the texts are checked for what a phone needs.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Editor } from './lib/harness.mjs';
import { git, write, baseRepo } from './lib/gitfix.mjs';

/* Sends a chat message and collects every chat_reply part with its id. */
async function chat(c, text, id = `m${Math.random().toString(36).slice(2)}`) {
  c.send({ type: 'chat', id, data: { text } });
  const first = await c.next((m) => m.id === id);
  assert.equal(first.type, 'chat_reply', JSON.stringify(first));
  const parts = [first];
  while (parts.length < first.data.parts) parts.push(await c.next((m) => m.id === id));
  parts.forEach((p, i) => assert.equal(p.data.part, i + 1));
  return { text: parts.map((p) => p.data.text).join(''), parts };
}

describe('chat mode', () => {
  let ed; let dir;
  before(async () => {
    dir = baseRepo();
    write(dir, 'a.txt', 'changed\n');
    write(dir, 'new.txt', 'n\n');
    for (let i = 0; i < 30; i++) write(dir, `many/file${i}.txt`, `${i}\n`);
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        limits: { commandsPerSecond: 1000 },
        tasks: {
          test: { command: 'sh', args: ['-c', 'echo running tests; echo ok 1; echo ok 2; exit 0'] },
          fail: { command: 'sh', args: ['-c', 'for i in $(seq 1 30); do echo line $i; done; exit 2'] },
          long: { command: 'sleep', args: ['30'] },
          huge: { command: 'sh', args: ['-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i of output that goes on"; i=$((i+1)); done'] },
        },
      },
    });
  });
  after(async () => { await ed.stop(); });

  test('status: branch and counts first, lists trimmed with "and N more"', async () => {
    const c = await ed.client({ scope: 'read' });
    const { text } = await chat(c, 'status');
    const first = text.split('\n')[0];
    assert.match(first, /^main/);
    assert.match(first, /1 modified/);
    assert.match(first, /31 untracked/);
    assert.match(text, /more/);
    for (const line of text.split('\n')) assert.ok([...line].length <= 200, `long line: ${line}`);
    c.close();
  });

  test('log [n] and diff [path]', async () => {
    const c = await ed.client({ scope: 'read' });
    assert.match((await chat(c, 'log 1')).text, /first commit/);
    const d = await chat(c, 'diff a.txt');
    assert.match(d.text, /a\.txt/);
    assert.match(d.text, /\+1/);
    c.close();
  });

  test('help lists only what the scopes allow', async () => {
    const ro = await ed.client({ scope: 'read' });
    const h = (await chat(ro, 'help')).text;
    assert.match(h, /status/);
    assert.doesNotMatch(h, /\brun\b/);
    ro.close();
    const rw = await ed.client({ scope: 'read run' });
    assert.match((await chat(rw, 'help')).text, /\brun\b/);
    rw.close();
  });

  test('unknown words get the nearest known word', async () => {
    const c = await ed.client({ scope: 'read' });
    assert.match((await chat(c, 'stauts')).text, /Did you mean "status"/);
    assert.match((await chat(c, 'xyzzy')).text, /help/);
    c.close();
  });

  test('scopes: run needs the run scope', async () => {
    const c = await ed.client({ scope: 'read' });
    const { text } = await chat(c, 'run test');
    assert.match(text, /[Nn]ot allowed/);
    c.close();
  });

  test('run <task>: a reply when it starts and one when it ends, with the exit code and last lines', async () => {
    const c = await ed.client({ scope: 'read run' });
    const id = 'run1';
    c.send({ type: 'chat', id, data: { text: 'run test' } });
    const start = await c.next((m) => m.id === id);
    assert.match(start.data.text, /test started/);
    const end = await c.next((m) => m.id === id, 20000);
    assert.match(end.data.text, /test finished: exit 0/);
    assert.match(end.data.text, /ok 2/);
    c.send({ type: 'chat', id: 'run2', data: { text: 'run fail' } });
    await c.next((m) => m.id === 'run2');
    const failed = await c.next((m) => m.id === 'run2', 20000);
    assert.match(failed.data.text, /exit 2/);
    assert.match(failed.data.text, /line 30/);
    assert.doesNotMatch(failed.data.text, /line 5\b/, 'only the last lines');
    c.close();
  });

  test('cancel ends the task this chat started', async () => {
    const c = await ed.client({ scope: 'read run' });
    c.send({ type: 'chat', id: 'l1', data: { text: 'run long' } });
    await c.next((m) => m.id === 'l1');
    const r = await chat(c, 'cancel');
    assert.match(r.text, /[Cc]ancel/);
    const end = await c.next((m) => m.id === 'l1', 10000);
    assert.match(end.data.text, /cancel/i);
    assert.match((await chat(c, 'cancel')).text, /No task/);
    c.close();
  });

  test('tasks lists the configured tasks', async () => {
    const c = await ed.client({ scope: 'read' });
    const { text } = await chat(c, 'tasks');
    for (const t of ['test', 'fail', 'long']) assert.match(text, new RegExp(`\\b${t}\\b`));
    c.close();
  });

  test('parts are at most 4096 characters and come in order', async () => {
    // A status of a repo with many untracked files is trimmed, so use help
    // for all words plus a long diff? The task list of a huge output is tail-only.
    // Instead force length: 200 untracked files with long names.
    const big = baseRepo();
    for (let i = 0; i < 200; i++) write(big, `${'deeply/nested/folder/'.repeat(3)}file-with-a-long-name-${i}.txt`, 'x');
    const ed2 = new Editor();
    try {
      await ed2.startServer({ folders: [big], settings: { limits: { commandsPerSecond: 1000 } } });
      const c = await ed2.client({ scope: 'read' });
      const { parts } = await chat(c, 'status');
      for (const p of parts) assert.ok([...p.data.text].length <= 4096);
      c.close();
    } finally { await ed2.stop(); }
  });

  test('bad chat messages', async () => {
    const c = await ed.client({ scope: 'read' });
    c.send({ type: 'chat', id: 'b1', data: {} });
    assert.equal((await c.next((m) => m.id === 'b1')).data.code, 'INVALID_MESSAGE');
    c.send({ type: 'chat', id: 'b2', data: { text: 5 } });
    assert.equal((await c.next((m) => m.id === 'b2')).data.code, 'INVALID_MESSAGE');
    assert.match((await chat(c, '   ')).text, /help/);
    assert.match((await chat(c, 'x'.repeat(5000))).text, /long|help/i);
    c.close();
  });
});
