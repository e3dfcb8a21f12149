// Shared parts of the end-to-end tests (scripts/e2e.mjs, scripts/e2e-lm.mjs):
// a hermetic code-server (its own XDG folders, user data, extensions, a dead
// gallery, Playwright's chromium allowed to reach 127.0.0.1 only), the steps
// and their results file, and the workbench gestures both use (the command
// palette, Pair Device's quick picks and webview), plus a small ws client.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ext = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WebSocket = createRequire(path.join(ext, 'package.json'))('ws');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Steps with a results list; report() ends the run with its exit code. */
export function makeSteps() {
  const results = [];
  let failed = 0;
  return {
    results,
    get failed() { return failed; },
    step(name, ok, detail = '') {
      results.push({ name, ok, detail });
      if (!ok) failed++;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
    },
  };
}

export async function waitFor(fn, what, timeoutMs = 30000, stepMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${last.message})` : ''}`);
    await sleep(stepMs);
  }
}
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}
export function health(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => { req.destroy(); resolve(0); });
  });
}
/* Process ids of `companion-helper --stdio` in a session. */
export function helperPids(sid) {
  const out = execFileSync('ps', ['-eo', 'pid=,sid=,args='], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 3 && Number(f[1]) === sid && f[2].endsWith('companion-helper') && f[3] === '--stdio').map((f) => Number(f[0]));
}
export function findFiles(dir, pred, out = []) {
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) findFiles(p, pred, out); else if (pred(p)) out.push(p);
  }
  return out;
}
export function findFile(dir, pred) {
  return findFiles(dir, pred)[0];
}
/* The newest Companion.log under a user-data dir (one per extension host run). */
export function newestCompanionLog(userData) {
  const logs = findFiles(path.join(userData, 'logs'), (f) => /Companion\.log$/.test(f));
  logs.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return logs[0];
}
export function wsClient(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const msgs = [];
    const c = {
      ws, msgs,
      closed: new Promise((r) => ws.on('close', (code) => r(code))),
      send: (m) => ws.send(JSON.stringify(m)),
      next: (pred, ms = 15000) => waitFor(() => { const i = msgs.findIndex(pred); return i >= 0 ? msgs.splice(i, 1)[0] : undefined; }, 'a ws message', ms, 50),
    };
    ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
    ws.once('open', () => resolve(c));
    ws.once('error', reject);
  });
}

/**
 * A hermetic code-server under root: tools is the folder whose node_modules
 * hold code-server and playwright-core; nodeBin, when set, is put first in
 * PATH (code-server 4.104+ runs on Node 22); userSettings are added to the
 * User settings; extraEnv goes to code-server (and its extension host).
 */
export function codeServerHarness({ tools, root, nodeBin, userSettings = {}, extraEnv = {} }) {
  const { chromium } = createRequire(path.join(tools, 'package.json'))('playwright-core');
  const codeServer = path.join(tools, 'node_modules', '.bin', 'code-server');
  const dirs = {
    xdg: path.join(root, 'xdg'), userData: path.join(root, 'user-data'), exts: path.join(root, 'extensions'),
    ws: path.join(root, 'workspace'), browser: path.join(root, 'browser'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify({
    'remote.autoForwardPorts': false, 'workbench.startupEditor': 'none', 'telemetry.telemetryLevel': 'off',
    'workbench.tips.enabled': false, 'extensions.autoUpdate': false, 'extensions.autoCheckUpdates': false,
    ...userSettings,
  }, null, 2));
  const env = {
    ...process.env,
    ...(nodeBin ? { PATH: `${nodeBin}:${process.env.PATH}` } : {}),
    XDG_CONFIG_HOME: path.join(dirs.xdg, 'config'), XDG_DATA_HOME: path.join(dirs.xdg, 'data'),
    XDG_CACHE_HOME: path.join(dirs.xdg, 'cache'),
    // The helpers' device registries and approval ids: in the run's folder, never ~/.local/state.
    XDG_STATE_HOME: path.join(dirs.xdg, 'state'),
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }),
    ...extraEnv,
  };
  const csArgs = ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.exts, '--config', path.join(root, 'config.yaml')];
  writeFileSync(path.join(root, 'config.yaml'), 'auth: none\ncert: false\n');
  const h = {
    dirs, env, csArgs, log: '', sessions: [], browser: undefined,
    install(vsix) {
      execFileSync(codeServer, [...csArgs, '--install-extension', vsix], { env, stdio: 'inherit' });
    },
    /* Starts code-server (in its own session) and opens folder in chromium. */
    async launch(folder, { trusted }) {
      const csPort = await freePort();
      const cs = spawn('setsid', [codeServer, ...csArgs, '--bind-addr', `127.0.0.1:${csPort}`, '--auth', 'none',
        '--disable-telemetry', '--disable-update-check', ...(trusted ? ['--disable-workspace-trust'] : []), folder], {
        env, stdio: ['ignore', 'pipe', 'pipe'],
      });
      cs.stdout.on('data', (d) => { h.log += d; });
      cs.stderr.on('data', (d) => { h.log += d; });
      const sid = cs.pid; // setsid execs in place: its pid is the session id
      h.sessions.push(sid);
      await waitFor(async () => (await new Promise((r) => http.get(`http://127.0.0.1:${csPort}/healthz`, (res) => { res.resume(); r(res.statusCode === 200); }).on('error', () => r(false)))), 'code-server', 60000);
      if (!h.browser) {
        h.browser = await chromium.launchPersistentContext(dirs.browser, {
          executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1400, height: 900 },
          args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync'],
        });
        await h.browser.route('**/*', (route) => {
          const u = new URL(route.request().url());
          if (['127.0.0.1', 'localhost'].includes(u.hostname) || u.protocol === 'data:' || u.protocol === 'blob:') return route.continue();
          return route.abort();
        });
      }
      const page = h.browser.pages()[0] ?? (await h.browser.newPage());
      await page.goto(`http://127.0.0.1:${csPort}/?folder=${encodeURIComponent(folder)}`);
      await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
      return { page, sid };
    },
    async stopSession(sid) {
      try { process.kill(-sid, 'SIGTERM'); } catch { /* gone */ }
      await sleep(1000);
      try { process.kill(-sid, 'SIGKILL'); } catch { /* gone */ }
    },
    /* Closes the browser, stops every session, writes code-server's log and the results, removes root. */
    async cleanup(artifacts, steps) {
      try { await h.browser?.close(); } catch { /* closed */ }
      for (const sid of h.sessions) await h.stopSession(sid);
      writeFileSync(path.join(artifacts, 'code-server.log'), h.log);
      writeFileSync(path.join(artifacts, 'results.json'), JSON.stringify({ failed: steps.failed, results: steps.results }, null, 2));
      rmSync(root, { recursive: true, force: true });
    },
  };
  return h;
}

/* Runs a command from the palette (F1) by its exact title. */
export async function runCommand(page, title) {
  const input = page.locator('.quick-input-widget input');
  // The palette closes when it loses focus: a view that re-renders just
  // then (the Settings editor after a port change, in CI) hides it at once.
  // Open it again, after Escape, up to three times.
  for (let attempt = 0; ; attempt++) {
    if (attempt) await page.keyboard.press('Escape');
    await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } }).catch(() => {});
    await page.keyboard.press(attempt % 2 ? 'Control+Shift+P' : 'F1');
    try {
      await input.waitFor({ state: 'visible', timeout: attempt < 2 ? 4000 : 10000 });
      break;
    } catch (e) {
      if (attempt >= 2) throw e;
    }
  }
  await input.fill(`>${title}`);
  // Click the row whose label is exactly the title: fuzzy matching may
  // put another command first ("Pair Device" also matches "Notify Paired
  // Devices"), so Enter on the top row is not enough.
  const exact = new RegExp(`^\\s*${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exact }) }).first();
  await row.waitFor({ timeout: 10000 });
  await row.click();
}

/* Pair Device through its quick picks: the device name, the kind ('token':
 * script or bridge, the default; 'phone': a single-use link), read plus the
 * scopes in tick, 1 hour. Answers the webview's values (token and workspace
 * id, or the link), its frame, and the scope rows' ticks as first shown. */
export async function pairDevice(page, { name, tick = [], notToken, kind = 'token' }) {
  await runCommand(page, 'Companion: Pair Device');
  const nameBox = page.locator('.quick-input-widget input');
  await nameBox.waitFor({ state: 'visible' });
  await page.locator('.quick-input-widget', { hasText: 'device name' }).first().waitFor({ timeout: 10000 });
  await nameBox.fill(name);
  await page.keyboard.press('Enter');
  const kindRow = page.locator('.quick-input-list .monaco-list-row', { hasText: kind === 'phone' ? 'Phone (scan a link' : 'Script or bridge' }).first();
  await kindRow.waitFor({ timeout: 10000 });
  await kindRow.click();
  const scopeRow = (scope) => page.locator('.quick-input-list .monaco-list-row').filter({
    has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${scope}\\s*$`) }),
  }).first();
  await scopeRow('read').waitFor({ timeout: 10000 });
  const initial = {};
  for (const scope of ['read', 'run', 'editor', 'approve', 'agent']) {
    const row = scopeRow(scope);
    initial[scope] = (await row.count()) === 0 ? 'absent' : await row.evaluate((el) => {
      const box = el.querySelector('input[type=checkbox]');
      if (box) return box.checked;
      const t = el.querySelector('[aria-checked]') ?? el;
      return t.getAttribute('aria-checked') === 'true';
    });
  }
  const ticked = (scope) => scopeRow(scope).evaluate((el) => {
    const box = el.querySelector('input[type=checkbox]');
    if (box) return box.checked;
    const t = el.querySelector('[aria-checked]') ?? el;
    return t.getAttribute('aria-checked') === 'true';
  });
  for (const scope of tick) {
    // A click that lands while the list re-renders (a tooltip opening) can
    // be lost: click until the row shows it ticked.
    for (let i = 0; i < 3 && !(await ticked(scope)); i++) {
      await scopeRow(scope).locator('input[type=checkbox], .monaco-custom-toggle, .quick-input-list-checkbox').first().click();
      await waitFor(() => ticked(scope), `${scope} ticked`, 2000).catch(() => undefined);
    }
    if (!(await ticked(scope))) throw new Error(`the ${scope} scope could not be ticked`);
  }
  // Accept the scopes (OK, or Enter where the button is not shown), again if
  // the duration step has not come up.
  const hour = page.locator('.quick-input-list .monaco-list-row', { hasText: '1 hour' }).first();
  for (let i = 0; i < 3; i++) {
    const ok = page.locator('.quick-input-widget .monaco-button', { hasText: /^OK$/ }).first();
    if (await ok.isVisible().catch(() => false)) await ok.click();
    else await page.keyboard.press('Enter');
    if (await hour.waitFor({ timeout: 4000 }).then(() => true, () => false)) break;
  }
  await hour.waitFor({ timeout: 10000 });
  await page.keyboard.press('Enter');
  return waitFor(async () => {
    for (const f of page.frames()) {
      if (kind === 'phone') {
        const el = await f.$('#v-link').catch(() => null);
        const link = el ? (await el.innerText()).trim() : '';
        if (link && link !== notToken) return { link, frame: f, initial };
        continue;
      }
      const el = await f.$('#v-token').catch(() => null);
      const tok = el ? (await el.innerText()).trim() : '';
      if (tok && tok !== notToken) return { token: tok, ws: (await (await f.$('#v-workspaceId')).innerText()).trim(), frame: f, initial };
    }
    return undefined;
  }, 'the pairing webview', 20000);
}
