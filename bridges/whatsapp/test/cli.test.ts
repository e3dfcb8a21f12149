/** The command line (the built bundle), configuration parsing, backoff and version. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync as mkdtempRaw, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from '../src/config.js';
import type { Config, ParseResult } from '../src/config.js';
import { Backoff } from '../src/backoff.js';
import { VERSION } from '../src/version.js';
import { ensureAuthDir } from '../src/baileys.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/companion-whatsapp.js');
const made: string[] = [];
function mkdtempSync(prefix: string): string {
  const d = mkdtempRaw(prefix);
  made.push(d);
  return d;
}
after(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

function ok(r: ParseResult): Config {
  if (r.kind !== 'run') throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}
function failure(r: ParseResult): string {
  if (r.kind !== 'error') throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.message;
}
const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20000 });

describe('companion-whatsapp command line', () => {
  test('the bundle starts with a node shebang', () => {
    assert.ok(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n'));
  });

  test('--help exits 0 with the usage on stdout', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0);
    for (const flag of ['--helper-url', '--token-file', '--workspace', '--allow', '--auth-dir', '--config', '--json', '--relink', '--wa-version', '--help']) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });

  test('bad flags: usage on stderr, exit 2', () => {
    for (const args of [['--bogus'], ['--helper-url'], ['--allow', 'alice'], ['--helper-url', 'http://x'], ['--json=1']]) {
      const r = run(args);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /Usage: companion-whatsapp/);
      assert.equal(r.stdout, '');
    }
  });

  test('--version is the product version from package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(pkg.version, '0.1.0');
    assert.equal(VERSION, pkg.version);
    assert.equal(run(['--version']).stdout.trim(), 'companion-whatsapp 0.1.0');
  });

  test('runs with Baileys loaded, writes --json events to stdout only, stops on SIGTERM with exit 0', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-cli-'));
    writeFileSync(path.join(dir, 'token'), 'x');
    // No WhatsApp and no helper reachable here: it keeps retrying both until stopped.
    const child = spawn(process.execPath, [BIN, '--json', '--auth-dir', path.join(dir, 'auth'), '--token-file', path.join(dir, 'token'),
      '--helper-url', 'ws://127.0.0.1:9/ws'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => { child.on('exit', (code) => { r(code); }); });
    const deadline = Date.now() + 15000;
    while (!out.includes('"whatsapp":"connecting"')) {
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`no status event; stderr: ${err}`); }
      await new Promise((r) => { setTimeout(r, 50); });
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    assert.equal(await exited, 0, err);
    clearTimeout(timer);
    for (const line of out.trim().split('\n')) {
      const ev = JSON.parse(line) as { type: string; timestamp: number };
      assert.ok(['qr', 'status', 'message', 'sent', 'error'].includes(ev.type), line);
      assert.equal(typeof ev.timestamp, 'number');
    }
    assert.match(err, /companion-whatsapp 0\.1\.0/);
    assert.match(err, /SIGTERM/);
    assert.equal(statSync(path.join(dir, 'auth')).mode & 0o777, 0o700, 'auth folder is private');
  });
});

describe('configuration', () => {
  test('flags', () => {
    const r = { config: ok(parseArgs(['--helper-url', 'ws://127.0.0.1:4000/ws', '--token-file', 'tok', '--workspace', 'abc',
      '--allow', '+15550000002,+1 555 000 0003', '--allow=+15550000004', '--auth-dir', 'auth', '--json', '--relink'], {}, '/home/u')) };
    assert.deepEqual(r.config.workspaces, [{ name: 'default', url: 'ws://127.0.0.1:4000/ws', tokenFile: '/home/u/tok', workspaceId: 'abc' }]);
    assert.deepEqual(r.config.allow, ['+15550000002', '+15550000003', '+15550000004']);
    assert.equal(r.config.authDir, '/home/u/auth');
    assert.equal(r.config.json, true);
    assert.equal(r.config.relink, true);
    assert.equal(r.config.perSenderPerMinute, 10);
  });

  test('defaults: local helper, auth folder under XDG_CONFIG_HOME, nobody but the self chat allowed', () => {
    const r = { config: ok(parseArgs([], { XDG_CONFIG_HOME: '/x/cfg' }, '/w')) };
    assert.equal(r.config.workspaces[0]!.url, 'ws://127.0.0.1:3001/ws');
    assert.equal(r.config.authDir, '/x/cfg/companion/whatsapp-auth');
    assert.deepEqual(r.config.allow, []);
    assert.deepEqual(r.config.groups, []);
  });

  test('--config with workspaces; flags override the first; paths relative to the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-cfg-'));
    const file = path.join(dir, 'bridge.json');
    writeFileSync(file, JSON.stringify({
      allow: ['+15550000002'], groups: ['120363025246125486@g.us'], perSenderPerMinute: 5, authDir: 'wa',
      workspaces: [
        { name: 'app', url: 'ws://127.0.0.1:3001/ws', tokenFile: 'app.token', workspaceId: 'w1' },
        { name: 'lib', url: 'ws://127.0.0.1:3002/ws', tokenFile: '/abs/lib.token' },
      ],
    }));
    const r = { config: ok(parseArgs(['--config', file, '--allow', '+15550000005', '--workspace', 'w9'], {}, '/elsewhere')) };
    assert.deepEqual(r.config.workspaces, [
      { name: 'app', url: 'ws://127.0.0.1:3001/ws', tokenFile: path.join(dir, 'app.token'), workspaceId: 'w9' },
      { name: 'lib', url: 'ws://127.0.0.1:3002/ws', tokenFile: '/abs/lib.token', workspaceId: undefined },
    ]);
    assert.deepEqual(r.config.allow, ['+15550000002', '+15550000005']);
    assert.deepEqual(r.config.groups, ['120363025246125486@g.us']);
    assert.equal(r.config.perSenderPerMinute, 5);
    assert.equal(r.config.authDir, path.join(dir, 'wa'));
  });

  test('--wa-version and "waVersion"', () => {
    assert.equal(ok(parseArgs(['--wa-version', '2.3000.1023456789'], {}, '/w')).waVersion, '2.3000.1023456789');
    assert.equal(ok(parseArgs([], {}, '/w')).waVersion, undefined);
    assert.match(failure(parseArgs(['--wa-version', '2.3000'], {}, '/w')), /not a WhatsApp Web version/);
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-cfg-'));
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ waVersion: '2.3000.5' }));
    assert.equal(ok(parseArgs(['--config', path.join(dir, 'c.json')], {}, dir)).waVersion, '2.3000.5');
    // The environment (COMPANION_WA_VERSION): over the file, under the flag; an empty one is not set.
    const env = { COMPANION_WA_VERSION: '2.3000.77' };
    assert.equal(ok(parseArgs([], env, '/w')).waVersion, '2.3000.77');
    assert.equal(ok(parseArgs(['--config', path.join(dir, 'c.json')], env, dir)).waVersion, '2.3000.77');
    assert.equal(ok(parseArgs(['--wa-version', '2.3000.1023456789'], env, '/w')).waVersion, '2.3000.1023456789');
    assert.equal(ok(parseArgs([], { COMPANION_WA_VERSION: '' }, '/w')).waVersion, undefined);
    assert.match(failure(parseArgs([], { COMPANION_WA_VERSION: 'latest' }, '/w')), /COMPANION_WA_VERSION: not a WhatsApp Web version .*: latest/);
  });

  test('bad config files are errors that name the problem', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-cfg-'));
    const cases: [unknown, RegExp][] = [
      [{ workspaces: [] }, /non-empty list/],
      [{ workspaces: [{ name: 'a b' }] }, /letters, digits/],
      [{ workspaces: [{ name: 'a' }, { name: 'A' }] }, /used twice/],
      [{ allow: ['bob'] }, /E\.164/],
      [{ helperUrl: 'http://x' }, /ws:\/\//],
      [[1, 2], /JSON object/],
    ];
    for (const [content, re] of cases) {
      const file = path.join(dir, 'c.json');
      writeFileSync(file, JSON.stringify(content));
      assert.match(failure(parseArgs(['--config', file], {}, dir)), re);
    }
    assert.match(failure(parseArgs(['--config', path.join(dir, 'missing.json')], {}, dir)), /cannot read --config/);
  });
});

describe('backoff', () => {
  test('1 s doubling to 30 s, each within +-20 %', () => {
    for (const rnd of [0, 0.5, 0.999]) {
      const b = new Backoff(1000, 30000, 0.2, () => rnd);
      const delays = Array.from({ length: 8 }, () => b.next());
      const bases = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
      delays.forEach((d, i) => { assert.ok(d >= bases[i]! * 0.8 && d <= bases[i]! * 1.2, `${i}: ${d}`); });
      b.reset();
      assert.ok(b.next() <= 1200);
    }
  });
});

describe('auth folder', () => {
  test('created with mode 0700, and an existing one is tightened', () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'cw-auth-')), 'a', 'auth');
    ensureAuthDir(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });
});
