#!/usr/bin/env node
// A minimal Agent Client Protocol agent for bench/agents.sh, written without
// the SDK so that the agent's own cost per chunk is as small and as steady
// as Node allows: newline-delimited JSON-RPC on stdin/stdout, synchronous
// writes (fs.writeSync on fd 1, one write(2) per message).
//
// Answers initialize and session/new; session/prompt picks a script from
// the prompt's text:
//
//   stream N RATE    N agent_message_chunk notifications, RATE per second
//                    (0: as fast as the pipe takes them). Each text is
//                    process.hrtime.bigint() (CLOCK_MONOTONIC, ns) read just
//                    before its write, in decimal, so a client on the same
//                    machine can tell the latency of each chunk.
//   flood BYTES SIZE BYTES of text in chunks of SIZE bytes, as fast as the
//                    pipe takes them (letters, no escaping needed).
//   anything else    one chunk "ok" (a short turn).
//
// Then the prompt's response, stopReason end_turn. Nothing but protocol goes
// to stdout.
import fs from 'node:fs';

let nextSession = 0;
let buf = '';

function writeAll(s) {
  const b = Buffer.from(s);
  let off = 0;
  while (off < b.length) {
    try {
      off += fs.writeSync(1, b, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

const send = (msg) => writeAll(`${JSON.stringify(msg)}\n`);
const respond = (id, result) => send({ jsonrpc: '2.0', id, result });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The parts of a chunk notification around its text.
function chunkParts(sessionId) {
  const line = JSON.stringify({
    jsonrpc: '2.0',
    method: 'session/update',
    params: { sessionId, update: { sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: '@' } } },
  });
  const at = line.indexOf('"@"');
  return [line.slice(0, at + 1), `${line.slice(at + 2)}\n`];
}

async function stream(sessionId, n, rate) {
  const [pre, post] = chunkParts(sessionId);
  const period = rate > 0 ? 1e9 / rate : 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (period) {
      // Absolute schedule (no drift): sleep until chunk i is due.
      const due = t0 + BigInt(Math.round(i * period));
      for (;;) {
        const now = process.hrtime.bigint();
        if (now >= due) break;
        const ms = Number(due - now) / 1e6;
        await sleep(ms > 2 ? ms - 1 : 0);
      }
    }
    writeAll(pre + process.hrtime.bigint() + post);
  }
}

function flood(sessionId, bytes, size) {
  const [pre, post] = chunkParts(sessionId);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz';
  const full = pre + alphabet.repeat(Math.ceil(size / 26)).slice(0, size) + post;
  for (let sent = 0; sent < bytes; sent += size) {
    const n = Math.min(size, bytes - sent);
    writeAll(n === size ? full : pre + 'x'.repeat(n) + post);
  }
}

async function prompt(msg) {
  const { sessionId, prompt: blocks } = msg.params || {};
  const text = (blocks || []).filter((b) => b.type === 'text').map((b) => b.text).join('');
  const w = text.trim().split(/\s+/);
  if (w[0] === 'stream') await stream(sessionId, Number(w[1]), Number(w[2]));
  else if (w[0] === 'flood') flood(sessionId, Number(w[1]), Number(w[2]));
  else {
    const [pre, post] = chunkParts(sessionId);
    writeAll(`${pre}ok${post}`);
  }
  respond(msg.id, { stopReason: 'end_turn' });
}

function handle(msg) {
  if (msg.method === 'initialize') {
    respond(msg.id, { protocolVersion: 1, agentCapabilities: { loadSession: false }, authMethods: [] });
  } else if (msg.method === 'session/new') {
    respond(msg.id, { sessionId: `s${++nextSession}` });
  } else if (msg.method === 'session/prompt') {
    prompt(msg).catch((e) => process.stderr.write(`relay-agent: ${e.stack}\n`));
  } else if (msg.method === 'session/cancel') {
    // notification: nothing runs long enough to need cancelling
  } else if (msg.id !== undefined && msg.method) {
    send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } });
  }
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (!line) continue;
    let msg;
    try { msg = JSON.parse(line); } catch { continue; }
    handle(msg);
  }
});
process.stdin.on('end', () => process.exit(0));
