#!/usr/bin/env node
// Scripted ACP agent for the companion-helper integration tests.
//
// The protocol side is the official SDK (@agentclientprotocol/sdk, ACP v1):
// an agent app (`acp.agent()`) connected to ndJsonStream(stdout, stdin).
// Only the "language model" is scripted: the first word of a prompt picks a
// script (see README block below). Nothing but protocol goes to stdout;
// diagnostics go to stderr.
//
// Scripts (first word of the prompt text):
//   echo <text>         agent_message_chunk x N (text split in several chunks), end_turn
//   think               agent_thought_chunk, then a message
//   plan                plan update with 3 entries, then a message
//   tool                tool_call (pending) + session/request_permission;
//                       allow -> tool_call_update completed + "tool ran";
//                       reject/cancelled -> tool_call_update failed + "tool rejected";
//                       stopReason end_turn, or cancelled if session/cancel came
//   write <path> <text> fs/write_text_file then fs/read_text_file; reports
//                       "read: <content>" or "error: <client error message>"
//   slow <ms>           a chunk every 50 ms for <ms>; session/cancel -> "cancelled"
//   drip <ms> <text>    <text> in 12 chunks (cut anywhere), one every <ms> ms
//   paras <n> <ms>      n paragraphs ("Paragraph i of n." and a blank line), one
//                       every <ms> ms, each in two chunks; session/cancel stops
//   flood <bytes>       <bytes> of text in 4 KiB chunks, as fast as stdout takes it
//   crash               one chunk, then process.exit(3)
//   garbage             raw non-JSON lines + a non-JSON-RPC JSON line on stdout,
//                       then a normal message, end_turn
//   hang                never answers session/prompt
//   anything else       echo of the whole prompt text
//
// Environment:
//   SCRIPTED_AGENT_NO_INIT=1          never answer initialize
//   SCRIPTED_AGENT_EXIT_AT_START=<n>  exit(n) immediately
//   SCRIPTED_AGENT_STATE_DIR=<dir>    persist session history there (one JSON
//                                     file per session) so a new agent process
//                                     can session/load a session from an
//                                     earlier one; default: in memory only
//   SCRIPTED_AGENT_DEBUG=1            log every inbound message to stderr

import * as acp from "@agentclientprotocol/sdk";
import { Readable, Writable } from "node:stream";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const env = process.env;

// stdout carries protocol only: route any stray console output to stderr.
console.log = console.info = console.debug = (...a) => console.error(...a);

if (env.SCRIPTED_AGENT_EXIT_AT_START !== undefined && env.SCRIPTED_AGENT_EXIT_AT_START !== "") {
  const code = Number.parseInt(env.SCRIPTED_AGENT_EXIT_AT_START, 10);
  process.stderr.write(`scripted-agent: exiting at start with code ${code}\n`);
  process.exit(Number.isFinite(code) ? code : 1);
}

const DEBUG = env.SCRIPTED_AGENT_DEBUG === "1";
const STATE_DIR = env.SCRIPTED_AGENT_STATE_DIR || "";
const log = (...a) => process.stderr.write(`scripted-agent: ${a.join(" ")}\n`);
const debug = (...a) => {
  if (DEBUG) log(...a);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const FLOOD_CHUNK = 4096;
const FLOOD_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
/** Deterministic flood text: character i of the whole stream is ALPHABET[i % 36]. */
function floodText(offset, len) {
  let s = "";
  for (let i = 0; i < len; i++) s += FLOOD_ALPHABET[(offset + i) % FLOOD_ALPHABET.length];
  return s;
}

// ---------------------------------------------------------------------------
// Session state
// ---------------------------------------------------------------------------

/** sessionId -> { cwd, history: SessionUpdate[], turns: Set<Turn> } */
const sessions = new Map();
let clientCaps = {};
let toolCounter = 0;

function statePath(sessionId) {
  // sessionIds are UUIDs we generated; refuse anything else as a file name.
  if (!/^[A-Za-z0-9_-]+$/.test(sessionId)) return null;
  return path.join(STATE_DIR, `${sessionId}.json`);
}

function persist(sessionId, s) {
  if (!STATE_DIR) return;
  const p = statePath(sessionId);
  if (!p) return;
  try {
    fs.mkdirSync(STATE_DIR, { recursive: true });
    fs.writeFileSync(p, JSON.stringify({ cwd: s.cwd, history: s.history }));
  } catch (e) {
    log(`cannot persist ${sessionId}: ${e.message}`);
  }
}

function lookup(sessionId) {
  let s = sessions.get(sessionId);
  if (!s && STATE_DIR) {
    const p = statePath(sessionId);
    if (p && fs.existsSync(p)) {
      try {
        const saved = JSON.parse(fs.readFileSync(p, "utf8"));
        s = { cwd: saved.cwd, history: saved.history ?? [], turns: new Set() };
        sessions.set(sessionId, s);
      } catch (e) {
        log(`cannot read ${p}: ${e.message}`);
      }
    }
  }
  return s;
}

function requireSession(sessionId) {
  const s = lookup(sessionId);
  if (!s) throw acp.RequestError.sessionNotFound(sessionId);
  return s;
}

// ---------------------------------------------------------------------------
// Turn helpers
// ---------------------------------------------------------------------------

class Turn {
  constructor(sessionId, session, client) {
    this.sessionId = sessionId;
    this.session = session;
    this.client = client;
    this.cancelled = false;
    this.abort = new AbortController();
  }
  cancel() {
    this.cancelled = true;
    this.abort.abort();
  }
  /** Sends one session/update and records it for session/load replay. */
  async update(update) {
    this.session.history.push(update);
    await this.client.notify(acp.methods.client.session.update, {
      sessionId: this.sessionId,
      update,
    });
  }
  message(text) {
    return this.update({ sessionUpdate: "agent_message_chunk", content: { type: "text", text } });
  }
  thought(text) {
    return this.update({ sessionUpdate: "agent_thought_chunk", content: { type: "text", text } });
  }
  /** Resolves after ms, or early (with false) when the turn is cancelled. */
  wait(ms) {
    if (this.cancelled) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.abort.signal.removeEventListener("abort", onAbort);
        resolve(true);
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        resolve(false);
      };
      this.abort.signal.addEventListener("abort", onAbort, { once: true });
    });
  }
  get stop() {
    return { stopReason: this.cancelled ? "cancelled" : "end_turn" };
  }
}

/** Splits text into up to `parts` non-empty pieces whose concatenation is text. */
function splitChunks(text, parts = 4) {
  if (text.length === 0) return [];
  const n = Math.min(parts, text.length);
  const size = Math.ceil(text.length / n);
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

async function scriptEcho(turn, text) {
  for (const piece of splitChunks(text)) {
    if (turn.cancelled) break;
    await turn.message(piece);
  }
  return turn.stop;
}

async function scriptThink(turn) {
  await turn.thought("Thinking: the user wants me to think. Considering options.");
  await turn.message("I thought about it.");
  return turn.stop;
}

async function scriptPlan(turn) {
  await turn.update({
    sessionUpdate: "plan",
    entries: [
      { content: "Read the code", priority: "high", status: "completed" },
      { content: "Write the fix", priority: "medium", status: "in_progress" },
      { content: "Run the tests", priority: "low", status: "pending" },
    ],
  });
  await turn.message("Here is my plan.");
  return turn.stop;
}

const TOOL_OPTIONS = [
  { optionId: "allow-once", kind: "allow_once", name: "Allow" },
  { optionId: "allow-always", kind: "allow_always", name: "Always" },
  { optionId: "reject-once", kind: "reject_once", name: "Reject" },
];

async function scriptTool(turn) {
  const toolCallId = `call_${++toolCounter}`;
  const title = "Running: npm test";
  await turn.update({
    sessionUpdate: "tool_call",
    toolCallId,
    title,
    kind: "execute",
    status: "pending",
    rawInput: { command: "npm test" },
  });
  let outcome;
  try {
    const res = await turn.client.request(acp.methods.client.session.requestPermission, {
      sessionId: turn.sessionId,
      toolCall: { toolCallId, title, kind: "execute", status: "pending" },
      options: TOOL_OPTIONS,
    });
    outcome = res.outcome;
  } catch (e) {
    log(`session/request_permission failed: ${e.message}`);
    outcome = { outcome: "cancelled" };
  }
  debug(`permission outcome ${JSON.stringify(outcome)}`);
  const selected = outcome?.outcome === "selected" ? outcome.optionId : null;
  const allowed = TOOL_OPTIONS.some(
    (o) => o.optionId === selected && (o.kind === "allow_once" || o.kind === "allow_always"),
  );
  if (allowed && !turn.cancelled) {
    await turn.update({
      sessionUpdate: "tool_call_update",
      toolCallId,
      status: "completed",
      content: [{ type: "content", content: { type: "text", text: "42 passing" } }],
    });
    await turn.message("tool ran");
  } else {
    await turn.update({ sessionUpdate: "tool_call_update", toolCallId, status: "failed" });
    await turn.message("tool rejected");
  }
  return turn.stop;
}

function errText(e) {
  return e && typeof e.message === "string" ? e.message : String(e);
}

async function scriptWrite(turn, rest) {
  const m = /^(\S+)(?:\s([\s\S]*))?$/.exec(rest.replace(/^\s+/, ""));
  if (!m) {
    await turn.message("error: usage: write <path> <text>");
    return turn.stop;
  }
  const file = path.isAbsolute(m[1]) ? m[1] : path.resolve(turn.session.cwd, m[1]);
  const content = m[2] ?? "";
  const fsCaps = clientCaps?.fs ?? {};
  if (!fsCaps.writeTextFile || !fsCaps.readTextFile) {
    await turn.message("error: client did not advertise fs.writeTextFile and fs.readTextFile");
    return turn.stop;
  }
  try {
    await turn.client.request(acp.methods.client.fs.writeTextFile, {
      sessionId: turn.sessionId,
      path: file,
      content,
    });
  } catch (e) {
    await turn.message(`error: ${errText(e)}`);
    return turn.stop;
  }
  try {
    const res = await turn.client.request(acp.methods.client.fs.readTextFile, {
      sessionId: turn.sessionId,
      path: file,
    });
    await turn.message(`read: ${res.content}`);
  } catch (e) {
    await turn.message(`error: ${errText(e)}`);
  }
  return turn.stop;
}

async function scriptSlow(turn, rest) {
  const ms = Number.parseInt(rest, 10);
  const total = Number.isFinite(ms) && ms >= 0 ? ms : 1000;
  const start = Date.now();
  let i = 0;
  while (Date.now() - start < total) {
    await turn.message(`tick ${i++} `);
    if (!(await turn.wait(50))) break;
  }
  return turn.stop;
}

async function scriptDrip(turn, rest) {
  const m = /^(\d+)\s([\s\S]*)$/.exec(rest);
  const every = m ? Number.parseInt(m[1], 10) : 500;
  const text = m ? m[2] : rest;
  let first = true;
  for (const piece of splitChunks(text, 12)) {
    if (!first && !(await turn.wait(every))) break;
    first = false;
    await turn.message(piece);
  }
  return turn.stop;
}

async function scriptParas(turn, rest) {
  const [n, ms] = rest.trim().split(/\s+/).map((x) => Number.parseInt(x, 10));
  const count = Number.isFinite(n) && n > 0 ? n : 3;
  const every = Number.isFinite(ms) && ms >= 0 ? ms : 1000;
  for (let i = 1; i <= count; i++) {
    if (i > 1 && !(await turn.wait(every))) break;
    await turn.message(`Paragraph ${i} `);
    await turn.message(`of ${count}.\n\n`);
  }
  return turn.stop;
}

async function scriptFlood(turn, rest) {
  const n = Number.parseInt(rest, 10);
  const total = Number.isFinite(n) && n >= 0 ? n : 1 << 20;
  for (let off = 0; off < total && !turn.cancelled; off += FLOOD_CHUNK) {
    await turn.message(floodText(off, Math.min(FLOOD_CHUNK, total - off)));
  }
  return turn.stop;
}

async function scriptCrash(turn) {
  await turn.message("about to crash");
  log("crash script: exiting with code 3");
  process.exit(3);
}

async function scriptGarbage(turn) {
  // Bypass the SDK on purpose. Each write is a whole line, and the SDK also
  // writes whole lines, so nothing interleaves inside a line.
  process.stdout.write("this is not json\n");
  process.stdout.write("{\"truncated\": \n");
  process.stdout.write(JSON.stringify({ hello: "world", note: "valid JSON, not JSON-RPC" }) + "\n");
  await turn.message("after garbage");
  return turn.stop;
}

function scriptHang() {
  return new Promise(() => {});
}

function promptText(prompt) {
  return (prompt ?? [])
    .filter((b) => b && b.type === "text")
    .map((b) => b.text)
    .join("");
}

async function runPrompt(turn, text) {
  const m = /^\s*(\S+)(?:\s([\s\S]*))?$/.exec(text);
  const cmd = m ? m[1] : "";
  const rest = m && m[2] !== undefined ? m[2] : "";
  switch (cmd) {
    case "echo":
      return scriptEcho(turn, rest);
    case "think":
      return scriptThink(turn);
    case "plan":
      return scriptPlan(turn);
    case "tool":
      return scriptTool(turn);
    case "write":
      return scriptWrite(turn, rest);
    case "slow":
      return scriptSlow(turn, rest);
    case "drip":
      return scriptDrip(turn, rest);
    case "paras":
      return scriptParas(turn, rest);
    case "flood":
      return scriptFlood(turn, rest);
    case "crash":
      return scriptCrash(turn);
    case "garbage":
      return scriptGarbage(turn);
    case "hang":
      return scriptHang();
    default:
      return scriptEcho(turn, text);
  }
}

// ---------------------------------------------------------------------------
// The agent app (SDK)
// ---------------------------------------------------------------------------

const app = acp
  .agent({ name: "scripted-agent" })
  .onRequest(acp.methods.agent.initialize, async ({ params }) => {
    debug(`initialize ${JSON.stringify(params)}`);
    if (env.SCRIPTED_AGENT_NO_INIT === "1") {
      log("SCRIPTED_AGENT_NO_INIT=1: not answering initialize");
      return new Promise(() => {});
    }
    clientCaps = params.clientCapabilities ?? {};
    return {
      protocolVersion: acp.PROTOCOL_VERSION,
      agentCapabilities: { loadSession: true },
      authMethods: [],
      agentInfo: { name: "scripted-agent", title: "Scripted test agent", version: "1.0.0" },
    };
  })
  .onRequest(acp.methods.agent.session.new, async ({ params }) => {
    const sessionId = randomUUID();
    const s = { cwd: params.cwd, history: [], turns: new Set() };
    sessions.set(sessionId, s);
    persist(sessionId, s);
    debug(`session/new ${sessionId} cwd=${params.cwd}`);
    return { sessionId };
  })
  .onRequest(acp.methods.agent.session.load, async ({ params, client }) => {
    const s = requireSession(params.sessionId);
    s.cwd = params.cwd;
    debug(`session/load ${params.sessionId}: replaying ${s.history.length} updates`);
    for (const update of s.history) {
      await client.notify(acp.methods.client.session.update, { sessionId: params.sessionId, update });
    }
    persist(params.sessionId, s);
    return {};
  })
  .onNotification(acp.methods.agent.session.cancel, ({ params }) => {
    debug(`session/cancel ${params.sessionId}`);
    const s = sessions.get(params.sessionId);
    if (!s) return;
    for (const t of s.turns) t.cancel();
  })
  .onRequest(acp.methods.agent.session.prompt, async ({ params, client }) => {
    const s = requireSession(params.sessionId);
    const text = promptText(params.prompt);
    debug(`session/prompt ${params.sessionId}: ${JSON.stringify(text.slice(0, 200))}`);
    // Record the user's turn so that session/load replays the whole conversation.
    for (const block of params.prompt ?? []) s.history.push({ sessionUpdate: "user_message_chunk", content: block });
    const turn = new Turn(params.sessionId, s, client);
    s.turns.add(turn);
    try {
      return await runPrompt(turn, text);
    } finally {
      s.turns.delete(turn);
      persist(params.sessionId, s);
    }
  });

const stream = acp.ndJsonStream(Writable.toWeb(process.stdout), Readable.toWeb(process.stdin));
const connection = app.connect(stream);
debug("connected");
connection.closed.then(
  () => {
    debug("connection closed");
    process.exit(0);
  },
  (e) => {
    log(`connection closed with error: ${errText(e)}`);
    process.exit(0);
  },
);
