/* The flat VS Code settings -> the helper's nested object, and package.json. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  EXTENSION_ONLY_KEYS, HELPER_SETTING_DEFAULTS, isLoopbackHost, MACHINE_SCOPED_KEYS, readSettings, toHelperSettings,
  workspaceIdFor, type InspectedValue,
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

  it('makes every setting that decides who gets in or how much machine-scoped, and only those', () => {
    const machine = Object.keys(props).filter((k) => props[k]?.scope === 'machine').map((k) => k.slice('companion.'.length));
    assert.deepEqual(machine.sort(), [...MACHINE_SCOPED_KEYS].sort());
    for (const k of ['server.host', 'server.allowedHosts', 'server.allowedOrigins', 'helper.path']) {
      assert.ok(MACHINE_SCOPED_KEYS.includes(k), k);
    }
    for (const k of Object.keys(props)) {
      const key = k.slice('companion.'.length);
      if (key.startsWith('auth.') || key.startsWith('limits.')) assert.ok(MACHINE_SCOPED_KEYS.includes(key), key);
    }
    // the rest may come from a trusted workspace, like tasks.json: no other scope is used
    for (const k of Object.keys(props).filter((k) => !machine.includes(k.slice('companion.'.length)))) {
      assert.equal(props[k]?.scope, undefined, `${k} has scope ${props[k]?.scope ?? ''}`);
    }
  });

  it('reads machine-scoped keys from user settings or defaults only, and names the ignored ones', () => {
    const inspected: Record<string, InspectedValue> = {
      'server.host': { defaultValue: '127.0.0.1', workspaceValue: '0.0.0.0' },
      'auth.publicKey': { defaultValue: '', globalValue: 'USER', workspaceFolderValue: 'REPO' },
      'limits.maxConnections': { defaultValue: 64, globalValue: 5 },
      'helper.path': { defaultValue: '', workspaceValue: '/bin/false' },
      'server.port': { defaultValue: 3001, workspaceValue: 4000 },
    };
    const merged: Record<string, unknown> = {
      'server.host': '0.0.0.0', 'auth.publicKey': 'REPO', 'limits.maxConnections': 5, 'helper.path': '/bin/false',
      'server.port': 4000, tasks: { t: { command: 'make' } },
    };
    const r = readSettings(
      { get: (k) => merged[k], inspect: (k) => inspected[k] },
      ['server.host', 'auth.publicKey', 'limits.maxConnections', 'helper.path', 'server.port', 'tasks', 'auth.issuer'],
    );
    assert.equal(r.get('server.host'), '127.0.0.1');
    assert.equal(r.get('auth.publicKey'), 'USER');
    assert.equal(r.get('limits.maxConnections'), 5);
    assert.equal(r.get('helper.path'), '');
    assert.equal(r.get('auth.issuer'), undefined);
    // window-scoped keys keep VS Code's merged value (a trusted workspace's tasks, its port)
    assert.equal(r.get('server.port'), 4000);
    assert.deepEqual(r.get('tasks'), { t: { command: 'make' } });
    assert.deepEqual(r.ignoredWorkspaceKeys, ['auth.publicKey', 'helper.path', 'server.host']);
  });

  it('reads publicUrl and server.tls from user settings only, and sends them nested', () => {
    for (const k of ['server.publicUrl', 'server.tls.certFile', 'server.tls.keyFile']) {
      assert.equal(props[`companion.${k}`]?.scope, 'machine', `${k}: a repository must not name where it is reached`);
      assert.ok(MACHINE_SCOPED_KEYS.includes(k), k);
    }
    const inspected: Record<string, InspectedValue> = {
      'server.publicUrl': { defaultValue: '', workspaceValue: 'https://evil.example' },
      'server.tls.certFile': { defaultValue: '', globalValue: '/home/me/c.pem', workspaceFolderValue: '/tmp/evil.pem' },
      'server.tls.keyFile': { defaultValue: '', globalValue: '/home/me/k.pem' },
    };
    const merged: Record<string, unknown> = {
      'server.publicUrl': 'https://evil.example', 'server.tls.certFile': '/tmp/evil.pem', 'server.tls.keyFile': '/home/me/k.pem',
    };
    const r = readSettings({ get: (k) => merged[k], inspect: (k) => inspected[k] }, Object.keys(inspected));
    assert.equal(r.get('server.publicUrl'), '');
    assert.deepEqual(r.ignoredWorkspaceKeys, ['server.publicUrl', 'server.tls.certFile']);
    assert.deepEqual(toHelperSettings(r.get, undefined), {
      server: { publicUrl: '', tls: { certFile: '/home/me/c.pem', keyFile: '/home/me/k.pem' } },
    });
  });

  it('forwards agents and defaultAgent like tasks: window-scoped, so a trusted workspace may set them', () => {
    const agents = { copilot: { type: 'vscode-lm', vendor: 'copilot', family: 'gpt-4o' }, claude: { command: 'npx', args: ['a'] } };
    const flat: Record<string, unknown> = { agents, defaultAgent: 'copilot', tasks: {} };
    assert.deepEqual(toHelperSettings((k) => flat[k], undefined), { tasks: {}, agents, defaultAgent: 'copilot' });
    for (const k of ['agents', 'defaultAgent']) {
      assert.equal(props[`companion.${k}`]?.scope, props['companion.tasks']?.scope, k);
      assert.ok(!MACHINE_SCOPED_KEYS.includes(k), k);
    }
    const wsAgents = { local: { command: 'sh' } };
    const r = readSettings(
      {
        get: (k) => (k === 'agents' ? wsAgents : 'local'),
        inspect: (k) => (k === 'agents'
          ? { defaultValue: {}, globalValue: agents, workspaceValue: wsAgents }
          : { defaultValue: '', workspaceFolderValue: 'local' }),
      },
      ['agents', 'defaultAgent'],
    );
    assert.deepEqual(r.get('agents'), wsAgents);
    assert.equal(r.get('defaultAgent'), 'local');
    assert.deepEqual(r.ignoredWorkspaceKeys, []);
    // restricted in an untrusted workspace, like tasks
    const restricted = (pkg as unknown as { capabilities: { untrustedWorkspaces: { restrictedConfigurations: string[] } } })
      .capabilities.untrustedWorkspaces.restrictedConfigurations;
    for (const k of ['companion.tasks', 'companion.agents', 'companion.defaultAgent']) assert.ok(restricted.includes(k), k);
    // the schema offers both kinds of agent
    const schema = (props['companion.agents'] as unknown as { additionalProperties: { oneOf: { required: string[]; properties: Record<string, { enum?: string[] }> }[] } })
      .additionalProperties.oneOf;
    assert.deepEqual(schema.map((s) => s.required), [['command'], ['type']]);
    assert.deepEqual(schema.map((s) => s.properties.type?.enum), [['acp'], ['vscode-lm']]);
    assert.ok('vendor' in (schema[1]?.properties ?? {}) && 'family' in (schema[1]?.properties ?? {}));
  });

  it('contributes every contract key with its default, and the extension keys', () => {
    for (const [key, def] of Object.entries(HELPER_SETTING_DEFAULTS)) {
      const p = props[`companion.${key}`];
      assert.ok(p, `companion.${key} is not contributed`);
      assert.deepEqual(p.default, def, `default of companion.${key}`);
      assert.ok(p.description ?? p.markdownDescription, `companion.${key} has no description`);
    }
    for (const key of EXTENSION_ONLY_KEYS) assert.ok(props[`companion.${key}`], key);
    assert.equal(props['companion.helper.path']?.scope, 'machine', 'a workspace must not pick the binary');
    assert.equal(props['companion.server.port']?.minimum, 0);
    assert.equal(props['companion.server.port']?.maximum, 65535);
    assert.deepEqual(props['companion.auth.algorithm']?.enum, ['HS256', 'RS256', 'ES256']);
    assert.deepEqual(props['companion.log.level']?.enum, ['error', 'warn', 'info', 'debug']);
    assert.equal(props['companion.auth.secret'], undefined, 'the secret must never be a setting');
    // how long an approval waits decides how much: machine-scoped, and sent to the helper
    assert.equal(props['companion.approvals.timeoutSeconds']?.scope, 'machine');
    assert.equal(props['companion.approvals.timeoutSeconds']?.minimum, 5);
    assert.deepEqual(toHelperSettings((k) => (k === 'approvals.timeoutSeconds' ? 60 : undefined), undefined), {
      approvals: { timeoutSeconds: 60 },
    });
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
    assert.deepEqual(titles, ['Allow Always', 'Allow Once', 'Deny', 'Link WhatsApp', 'Notify Paired Devices', 'Open Settings',
      'Pair Device', 'Refresh Devices', 'Rename Device', 'Restart Server', 'Revoke Device', 'Rotate Secret',
      'Show Approvals', 'Show Devices', 'Show Logs', 'Show Status', 'Start Server', 'Stop Server', 'Unlink WhatsApp']);
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
