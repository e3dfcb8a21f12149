// The web suite's world: the REAL companion-helper (`serve`, in a git
// fixture, with its own config home), which serves the app itself from
// the table embedded in its binary (so the page, its headers and CSP, and
// its WebSocket are exactly what a phone gets, and the page's own origin
// needs no allowedOrigins entry), and a phone-sized Chromium (Debian's)
// driven by playwright-core.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WEB = path.resolve(here, '../..');
export const ROOT = path.resolve(WEB, '..');
export const DIST = path.join(WEB, 'dist');
export const HELPER_BIN = process.env.HELPER_BIN || path.join(ROOT, 'build/companion-helper');
export const IMAGES = path.join(ROOT, 'docs/images');
export const CSP = "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const made = [];
process.on('exit', () => {
  for (const d of made) try { rmSync(d, { recursive: true, force: true }); } catch { /* still in use */ }
});
export function tempDir(prefix) {
  const d = realpathSync(mkdtempSync(path.join(tmpdir(), prefix)));
  made.push(d);
  return d;
}

const git = (cwd, ...args) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: cwd } }).trim();

export const EVIL = [
  '# Notes <script>window.__pwned = 1; alert("script")</script>',
  '',
  '<img src="x" onerror="window.__pwned = 2; alert(\'img\')">',
  '',
  '<div class="x">raw <b>html</b> block</div>',
  '',
  '[click me](javascript:alert(3)) and <a href="javascript:alert(4)">a link</a>',
  '',
  '<iframe src="https://example.com"></iframe>',
  '',
  '![pic](https://example.com/pic.png)',
  '',
  '**bold** and `code <script>`',
  '',
].join('\n');

/* A repository with every kind of change: ahead of its upstream by one
 * commit, a staged file, unstaged edits (one with <script> in it), an
 * untracked file, a binary file, a big file, a Markdown file that tries to
 * inject HTML, and a 5,000-line change. */
export function makeFixture() {
  const dir = tempDir('companion-web-ws-');
  const remote = tempDir('companion-web-remote-');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', 'Ada Lovelace');
  git(dir, 'config', 'user.email', 'ada@example.com');
  mkdirSync(path.join(dir, 'src'));
  writeFileSync(path.join(dir, 'README.md'), '# Fixture\n\nA workspace for the web tests.\n');
  writeFileSync(path.join(dir, 'src/app.js'), Array.from({ length: 30 }, (_, i) => `const line${i + 1} = ${i + 1};`).join('\n') + '\n');
  writeFileSync(path.join(dir, 'src/page.html'), '<p>hello</p>\n');
  writeFileSync(path.join(dir, 'big.txt'), Array.from({ length: 5000 }, (_, i) => `line ${i + 1} of the big file`).join('\n') + '\n');
  writeFileSync(path.join(dir, 'evil.md'), EVIL);
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'Initial commit');
  git(remote, 'init', '-q', '--bare');
  git(dir, 'remote', 'add', 'origin', remote);
  git(dir, 'push', '-q', '-u', 'origin', 'main');
  writeFileSync(path.join(dir, 'CHANGES.md'), '- first change\n');
  git(dir, 'add', 'CHANGES.md');
  git(dir, 'commit', '-q', '-m', 'Add a change log <b>bold</b>');
  // Working tree changes.
  const app = readFileSync(path.join(dir, 'src/app.js'), 'utf8').split('\n');
  app[4] = 'const line5 = "five";';
  app.splice(10, 0, 'const added = true;');
  writeFileSync(path.join(dir, 'src/app.js'), app.join('\n'));
  writeFileSync(path.join(dir, 'src/page.html'), '<p>hello</p>\n<script>window.__pwned = 3; alert("diff")</script>\n');
  writeFileSync(path.join(dir, 'big.txt'), Array.from({ length: 5000 }, (_, i) => `line ${i + 1} of the big file, changed`).join('\n') + '\n');
  writeFileSync(path.join(dir, 'src/staged.js'), 'export const staged = 1;\n');
  git(dir, 'add', 'src/staged.js');
  writeFileSync(path.join(dir, 'notes.txt'), 'untracked notes\n');
  writeFileSync(path.join(dir, 'image.bin'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe, 0x00, 0x01, 0x02]));
  writeFileSync(path.join(dir, 'large.log'), 'x'.repeat(100) .concat('\n').repeat(3000)); // 303,000 bytes: over fs.read's 256 KiB default
  return dir;
}

export const TASKS = {
  color: { command: 'printf', args: ['\\033[31mred error\\033[0m plain \\033[1;32mbold green\\033[0m\\n\\033[38;5;208morange\\033[0m <b>not bold</b>\\nok\\n'] },
  slow: { command: 'sleep', args: ['30'] },
  fail: { command: 'sh', args: ['-c', 'echo "about to fail"; exit 3'] },
};

/* `companion-helper serve` with its own config home. */
export class Helper {
  constructor({ workspace, config, home, scope = 'read,run' }) {
    Object.assign(this, { workspace, config, home, scope });
  }

  get env() {
    return { ...process.env, XDG_CONFIG_HOME: path.join(this.home, 'config'), XDG_STATE_HOME: path.join(this.home, 'state'), HOME: this.home };
  }

  /* A restart keeps the port: the page's origin is the helper's. */
  async start() {
    this.stdout = '';
    this.stderr = '';
    this.child = spawn(HELPER_BIN, ['serve', '--port', String(this.port || 0), '--config', this.config, '--workspace', this.workspace, '--scope', this.scope],
      { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d) => { this.stdout += d; });
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.exited = new Promise((r) => this.child.on('exit', r));
    const deadline = Date.now() + 15000;
    while (!this.stdout.includes('Press Ctrl+C')) {
      if (this.child.exitCode !== null) throw new Error(`serve exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no banner: ${this.stdout} ${this.stderr}`);
      await sleep(20);
    }
    const field = (name) => (this.stdout.match(new RegExp(`${name}:\\s+(\\S+)`)) || [])[1];
    this.url = field('URL');
    this.workspaceId = field('Workspace id');
    const tokenFile = field('Token file');
    this.token = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : field('Token');
    this.port = Number(new URL(this.url).port);
    return this;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }

  /* `companion-helper token` in the same config home. */
  mint({ scope = 'read,run', ttl = '1h', user = 'phone' } = {}) {
    return execFileSync(HELPER_BIN, ['token', '--scope', scope, '--ttl', ttl, '--user', user, '--workspace', this.workspace, '--config', this.config],
      { env: this.env, encoding: 'utf8' }).trim();
  }

  /* `companion-helper token --pairing`: a single-use pairing token (the
   * link it prints on stderr is not needed: pairLink builds the same). */
  mintPairing({ scope = this.scope, ttl = '1h', user = 'phone', name = 'test phone' } = {}) {
    return execFileSync(HELPER_BIN, ['token', '--pairing', '--name', name, '--scope', scope, '--ttl', ttl, '--user', user, '--workspace', this.workspace, '--config', this.config],
      { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  }

  /* A plain WebSocket client straight to the helper (not through the page). */
  async client(token = this.token) {
    const ws = new WebSocket(this.url);
    await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
    const queue = [];
    ws.on('message', (m) => queue.push(JSON.parse(m.toString())));
    const next = async (pred, ms = 15000) => {
      const end = Date.now() + ms;
      for (;;) {
        const i = queue.findIndex(pred);
        if (i >= 0) return queue.splice(i, 1)[0];
        if (Date.now() > end) throw new Error(`no message; got ${JSON.stringify(queue)}`);
        await sleep(20);
      }
    };
    ws.send(JSON.stringify({ type: 'auth', id: 'a', data: { token, workspaceId: this.workspaceId } }));
    const a = await next((m) => m.id === 'a');
    if (!a.data.success) throw new Error(`auth: ${JSON.stringify(a)}`);
    return { ws, next, send: (o) => ws.send(JSON.stringify(o)), close: () => ws.close() };
  }
}

/* Everything a test file needs: fixture and helper (which serves the app). */
export async function startWorld({ scope = 'read,run', extraConfig = {} } = {}) {
  const home = tempDir('companion-web-home-');
  mkdirSync(path.join(home, 'config'), { recursive: true });
  const workspace = makeFixture();
  const config = path.join(home, 'serve.json');
  writeFileSync(config, JSON.stringify({
    server: { host: '127.0.0.1' },
    auth: { leewaySeconds: 0 },
    tasks: TASKS,
    ...extraConfig,
  }), { mode: 0o600 });
  const helper = new Helper({ workspace, config, home, scope });
  await helper.start();
  const origin = `http://127.0.0.1:${helper.port}`;
  return {
    home, workspace, helper, origin,
    pairLink(token = helper.token, { url = `ws://127.0.0.1:${helper.port}/ws`, path: p = '/' } = {}) {
      const payload = { v: 1, workspaceId: helper.workspaceId, token };
      if (url) payload.url = url;
      return `${origin}${p}#pair=${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    },
    async close() {
      await helper.stop();
    },
  };
}

export async function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
}

/* A phone: 390x844, touch, mobile; with every CSP violation, page error,
 * console error and dialog recorded (tests assert they stay empty). */
export async function phone(browser, { colorScheme = 'light' } = {}) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme,
    serviceWorkers: 'allow',
  });
  const problems = { csp: [], errors: [], dialogs: [] };
  /* What the page's WebSockets did (not a failure by itself): explain()
   * prints it with the screen's text when a wait times out. */
  const trail = [];
  const t0 = Date.now();
  const note = (what) => { trail.push(`+${Date.now() - t0} ms ${what}`); if (trail.length > 200) trail.shift(); };
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const watch = (page) => {
    page.on('console', (m) => {
      const t = m.text();
      if (/Content.Security.Policy|Refused to/i.test(t)) problems.csp.push(t);
      else if (m.type() === 'error' && !/WebSocket connection to .* failed|Failed to load resource/.test(t)) problems.errors.push(t);
    });
    page.on('pageerror', (e) => problems.errors.push(String(e)));
    page.on('dialog', (d) => { problems.dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
    page.on('load', () => note(`load ${page.url()}`));
    page.on('websocket', (ws) => {
      note(`ws open ${ws.url().replace(/token=[^&]*/, 'token=…')}`);
      ws.on('framesent', (f) => note(`ws > ${String(f.payload).replace(/"token":"[^"]*"/, '"token":"…"').slice(0, 160)}`));
      ws.on('framereceived', (f) => note(`ws < ${String(f.payload).slice(0, 160)}`));
      ws.on('socketerror', (e) => note(`ws error ${e}`));
      ws.on('close', () => note('ws closed'));
    });
  };
  context.on('page', watch);
  const page = await context.newPage();
  return {
    context, page, problems,
    /* Waits for a locator; on a timeout the error also says what the
     * screen showed and what the page's WebSockets did. */
    async expect(locator, opts) {
      try {
        await locator.waitFor(opts);
      } catch (e) {
        const text = await page.evaluate(() => document.body.innerText).catch((x) => `(no text: ${x})`);
        const phase = await page.evaluate(() => document.querySelector('[data-phase]')?.getAttribute('data-phase') ?? '-').catch(() => '?');
        e.message += `\n-- screen (phase ${phase}):\n${text.slice(0, 1500)}\n-- websockets:\n${trail.slice(-60).join('\n')}`;
        throw e;
      }
    },
    /* CSP violations seen by the page's own listener, in every page. */
    async cspEvents() {
      const out = [];
      for (const p of context.pages()) out.push(...(await p.evaluate(() => window.__csp || []).catch(() => [])));
      return out;
    },
  };
}

const AXE = readFileSync(path.join(WEB, 'node_modules/axe-core/axe.min.js'), 'utf8');

/* axe-core in the page: the serious and critical violations. */
export async function axe(page) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(AXE);
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function screenshot(page, name) {
  if (process.env.UPDATE_SCREENSHOTS !== '1') return;
  mkdirSync(IMAGES, { recursive: true });
  await page.screenshot({ path: path.join(IMAGES, `web-${name}.png`) });
}
