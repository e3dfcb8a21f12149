/* The flat VS Code settings -> the helper's nested object, and package.json. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  EXTENSION_ONLY_KEYS, HELPER_SETTING_DEFAULTS, isLoopbackHost, toHelperSettings, workspaceIdFor,
} from '../src/settingsShape';
import { workspaceKey } from '../src/workspaceKey';

interface ConfigProp { type: string | string[]; default: unknown; description?: string; markdownDescription?: string; minimum?: number; maximum?: number; enum?: string[]; scope?: string }
const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  version: string;
  engines: { vscode: string };
  contributes: { configuration: { title: string; properties: Record<string, ConfigProp> }[]; commands: { command: string; title: string; category: string }[] };
};
const props: Record<string, ConfigProp> = Object.assign({}, ...pkg.contributes.configuration.map((c) => c.properties)) as Record<string, ConfigProp>;

describe('settings', () => {
  it("nests flat keys, adds the workspace's key and drops extension-only keys", () => {
    const flat: Record<string, unknown> = {
      'server.port': 4000, 'server.host': '127.0.0.1', 'auth.algorithm': 'HS256',
      'limits.maxQueuedBytes': 65536, tasks: { t: { command: 'make' } },
      'helper.path': '/x', notifyOnConnect: true,
    };
    const s = toHelperSettings((k) => flat[k], { storedSecret: 'sekrit', workspaceId: 'w' });
    assert.deepEqual(s, {
      server: { port: 4000, host: '127.0.0.1' },
      auth: { algorithm: 'HS256', secret: workspaceKey('sekrit', 'w') },
      limits: { maxQueuedBytes: 65536 },
      tasks: { t: { command: 'make' } },
    });
  });

  it('contributes every contract key with its default, and the extension keys', () => {
    for (const [key, def] of Object.entries(HELPER_SETTING_DEFAULTS)) {
      const p = props[`companion.${key}`];
      assert.ok(p, `companion.${key} is not contributed`);
      assert.deepEqual(p.default, def, `default of companion.${key}`);
      assert.ok(p.description ?? p.markdownDescription, `companion.${key} has no description`);
    }
    for (const key of EXTENSION_ONLY_KEYS) assert.ok(props[`companion.${key}`], key);
    assert.equal(props['companion.helper.path']?.scope, 'machine-overridable');
    assert.equal(props['companion.server.port']?.minimum, 0);
    assert.equal(props['companion.server.port']?.maximum, 65535);
    assert.deepEqual(props['companion.auth.algorithm']?.enum, ['HS256', 'RS256', 'ES256']);
    assert.deepEqual(props['companion.log.level']?.enum, ['error', 'warn', 'info', 'debug']);
    assert.equal(props['companion.auth.secret'], undefined, 'the secret must never be a setting');
    const extra = Object.keys(props).filter(
      (k) => !(k.slice('companion.'.length) in HELPER_SETTING_DEFAULTS) && !EXTENSION_ONLY_KEYS.includes(k.slice('companion.'.length)),
    );
    assert.deepEqual(extra, []);
  });

  it('declares engines, version and commands as required', () => {
    assert.equal(pkg.engines.vscode, '^1.100.0');
    const cmake = readFileSync(path.join(__dirname, '..', '..', '..', 'CMakeLists.txt'), 'utf8');
    assert.equal(pkg.version, /project\(companion VERSION (\S+)/.exec(cmake)?.[1]);
    for (const c of pkg.contributes.commands) assert.equal(c.category, 'Companion', c.command);
    const titles = pkg.contributes.commands.map((c) => c.title).sort();
    assert.deepEqual(titles, ['Notify Paired Devices', 'Open Settings', 'Pair Device', 'Restart Server',
      'Rotate Secret', 'Show Logs', 'Show Status', 'Start Server', 'Stop Server']);
  });

  it('tells loopback hosts from others', () => {
    for (const h of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.1.2.3']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '192.168.1.2', '::', 'example.com']) assert.equal(isLoopbackHost(h), false, h);
  });

  it('makes a stable 16-hex workspace id', () => {
    const a = workspaceIdFor('/home/me/proj', 'x');
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.equal(a, workspaceIdFor('/home/me/proj', 'y'));
    assert.notEqual(a, workspaceIdFor('/home/me/other', 'x'));
  });
});
