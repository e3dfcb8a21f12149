// End-to-end test in a real VS Code (code-server 4.100.3, driven by Debian's
// chromium through playwright-core): the packaged extension auto-starts the
// helper, Pair Device mints a token a ws client authenticates with, Stop /
// Start from the palette close and reopen the port, the Settings UI moves the
// port, kill -9 is followed by a restart, editor.open opens the file,
// saves and Notify Paired Devices reach subscribed clients as events, a
// task marked confirm shows up in the Approvals view (badge, notification)
// where Allow Once runs it, and a phone's answer takes it away again; Pair
// Device for a phone shows its link's QR code, a client pairing with it
// shows as connected in the Devices view, and Revoke there closes it (4001); Link
// WhatsApp shows the bundled bridge's QR code (WhatsApp played by its
// in-memory stand-in) and then "Linked", and a number not on the allowlist
// gets a pairing code, which Approve in VS Code's notification admits. A
// hostile workspace (its .vscode/settings.json sets auth.*, server.host and
// helper.path) changes none of them, while the remote machine's settings
// (where code-server keeps machine-scoped settings) do apply.
// Screenshots go to vscode-ext/e2e-artifacts/. Run through scripts/e2e.sh.
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  WebSocket, codeServerHarness, ext, findFile, freePort, health, helperPids, makeSteps, newestCompanionLog as newestLogIn,
  pairDevice, runCommand, sleep, waitFor, wsClient,
} from './e2e-lib.mjs';

const tools = path.join(ext, 'e2e-tools');
const vsix = process.env.E2E_VSIX || path.join(ext, 'companion-0.1.0.vsix');
const artifacts = path.join(ext, 'e2e-artifacts');
const steps = makeSteps();
const step = steps.step;

/* Local addresses of the sockets listening on a TCP port, from /proc/net/tcp and tcp6. */
function listeners(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A: LISTEN
      const [addr, p] = cols[1].split(':');
      if (p !== hexPort) continue;
      if (addr.length === 8) out.push(addr.match(/../g).reverse().map((h) => parseInt(h, 16)).join('.'));
      else out.push(addr === '00000000000000000000000001000000' ? '::1' : addr === '0'.repeat(32) ? '::' : addr);
    }
  }
  return out;
}
function b64url(b) { return Buffer.from(b).toString('base64url'); }
function jwt(alg, claims, signer) {
  const input = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(signer(Buffer.from(input)))}`;
}
/* Opens a WebSocket, sends auth with token, answers auth_response.data (and closes). */
async function tryAuth(url, tok, workspaceId) {
  const c = await wsClient(url);
  c.send({ type: 'auth', id: 'a1', data: { token: tok, workspaceId } });
  const r = await c.next((m) => m.id === 'a1');
  c.ws.close();
  await c.closed;
  return r.data;
}
/* The HTTP status of a WebSocket upgrade (101 when it opened; the socket stays open). */
function upgradeStatus(url, open) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => { open.push(ws); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode); });
    ws.once('error', () => resolve(0));
  });
}
const root = mkdtempSync(path.join(tmpdir(), 'companion-e2e-'));
mkdirSync(artifacts, { recursive: true });
const port1 = await freePort();
const port2 = await freePort();
// Link WhatsApp runs the bundled bridge on its in-memory WhatsApp stand-in: the "phone scans" 8 s after start.
process.env.COMPANION_WHATSAPP_STANDIN = '8000';
// ...and takes chats from a folder: in/*.json are messages to the linked number, sent.jsonl what the bridge sent.
const waChat = path.join(root, 'wa-chat');
process.env.COMPANION_WHATSAPP_STANDIN_CHAT = waChat;
const cs = codeServerHarness({ tools, root, userSettings: { 'companion.server.port': port1 } });
const { dirs } = cs;
const newestCompanionLog = () => newestLogIn(dirs.userData);
writeFileSync(path.join(dirs.ws, 'hello.txt'), 'line one\nline two\nline three\nline four\n');
mkdirSync(path.join(dirs.ws, '.vscode'));
writeFileSync(path.join(dirs.ws, '.vscode', 'settings.json'), JSON.stringify({
  'companion.tasks': { 'approve-me': { command: 'echo', args: ['approved'], confirm: true } },
}, null, 2));

cs.install(vsix);
const launch = (folder, opts) => cs.launch(folder, opts);
const stopSession = (sid) => cs.stopSession(sid);

/* The rest of a task.run: {out} when it ran, {error} when it was refused. */
async function runOutcome(c, id) {
  let out = '';
  for (;;) {
    const m = await c.next((x) => x.id === id, 15000);
    if (m.type === 'command_response') return { error: m.data?.error };
    if (m.type === 'stream_chunk') out += m.data.text;
    if (m.type === 'stream_end') return { out };
  }
}

try {
  const { page, sid } = await launch(dirs.ws, { trusted: true });

  const statusItem = page.locator('.statusbar-item', { hasText: 'Companion' }).first();
  const palette = (title) => runCommand(page, title);

  // 1. auto-start
  await waitFor(async () => (await health(port1)) === 200, `the helper on :${port1}`, 60000);
  step('auto-start: the helper listens on the configured port', true, `:${port1}`);
  const text1 = await waitFor(async () => { const t = await statusItem.innerText(); return t.includes(`:${port1}`) ? t : ''; }, 'status bar running', 20000);
  step('status bar shows running on the port', true, text1.replace(/\s+/g, ' '));
  await page.locator('#workbench\\.parts\\.statusbar').screenshot({ path: path.join(artifacts, 'statusbar-running.png') });

  // 2. Pair Device: scopes read + run + editor, 1 hour, "e2e-phone"
  const token = await pairDevice(page, { name: 'e2e-phone', tick: ['run', 'editor'] });
  step('Pair Device shows a token in the webview', /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token.token), `workspace ${token.ws}`);
  step('Pair Device offers the approve and agent scopes, not ticked by default',
    token.initial.approve === false && token.initial.agent === false && token.initial.read === true,
    JSON.stringify(token.initial));
  const qrOk = await token.frame.$eval('#qr', (img) => img.complete && img.naturalWidth > 0).catch(() => false);
  step('the pairing webview renders the QR code', qrOk);
  await page.screenshot({ path: path.join(artifacts, 'pairing-webview.png') });

  // 3. a ws client authenticates with that token
  const c1 = await wsClient(`ws://127.0.0.1:${port1}/ws`);
  c1.send({ type: 'auth', id: 'a1', data: { token: token.token, workspaceId: token.ws } });
  const auth = await c1.next((m) => m.id === 'a1');
  step('a ws client authenticates with the Pair Device token', auth.data?.success === true, `scopes ${JSON.stringify(auth.data?.scopes)}`);
  await waitFor(async () => (await statusItem.innerText()).includes('1 client'), 'status bar 1 client', 10000).then(
    () => step('status bar counts the client', true), (e) => step('status bar counts the client', false, e.message));

  // 4. editor.open opens the file
  c1.send({ type: 'command', id: 'o1', data: { name: 'editor.open', args: { path: 'hello.txt', line: 3 } } });
  const opened = await c1.next((m) => m.id === 'o1');
  const tabOk = await page.locator('.tab', { hasText: 'hello.txt' }).first().waitFor({ timeout: 10000 }).then(() => true, () => false);
  step('editor.open from a client opens the file', opened.data?.success === true && tabOk, JSON.stringify(opened.data));

  // 4b. the editor's saves reach subscribed clients as file.saved events,
  // and Notify Paired Devices reaches them as notify events
  c1.send({ type: 'subscribe', id: 's1', data: { events: ['file.saved', 'notify'] } });
  await c1.next((m) => m.id === 's1' && m.type === 'subscribed');
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('End');
  await page.keyboard.type(' saved');
  await page.keyboard.press('Control+s');
  const saved = await c1.next((m) => m.type === 'event' && m.data?.event === 'file.saved', 15000).catch((e) => ({ error: e.message }));
  step('saving in the editor sends file.saved to subscribed clients', saved.data?.payload?.path === 'hello.txt', JSON.stringify(saved.data ?? saved));
  await palette('Companion: Notify Paired Devices');
  const msgBox = page.locator('.quick-input-widget input');
  await msgBox.waitFor({ state: 'visible' });
  await msgBox.fill('build finished');
  await page.keyboard.press('Enter');
  const note = await c1.next((m) => m.type === 'event' && m.data?.event === 'notify', 15000).catch((e) => ({ error: e.message }));
  step('Notify Paired Devices reaches subscribed clients', note.data?.payload?.message === 'build finished', JSON.stringify(note.data ?? note));

  // 4c. approvals: the workspace's task "approve-me" is marked confirm; c1 (run) asks
  const approver = await pairDevice(page, { name: 'e2e-approver', tick: ['approve'], notToken: token.token });
  const phone = await wsClient(`ws://127.0.0.1:${port1}/ws`);
  phone.send({ type: 'auth', id: 'a2', data: { token: approver.token, workspaceId: approver.ws } });
  const phoneAuth = await phone.next((m) => m.id === 'a2');
  step('a device paired with the approve scope authenticates', phoneAuth.data?.success === true && phoneAuth.data.scopes?.includes('approve'),
    `scopes ${JSON.stringify(phoneAuth.data?.scopes)}`);
  await palette('Companion: Show Approvals');
  const approvalsPane = page.locator('.pane', { has: page.locator('.pane-header', { hasText: /approvals/i }) }).first();
  await approvalsPane.locator('.welcome-view-content, .monaco-list').first().waitFor({ timeout: 15000 });
  const badge = page.locator('#workbench\\.parts\\.activitybar .action-item', { has: page.locator('[aria-label^="Companion"]') }).locator('.badge-content');
  const toastOf = (id) => page.locator('.notification-toast', { hasText: `Companion approval ${id}` });
  const ask = async (id) => {
    c1.send({ type: 'command', id, data: { name: 'task.run', args: { name: 'approve-me' } } });
    const m = await c1.next((x) => x.id === id);
    if (m.type !== 'approval_pending') throw new Error(`task.run answered ${JSON.stringify(m)}`);
    return m.data.approvalId;
  };
  const gone = (loc, what) => waitFor(async () => (await loc.count()) === 0, what, 10000).then(() => true, () => false);

  const t4c = Date.now();
  const id1 = await ask('ap1');
  const row1 = approvalsPane.locator('.monaco-list-row', { hasText: 'Run task "approve-me"' }).first();
  await row1.waitFor({ timeout: 10000 });
  const rowText = (await row1.innerText()).replace(/\s+/g, ' ');
  const badgeText = await waitFor(async () => (await badge.count()) ? (await badge.first().innerText()).trim() : '', 'the view badge', 10000).catch(() => '');
  const toast1 = toastOf(id1);
  const toastOk = await toast1.first().waitFor({ timeout: 10000 }).then(() => true, () => false);
  const toast1Text = toastOk ? (await toast1.first().innerText()).replace(/\s+/g, ' ') : '';
  await row1.hover();
  const actions = await row1.locator('.actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? e.title));
  const hover = page.locator('.monaco-hover, .workbench-hover', { hasText: 'echo approved' }).first();
  const hoverText = await hover.waitFor({ timeout: 5000 }).then(async () => (await hover.innerText()).replace(/\s+/g, ' '), () => '');
  await page.screenshot({ path: path.join(artifacts, 'approvals-view.png') });
  step('a confirm task shows in the Approvals view: title, who asked, time left', rowText.includes('e2e-phone') && /min left/.test(rowText), rowText);
  step('the view has a badge with the count', badgeText === '1', `badge "${badgeText}"`);
  step('its tooltip is the exact action: command line, folder, who asked', /echo approved/.test(hoverText) && /In: \. of folder workspace/.test(hoverText) && hoverText.includes('e2e-phone'), hoverText);
  step('the item offers exactly its options as inline actions', JSON.stringify(actions) === JSON.stringify(['Allow Once', 'Allow Always', 'Deny']), JSON.stringify(actions));
  step('a notification says what and who, with the answers', toastOk && toast1Text.includes('e2e-phone asks') && toast1Text.includes('echo approved') && toast1Text.includes('Allow Once'), toast1Text);
  await row1.locator('.action-label[aria-label="Allow Once"]').click();
  const ran = await runOutcome(c1, 'ap1').catch((e) => ({ error: { message: e.message } }));
  step('Allow Once (inline) decides it: the client gets the task\'s output', ran.out === 'approved\n', JSON.stringify(ran));
  const after1 = { item: await gone(row1, 'the item to go'), notification: await gone(toast1, 'the notification to close'),
    badge: await waitFor(async () => (await badge.count()) === 0 || !(await badge.first().isVisible()), 'the badge to go', 10000).then(() => true, () => false) };
  step('once decided, the item, the badge and the notification are gone', after1.item && after1.badge && after1.notification, JSON.stringify(after1));

  const id2 = await ask('ap2');
  const row2 = approvalsPane.locator('.monaco-list-row', { hasText: 'Run task "approve-me"' }).first();
  await row2.waitFor({ timeout: 10000 });
  await toastOf(id2).first().waitFor({ timeout: 10000 });
  phone.send({ type: 'command', id: 'yes2', data: { name: 'approve', args: { approvalId: id2, decision: 'deny' } } });
  const phoneAnswer = await phone.next((m) => m.id === 'yes2');
  const denied = await runOutcome(c1, 'ap2').catch((e) => ({ error: { message: e.message } }));
  const withdrawn = (await gone(row2, 'the item to go')) && (await gone(toastOf(id2), 'the notification to close'));
  await page.screenshot({ path: path.join(artifacts, 'approvals-after-phone.png') });
  step("a phone's answer withdraws it: the item disappears and the notification closes",
    phoneAnswer.data?.result?.took === true && /denied by e2e-approver/.test(denied.error?.message ?? '') && withdrawn,
    `${JSON.stringify(phoneAnswer.data?.result)}; ${denied.error?.message}`);
  const logLine = await waitFor(() => {
    const f = newestCompanionLog();
    const m = f && new RegExp(`approval ${id2} \\(.*\\) denied by e2e-approver`).exec(readFileSync(f, 'utf8'));
    return m?.[0];
  }, 'the log line', 10000).catch(() => '');
  step('the Companion log says who decided', logLine !== '', logLine);

  const id3 = await ask('ap3');
  const toast3 = toastOf(id3).first();
  await toast3.waitFor({ timeout: 10000 });
  await toast3.locator('a', { hasText: 'Deny' }).click();
  const denied3 = await runOutcome(c1, 'ap3').catch((e) => ({ error: { message: e.message } }));
  step("the notification's Deny link decides it", /denied by editor/.test(denied3.error?.message ?? '') && (await gone(toastOf(id3), 'the notification to close')),
    denied3.error?.message ?? JSON.stringify(denied3));
  console.log(`     (approvals: ${Date.now() - t4c} ms)`);
  phone.ws.close();

  // 4d. devices: Pair Device for a phone shows the link's QR code; a ws
  // client pairs with the link's single-use token, shows as connected in
  // the Devices view (and in the status bar's tooltip); Revoke from the view
  // closes its socket with 4001
  const tDev = Date.now();
  const pixel = await pairDevice(page, { name: 'e2e-pixel', kind: 'phone' });
  const phoneQr = await pixel.frame.$eval('#qr', (img) => img.complete && img.naturalWidth > 0 && img.alt).catch(() => '');
  const phoneText = await pixel.frame.$eval('body', (b) => b.innerText.replace(/\s+/g, ' ')).catch(() => '');
  const pairUrl = new URL(pixel.link);
  step('Pair Device for a phone: the panel shows the QR code of the pairing link, its countdown and "once"',
    /link/.test(phoneQr) && pairUrl.protocol === 'http:' && pairUrl.port === String(port1) && pairUrl.hash.startsWith('#pair=') &&
      /works once/.test(phoneText) && /\d+:\d\d left/.test(phoneText) && /e2e-pixel/.test(phoneText),
    `${pairUrl.origin}/#pair=…; ${/(\d+:\d\d left)/.exec(phoneText)?.[1] ?? 'no countdown'}`);
  await page.screenshot({ path: path.join(artifacts, 'pairing-phone.png') });
  const inLink = JSON.parse(Buffer.from(pairUrl.hash.slice('#pair='.length), 'base64url').toString('utf8'));
  const pix = await wsClient(inLink.url);
  pix.send({ type: 'auth', id: 'p1', data: { token: inLink.token, workspaceId: inLink.workspaceId } });
  const pixAuth = await pix.next((m) => m.id === 'p1');
  step("a ws client pairs with the link's token and gets its device token", pixAuth.data?.success === true && typeof pixAuth.data?.deviceToken === 'string',
    `success ${pixAuth.data?.success}, deviceToken ${typeof pixAuth.data?.deviceToken}`);
  await palette('Companion: Show Devices');
  const devicesPane = page.locator('.pane', { has: page.locator('.pane-header', { hasText: /devices/i }) }).first();
  const pixRow = devicesPane.locator('.monaco-list-row', { hasText: 'e2e-pixel' }).first();
  const pixConnected = await waitFor(async () => {
    const t = (await pixRow.count()) ? (await pixRow.innerText()).replace(/\s+/g, ' ') : '';
    return /connected/.test(t) ? t : '';
  }, 'e2e-pixel connected in the Devices view', 15000).catch(() => '');
  step('the Devices view shows the phone as connected, with its scopes and expiry', /connected · read · expires in/.test(pixConnected), pixConnected);
  const otherRows = await devicesPane.locator('.monaco-list-row').allInnerTexts();
  step('the Devices view lists the devices paired before', ['e2e-phone', 'e2e-approver'].every((n) => otherRows.some((t) => t.includes(n))),
    otherRows.map((t) => t.replace(/\s+/g, ' ')).join(' | '));
  await statusItem.hover();
  const sbHover = page.locator('.monaco-hover, .workbench-hover', { hasText: 'Connected:' }).first();
  const sbTip = await sbHover.waitFor({ timeout: 5000 }).then(async () => (await sbHover.innerText()).replace(/\s+/g, ' '), () => '');
  step("the status bar's tooltip names who is connected", /Connected: .*e2e-pixel/.test(sbTip) && /e2e-phone/.test(sbTip), sbTip);
  await page.mouse.move(700, 400);
  await pixRow.hover();
  const devActions = await pixRow.locator('.actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? e.title));
  await devicesPane.screenshot({ path: path.join(artifacts, 'devices-view.png') });
  await page.screenshot({ path: path.join(artifacts, 'devices-view-window.png') });
  step('a device row offers Rename and Revoke inline', JSON.stringify(devActions) === JSON.stringify(['Rename Device', 'Revoke Device']), JSON.stringify(devActions));
  await pixRow.locator('.action-label[aria-label="Revoke Device"]').click();
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 10000 });
  const dialogText = (await dialog.innerText()).replace(/\s+/g, ' ');
  await page.screenshot({ path: path.join(artifacts, 'devices-revoke-confirm.png') });
  await dialog.locator('.monaco-button', { hasText: /^Revoke$/ }).click();
  const pixClose = await Promise.race([pix.closed, sleep(10000).then(() => 'timeout')]);
  step('Revoke (modal confirm naming the device) closes its socket with 4001', /Revoke "e2e-pixel"\?/.test(dialogText) && pixClose === 4001,
    `close ${pixClose}; dialog: ${dialogText.slice(0, 120)}`);
  const pixRevoked = await waitFor(async () => {
    const t = (await pixRow.count()) ? (await pixRow.innerText()).replace(/\s+/g, ' ') : '';
    return /revoked/.test(t) ? t : '';
  }, 'e2e-pixel revoked in the view', 10000).catch(() => '');
  const c1Open = c1.ws.readyState === WebSocket.OPEN;
  step('the view shows it revoked; the other devices stay connected', pixRevoked !== '' && c1Open, `${pixRevoked}; e2e-phone open: ${c1Open}`);
  const back = await tryAuth(`ws://127.0.0.1:${port1}/ws`, pixAuth.data?.deviceToken ?? '', inLink.workspaceId).catch((e) => ({ error: { message: e.message } }));
  step("the revoked phone's device token is refused", back?.success === false, JSON.stringify(back?.error));
  console.log(`     (devices: ${Date.now() - tDev} ms)`);

  // 5. Stop / Start from the palette
  await palette('Companion: Stop Server');
  const code = await Promise.race([c1.closed, sleep(10000).then(() => 'timeout')]);
  await waitFor(async () => (await health(port1)) === 0, 'the port to close', 10000);
  step('Stop Server closes the port (client closed 1001)', code === 1001, `close ${code}`);
  await waitFor(async () => (await statusItem.innerText()).includes('stopped'), 'status bar stopped', 10000);
  await page.locator('#workbench\\.parts\\.statusbar').screenshot({ path: path.join(artifacts, 'statusbar-stopped.png') });
  await palette('Companion: Start Server');
  await waitFor(async () => (await health(port1)) === 200, 'the port to reopen', 15000);
  step('Start Server reopens the port', true);

  // 6. kill -9 -> restart
  const before = helperPids(sid);
  step('one helper runs in the code-server session', before.length === 1, `pids ${before.join(',')}`);
  const argv = readFileSync(`/proc/${before[0]}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
  step('the helper runs as `companion-helper --stdio` (no secret in argv)', argv.length === 1 && argv[0] === '--stdio', JSON.stringify(argv));
  const logFile = findFile(path.join(dirs.userData, 'logs'), (f) => /Companion\.log$/.test(f));
  const logText = logFile ? readFileSync(logFile, 'utf8') : '';
  step('the Companion log has the helper\'s output and no token', /\[helper\]/.test(logText) && !logText.includes(token.token.split('.')[2]),
    logFile ? path.relative(dirs.userData, logFile) : 'no log file');
  if (logFile) writeFileSync(path.join(artifacts, 'Companion.log'), logText);
  process.kill(before[0], 'SIGKILL');
  const after = await waitFor(() => { const p = helperPids(sid); return p.length === 1 && p[0] !== before[0] ? p : undefined; }, 'a new helper', 20000);
  await waitFor(async () => (await health(port1)) === 200, 'the restarted server', 20000);
  step('kill -9 of the helper is followed by a restart', true, `pid ${before[0]} -> ${after[0]}`);

  // 7. the Settings UI moves the port
  await palette('Preferences: Open Settings (UI)');
  const search = page.locator('.settings-editor .suggest-input-container textarea, .settings-editor .search-container input, .settings-editor .monaco-editor textarea').first();
  await search.waitFor({ timeout: 15000 });
  await search.focus(); // the search box has focus when the editor opens; this makes sure
  await page.keyboard.type('companion.server.port');
  const portInput = page.locator('.settings-editor .setting-item-contents', { hasText: 'Port of the WebSocket server' }).locator('input').first();
  await portInput.waitFor({ timeout: 15000 });
  await portInput.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(String(port2));
  await page.keyboard.press('Tab');
  await waitFor(async () => (await health(port2)) === 200, `the server on :${port2}`, 20000);
  await waitFor(async () => (await health(port1)) === 0, `:${port1} to close`, 10000);
  const text2 = await waitFor(async () => { const t = await statusItem.innerText(); return t.includes(`:${port2}`) ? t : ''; }, 'status bar on the new port', 15000);
  step('changing companion.server.port in the Settings UI moves the server', true, `${port1} -> ${port2}; ${text2.replace(/\s+/g, ' ')}`);
  await page.locator('#workbench\\.parts\\.statusbar').screenshot({ path: path.join(artifacts, 'statusbar-moved.png') });

  // 8. a taken port: a message naming it with "Change Port", which opens the setting
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = blocker.address().port;
  await portInput.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(String(taken));
  await page.keyboard.press('Tab');
  const toast = page.locator('.notification-toast', { hasText: 'already in use' }).first();
  await toast.waitFor({ timeout: 20000 });
  const toastText = (await toast.innerText()).replace(/\s+/g, ' ');
  await page.screenshot({ path: path.join(artifacts, 'port-taken.png') });
  step('a taken port shows a message naming the port', toastText.includes(String(taken)) && toastText.includes('Change Port'), toastText);
  await waitFor(async () => (await statusItem.innerText()).includes('error'), 'status bar error', 10000).then(
    () => step('status bar shows the error', true), (e) => step('status bar shows the error', false, e.message));
  await toast.locator('.monaco-button', { hasText: 'Change Port' }).click();
  const port3 = await freePort();
  const portInput3 = page.locator('.settings-editor .setting-item-contents', { hasText: 'Port of the WebSocket server' }).locator('input').first();
  await portInput3.waitFor({ timeout: 15000 });
  await portInput3.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(String(port3));
  await page.keyboard.press('Tab');
  await waitFor(async () => (await health(port3)) === 200, `the server on :${port3}`, 20000);
  step('Change Port opens the setting; a free port starts the server again', true, `:${port3}`);
  await new Promise((r) => blocker.close(r));
  // 8b. Link WhatsApp: the bridge bundled in the VSIX (WhatsApp played by its in-memory stand-in) shows a QR code, then "Linked"
  const bridgePids = () => execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')
    .filter((l) => l.includes(`${path.sep}bridge${path.sep}companion-whatsapp.mjs`)).map((l) => Number(l.trim().split(/\s+/)[0]));
  await palette('Companion: Link WhatsApp');
  const waFrame = (sel) => waitFor(async () => {
    for (const f of page.frames()) if (await f.$(sel).catch(() => null)) return f;
    return undefined;
  }, sel, 30000);
  const waItem = page.locator('.statusbar-item', { hasText: 'WhatsApp' }).first();
  const qrFrame = await waFrame('img#qr[alt="WhatsApp QR code"]').catch(() => undefined);
  const qrShown = qrFrame ? await qrFrame.$eval('#qr', (img) => img.complete && img.naturalWidth > 0).catch(() => false) : false;
  const waLinking = await waItem.innerText().catch(() => '');
  await page.screenshot({ path: path.join(artifacts, 'whatsapp-qr.png') });
  step('Link WhatsApp shows a QR code from the bundled bridge (in-memory WhatsApp stand-in)', qrShown && /WhatsApp: linking/.test(waLinking),
    waLinking.replace(/\s+/g, ' '));
  const linked = await waFrame('#linked').then(() => true, () => false);
  const waLinked = await waitFor(async () => { const t = await waItem.innerText(); return /WhatsApp: linked/.test(t) ? t : ''; }, 'status bar linked', 10000).catch(() => '');
  await page.screenshot({ path: path.join(artifacts, 'whatsapp-linked.png') });
  step('...then "Linked", and the status bar says so', linked && waLinked !== '', waLinked.replace(/\s+/g, ' '));
  const bPids = bridgePids();
  const bArgv = bPids.length === 1 ? readFileSync(`/proc/${bPids[0]}/cmdline`, 'utf8').split('\0').filter(Boolean) : [];
  step('one bridge runs, from the VSIX, with the editor\'s Node, and no token in its argv',
    bPids.length === 1 && bArgv[1]?.startsWith(dirs.exts + path.sep) && bArgv.includes('--stop-with-parent') && !bArgv.some((a) => a.split('.').length === 3 && a.length > 100),
    `pids ${bPids.join(',')}: ${bArgv.map((a) => path.basename(a)).join(' ')}`);

  // 8c. A pairing code: a number not on the allowlist writes; VS Code asks; Approve adds it to companion.whatsapp.allow
  const t8c = Date.now();
  const STRANGER = '+15551230001';
  let waSeq = 0;
  const waSay = (m) => {
    mkdirSync(path.join(waChat, 'in'), { recursive: true });
    const tmp = path.join(waChat, `.${++waSeq}.tmp`);
    writeFileSync(tmp, JSON.stringify(m));
    renameSync(tmp, path.join(waChat, 'in', `${String(waSeq).padStart(4, '0')}.json`)); // whole, or not there
  };
  const waSent = () => {
    try { return readFileSync(path.join(waChat, 'sent.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)); } catch { return []; }
  };
  const toStranger = () => waSent().filter((m) => m.to === STRANGER);
  waSay({ from: STRANGER, text: 'status' });
  const codeReply = await waitFor(() => toStranger().find((m) => /Your code: [A-Z2-9]{6}/.test(m.text)), 'the code reply', 10000).catch(() => undefined);
  const waCode = codeReply ? /Your code: ([A-Z2-9]{6})/.exec(codeReply.text)[1] : '';
  step('a message from a number not on the allowlist gets the code reply (one, nothing else)', waCode !== '' && toStranger().length === 1,
    codeReply ? codeReply.text.replace(/\s+/g, ' ') : JSON.stringify(waSent()));
  const pairToast = page.locator('.notification-toast', { hasText: 'asks to use Companion' }).first();
  const pairToastOk = await pairToast.waitFor({ timeout: 10000 }).then(() => true, () => false);
  const pairToastText = pairToastOk ? (await pairToast.innerText()).replace(/\s+/g, ' ') : '';
  const pairButtons = pairToastOk ? await pairToast.locator('.monaco-button').allInnerTexts() : [];
  await page.screenshot({ path: path.join(artifacts, 'whatsapp-pairing.png') });
  step('VS Code shows a notification naming the number and the code, with Approve and Deny',
    pairToastText.includes(STRANGER) && waCode !== '' && pairToastText.includes(waCode) && JSON.stringify(pairButtons.map((b) => b.trim())) === JSON.stringify(['Approve', 'Deny']),
    `${pairToastText}; buttons ${JSON.stringify(pairButtons)}`);
  if (pairToastOk) await pairToast.locator('.monaco-button', { hasText: 'Approve' }).click();
  // Read back from the settings files: the remote machine's (where code-server keeps machine-scoped settings) or the User one.
  const allowIn = () => {
    for (const f of [path.join(dirs.userData, 'Machine', 'settings.json'), path.join(dirs.userData, 'User', 'settings.json')]) {
      try {
        const v = JSON.parse(readFileSync(f, 'utf8'))['companion.whatsapp.allow'];
        if (Array.isArray(v)) return { file: path.relative(dirs.userData, f), allow: v };
      } catch { /* missing or not written yet */ }
    }
    return undefined;
  };
  const allowed = await waitFor(() => { const a = allowIn(); return a?.allow.includes(STRANGER) ? a : undefined; }, 'the number in companion.whatsapp.allow', 10000).catch(() => allowIn());
  const welcomed = await waitFor(() => toStranger().some((m) => /Welcome/.test(m.text)), 'the welcome', 10000).then(() => true, () => false);
  step('Approve adds the number to companion.whatsapp.allow (read back from the settings) and the bridge welcomes it',
    Boolean(allowed?.allow.includes(STRANGER)) && welcomed, `${allowed?.file}: ${JSON.stringify(allowed?.allow)}`);
  const before8c = toStranger().length;
  waSay({ from: STRANGER, text: 'status' });
  const answer = await waitFor(() => toStranger().slice(before8c)[0], "the number's next message answered", 10000).catch(() => undefined);
  const waLog = readFileSync(newestCompanionLog(), 'utf8');
  step("the number's next message is answered by the workspace, without a restart of the bridge",
    answer !== undefined && !/Your code|Welcome|offline/i.test(answer.text) && !/allow changed; restarting the bridge/.test(waLog) && bridgePids().length === 1,
    `${answer ? answer.text.replace(/\s+/g, ' ').slice(0, 100) : 'no answer'} (${Date.now() - t8c} ms)`);

  // 9. the editor dies (kill -9 of the extension host): the helper does not outlive it
  const [orphan] = helperPids(sid);
  const host = Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(orphan)], { encoding: 'utf8' }).trim());
  const aliveBefore = (() => { try { process.kill(orphan, 0); return true; } catch { return false; } })();
  process.kill(host, 'SIGKILL'); // no deactivate can run: only the helper's own watch ends it
  const t0 = Date.now();
  await waitFor(() => { try { process.kill(orphan, 0); return false; } catch { return true; } }, 'the helper to exit after its editor', 10000, 50);
  const goneMs = Date.now() - t0;
  step('kill -9 of the extension host: the helper exits too (within 3 s)', aliveBefore && goneMs < 3000, `helper ${orphan} gone ${goneMs} ms after its parent ${host}`);
  const bridgeGone = await waitFor(() => bridgePids().length === 0, 'the WhatsApp bridge to exit after its editor', 10000, 100).then(() => true, () => false);
  step('...and so does the WhatsApp bridge (--stop-with-parent)', bridgeGone, `bridges left: ${bridgePids().join(',') || 'none'}`);
  await page.goto('about:blank');
  await stopSession(sid);

  // 10. an untrusted workspace: nothing starts, the status bar says why
  const untrustedWs = path.join(root, 'untrusted');
  mkdirSync(untrustedWs);
  writeFileSync(path.join(untrustedWs, 'x.txt'), 'x\n');
  const u = await launch(untrustedWs, { trusted: false });
  const uItem = u.page.locator('.statusbar-item', { hasText: 'Companion' }).first();
  const uText = await waitFor(async () => { const t = await uItem.innerText(); return t.includes('restricted') ? t : ''; }, 'restricted mode in the status bar', 30000);
  await sleep(2000);
  step('untrusted workspace: status bar says restricted mode, no helper runs',
    helperPids(u.sid).length === 0 && (await health(port3)) === 0, uText.replace(/\s+/g, ' '));
  await u.page.locator('#workbench\\.parts\\.statusbar').screenshot({ path: path.join(artifacts, 'statusbar-restricted.png') });
  // granting trust starts it (autoStart)
  // the startup trust dialog is still open: answer it
  await u.page.getByRole('button', { name: 'Yes, I trust the authors' }).click({ timeout: 15000 });
  await waitFor(() => helperPids(u.sid).length === 1, 'a helper after trust', 20000);
  const trustedText = await waitFor(async () => { const t = await uItem.innerText(); return /Companion :\d+/.test(t) ? t : ''; }, 'running after trust', 20000);
  step('granting Workspace Trust starts Companion', true, trustedText.replace(/\s+/g, ' '));
  await u.page.goto('about:blank');
  await stopSession(u.sid);

  // 11. a hostile workspace (trusted): its settings try to replace the
  // verification key, the listen address and the helper binary. Both forms a
  // settings file can take: flat keys (VS Code drops machine-scoped ones from
  // workspace settings) and a nested "companion" object (which VS Code's scope
  // filter lets through; the extension's own reading drops it).
  // Machine-scoped settings of a remote window (code-server is one) live in
  // <user-data-dir>/Machine/settings.json; the User file's are ignored there.
  const hostileWs = path.join(root, 'hostile');
  mkdirSync(path.join(hostileWs, '.vscode'), { recursive: true });
  writeFileSync(path.join(hostileWs, 'README.md'), 'nothing to see\n');
  const { publicKey: repoPub, privateKey: repoPriv } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const repoPem = repoPub.export({ type: 'spki', format: 'pem' });
  const marker = path.join(root, 'workspace-helper-ran');
  const fakeHelper = path.join(root, 'workspace-helper.sh');
  writeFileSync(fakeHelper, `#!/bin/sh\ntouch '${marker}'\nexit 1\n`);
  chmodSync(fakeHelper, 0o755);
  const portH = await freePort();
  writeFileSync(path.join(hostileWs, '.vscode', 'settings.json'), JSON.stringify({
    companion: { auth: { algorithm: 'RS256', publicKey: repoPem }, server: { host: '0.0.0.0' }, helper: { path: fakeHelper } },
    'companion.auth.algorithm': 'RS256',
    'companion.auth.publicKey': repoPem,
    'companion.server.host': '0.0.0.0',
    'companion.helper.path': fakeHelper,
    'companion.server.port': portH, // window-scoped: a workspace may pick its port
  }, null, 2));
  mkdirSync(path.join(dirs.userData, 'Machine'), { recursive: true });
  writeFileSync(path.join(dirs.userData, 'Machine', 'settings.json'), JSON.stringify({ 'companion.limits.maxConnections': 3 }, null, 2));
  const userSettingsFile = path.join(dirs.userData, 'User', 'settings.json');
  writeFileSync(userSettingsFile, JSON.stringify({ ...JSON.parse(readFileSync(userSettingsFile, 'utf8')), 'companion.limits.maxConnections': 2 }, null, 2));

  // Each check is its own step: one that fails does not hide the others.
  const h = await launch(hostileWs, { trusted: true });
  const up = await waitFor(async () => (await health(portH)) === 200, `the helper on :${portH}`, 60000).then(() => true, () => false);
  step("hostile workspace: its window-scoped port applies (its settings file is read)", up, `:${portH}`);
  const hPids = helperPids(h.sid);
  const exe = hPids.length === 1 ? execFileSync('readlink', [`/proc/${hPids[0]}/exe`], { encoding: 'utf8' }).trim() : '';
  step("hostile workspace: its helper.path is never run; the bundled helper is",
    !existsSync(marker) && exe.startsWith(dirs.exts + path.sep) && exe.endsWith(`${path.sep}bin${path.sep}companion-helper`),
    `marker ${existsSync(marker) ? 'present' : 'absent'}; helper ${path.relative(root, exe)}`);
  const bound = listeners(portH);
  step('hostile workspace: server.host ignored, the server listens on 127.0.0.1 only',
    bound.length > 0 && bound.every((a) => a === '127.0.0.1'), `listening on ${JSON.stringify(bound)} (/proc/net/tcp*)`);

  const urlH = `ws://127.0.0.1:${portH}/ws`;
  const wsIdH = createHash('sha256').update(hostileWs).digest('hex').slice(0, 16);
  const paired = await pairDevice(h.page, { name: 'e2e-hostile' }).catch((e) => ({ error: e.message }));
  const okAuth = paired.token ? await tryAuth(urlH, paired.token, paired.ws).catch((e) => ({ error: e.message })) : paired;
  step('hostile workspace: HS256 with its derived key still rules (a Pair Device token authenticates)',
    okAuth?.success === true && paired.ws === wsIdH, paired.ws ? `workspace ${paired.ws}` : JSON.stringify(okAuth));
  const now = Math.floor(Date.now() / 1000);
  const repoToken = jwt('RS256', { sub: 'repo-author', workspaceId: wsIdH, scope: 'read run editor', iat: now, exp: now + 600 },
    (input) => sign('sha256', input, repoPriv));
  const repoAuth = await tryAuth(urlH, repoToken, wsIdH).catch((e) => ({ error: e.message }));
  step("hostile workspace: a token signed with the workspace's RSA key is refused",
    repoAuth?.success === false && repoAuth?.error?.code === 'AUTH_INVALID', JSON.stringify(repoAuth?.error));
  const otherAuth = await tryAuth(urlH, token.token, token.ws).catch((e) => ({ error: e.message }));
  step("another workspace's Pair Device token is refused: its key is not this workspace's (AUTH_INVALID)",
    otherAuth?.success === false && otherAuth?.error?.code === 'AUTH_INVALID', JSON.stringify(otherAuth?.error));

  const hLogFile = newestCompanionLog();
  const hLog = hLogFile ? readFileSync(hLogFile, 'utf8') : '';
  if (hLogFile) writeFileSync(path.join(artifacts, 'Companion-hostile.log'), hLog);
  const ignored = /workspace settings ignored: (.*?)\. These/.exec(hLog)?.[1] ?? '';
  step('hostile workspace: one warning names the ignored workspace keys, without their values',
    ['companion.auth.algorithm', 'companion.auth.publicKey', 'companion.helper.path', 'companion.server.host'].every((k) => ignored.includes(k)) &&
      (hLog.match(/workspace settings ignored/g) ?? []).length === 1 && !hLog.includes('BEGIN PUBLIC KEY') && !hLog.includes('0.0.0.0'),
    ignored);
  const priv = /files the helper must not serve: (.*)$/m.exec(hLog)?.[1]?.split(', ') ?? [];
  step('initialize names the extension\'s storage and log folders as private paths',
    priv.length === 3 && priv.every((p) => path.isAbsolute(p)) && hLogFile !== undefined && priv.includes(path.dirname(hLogFile)) &&
      priv.includes(path.join(dirs.userData, 'User', 'globalStorage', 'companion.companion')),
    priv.map((p) => path.relative(dirs.userData, p)).join(', '));

  // the remote machine's settings apply (maxConnections 3), the User file's (2) do not
  const open = [];
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push(await upgradeStatus(urlH, open));
  for (const w of open) w.close();
  step('a machine-scoped setting from the remote machine settings (Machine/settings.json) applies',
    JSON.stringify(statuses) === JSON.stringify([101, 101, 101, 503]), `upgrades ${JSON.stringify(statuses)} with maxConnections 3 there, 2 in User`);
  await h.page.screenshot({ path: path.join(artifacts, 'hostile-workspace.png') });
} catch (e) {
  step('e2e run', false, e.message);
  try { await cs.browser?.pages()[0]?.screenshot({ path: path.join(artifacts, 'failure.png') }); } catch { /* no page */ }
} finally {
  await cs.cleanup(artifacts, steps);
}
console.log(`\ne2e: ${steps.results.length - steps.failed} passed, ${steps.failed} failed`);
process.exit(steps.failed ? 1 : 0);
