#!/usr/bin/env node
// The trivial relay bench/agents.sh compares the helper with: the minimum a
// process must do to carry an ACP agent's output to a WebSocket client.
// It starts the agent (argv after `--`), listens on 127.0.0.1 (an ephemeral
// port, printed as `PORT n` on stdout), and for its one client sends each
// line the agent writes as one text message, as it is, and writes each
// message from the client to the agent's stdin followed by a newline. No
// authentication, no parsing, no queue bound. It exits, and the agent with
// it, when its own stdin closes (the parent went) or on SIGTERM.
//
//   node bench/plain-relay.mjs -- node bench/relay-agent.mjs
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const { WebSocketServer } = require('ws');

const argv = process.argv.slice(process.argv.indexOf('--') + 1);
const agent = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
const bye = () => {
  try { agent.kill('SIGKILL'); } catch { /* gone */ }
  process.exit(0);
};
process.on('SIGTERM', bye);
process.stdin.on('end', bye);
process.stdin.resume();
agent.on('exit', () => process.exit(0));

let client = null;
let rest = '';
agent.stdout.setEncoding('utf8');
agent.stdout.on('data', (d) => {
  rest += d;
  let start = 0;
  let nl;
  while ((nl = rest.indexOf('\n', start)) >= 0) {
    if (client) client.send(rest.slice(start, nl));
    start = nl + 1;
  }
  rest = rest.slice(start);
});

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('listening', () => process.stdout.write(`PORT ${wss.address().port}\n`));
wss.on('connection', (ws) => {
  ws._socket.setNoDelay(true);
  client = ws;
  ws.on('message', (m) => agent.stdin.write(`${m}\n`));
  ws.on('close', () => { if (client === ws) client = null; });
});
