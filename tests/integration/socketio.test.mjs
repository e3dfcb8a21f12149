// Socket.IO v4 (Engine.IO 4) and the envelope dialect on /socket.io/
// (issue 18 items 1 and 3), tried with the clients those users have:
// socket.io-client from npm (default transports: long-polling then the
// upgrade, and websocket only), python-socketio from Debian, `ws` for the
// envelope dialect, raw HTTP for malformed packets and limits. The agent is
// the scripted ACP agent (agents/scripted-agent.mjs).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { Editor, connect, tempDir, sleep, waitFor, httpRequest, mintToken, SLOW } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = path.join(here, 'agents/scripted-agent.mjs');

/* Resolves with the first `event` (optionally matching pred). */
function once(sock, event, pred = () => true, timeoutMs = 15000 * SLOW) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { sock.off(event, on); reject(new Error(`no ${event} within ${timeoutMs} ms`)); }, timeoutMs);
    function on(...args) {
      if (!pred(...args)) return;
      clearTimeout(t);
      sock.off(event, on);
      resolve(args.length > 1 ? args : args[0]);
    }
    sock.on(event, on);
  });
}

function sio(ed, opts = {}) {
  return io(`http://127.0.0.1:${ed.port}`, { reconnection: false, timeout: 5000 * SLOW, ...opts });
}

async function connected(sock) {
  if (sock.connected) return sock;
  await Promise.race([
    once(sock, 'connect'),
    once(sock, 'connect_error').then((e) => { throw new Error(`connect_error: ${e.message}`); }),
  ]);
  return sock;
}

/* A raw Engine.IO polling request. */
async function poll(ed, method, query, body, headers = {}) {
  return httpRequest(ed.port, method, `/socket.io/?${query}`, { Host: `127.0.0.1:${ed.port}`, ...headers }, body);
}

describe('Socket.IO on /socket.io/', () => {
  let ed, dir;
  before(async () => {
    dir = tempDir('companion-sio-');
    ed = new Editor();
    await ed.startServer({
      folders: [dir],
      settings: {
        heartbeat: { intervalSeconds: 1, timeoutSeconds: 3 },
        limits: { commandsPerSecond: 1000, maxMessageBytes: 65536 },
        agents: { scripted: { command: process.execPath, args: [AGENT], env: { SCRIPTED_AGENT_STATE_DIR: path.join(dir, '.agent-state') } } },
        tasks: {
          hello: { command: 'echo', args: ['hello', 'world'] },
          fails: { command: 'sh', args: ['-c', 'echo bad >&2; exit 3'] },
        },
        server: { allowedOrigins: ['https://app.example'] },
      },
    });
  });
  after(async () => { await ed?.stop(); });

  for (const transports of [undefined, ['websocket']]) {
    const label = transports ? 'websocket only' : 'default transports (polling, then upgrade)';
    test(`${label}: connect with auth {token}, system_status with an ack`, async () => {
      const sock = sio(ed, { auth: { token: ed.token({ scope: 'read run agent' }) }, ...(transports ? { transports } : {}) });
      try {
        await connected(sock);
        if (!transports) await waitFor(() => sock.io.engine.transport.name === 'websocket', 'the upgrade to websocket');
        assert.equal(sock.io.engine.transport.name, 'websocket');
        const status = await sock.timeout(5000).emitWithAck('system_status');
        assert.equal(status.success, true);
        assert.equal(status.status, 'healthy');
        const ev = once(sock, 'system_status');
        sock.emit('system_status');
        assert.equal((await ev).status, 'healthy');
      } finally { sock.close(); }
    });
  }
});
