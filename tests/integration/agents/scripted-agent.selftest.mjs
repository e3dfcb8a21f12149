#!/usr/bin/env node
// Standalone self-test of scripted-agent.mjs, driven by the SDK's own client
// side (acp.client() over ndJsonStream of the child's stdio). Not a *.test.mjs
// file on purpose: the main integration suite does not run it.
//
//   node tests/integration/agents/scripted-agent.selftest.mjs
//
// SELFTEST_WIRE_LOG=<file> appends every raw line on the wire, prefixed with
// "C>A " (client to agent) or "A>C " (agent to client).

import * as acp from "@agentclientprotocol/sdk";
import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = path.join(here, "scripted-agent.mjs");
const WIRE_LOG = process.env.SELFTEST_WIRE_LOG || "";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const floodText = (offset, len) => {
  let s = "";
  for (let i = 0; i < len; i++) s += ALPHABET[(offset + i) % ALPHABET.length];
  return s;
};

/** Spawns the agent; returns the child, raw stdout lines, stderr text, exit promise. */
function spawnAgent(extraEnv = {}) {
  const child = spawn(process.execPath, [AGENT], {
    env: { ...process.env, ...extraEnv },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const raw = { out: [], stderr: "" };
  let partial = "";
  child.stdout.on("data", (d) => {
    partial += d.toString("utf8");
    let i;
    while ((i = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      raw.out.push(line);
      if (WIRE_LOG) fs.appendFileSync(WIRE_LOG, `A>C ${line.length > 600 ? line.slice(0, 600) + "…" : line}\n`);
    }
  });
  child.stderr.on("data", (d) => (raw.stderr += d.toString("utf8")));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, raw, exited };
}

/** Web streams over the child's stdio, with the client->agent direction tapped. */
function streamFor(child) {
  const w = Writable.toWeb(child.stdin);
  const tapped = new WritableStream({
    async write(chunk) {
      if (WIRE_LOG) fs.appendFileSync(WIRE_LOG, `C>A ${Buffer.from(chunk).toString("utf8")}`);
      const writer = w.getWriter();
      try {
        await writer.write(chunk);
      } finally {
        writer.releaseLock();
      }
    },
    close() {
      return w.close();
    },
  });
  return acp.ndJsonStream(tapped, Readable.toWeb(child.stdout));
}

/**
 * A client app with recording handlers. `opts.permission(params)` chooses the
 * permission outcome; `opts.fs` is an in-memory file map (or throws).
 */
function makeClient(opts = {}) {
  const updates = []; // every session/update params, in arrival order
  const permissionRequests = [];
  const fsCalls = [];
  const files = new Map();
  const app = acp
    .client({ name: "selftest-client" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      updates.push(params);
    })
    .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
      permissionRequests.push(params);
      return opts.permission ? opts.permission(params) : { outcome: { outcome: "selected", optionId: "allow-once" } };
    })
    .onRequest(acp.methods.client.fs.writeTextFile, async ({ params }) => {
      fsCalls.push({ method: "fs/write_text_file", params });
      if (opts.writeError) throw new acp.RequestError(-32001, opts.writeError);
      files.set(params.path, params.content);
      return {};
    })
    .onRequest(acp.methods.client.fs.readTextFile, async ({ params }) => {
      fsCalls.push({ method: "fs/read_text_file", params });
      if (!files.has(params.path)) throw acp.RequestError.resourceNotFound(params.path);
      return { content: files.get(params.path) };
    });
  return { app, updates, permissionRequests, fsCalls, files };
}

const CLIENT_CAPS = { fs: { readTextFile: true, writeTextFile: true }, terminal: false };

/** Spawns, connects, initializes; runs op(ctx, parts); kills the child. */
async function withAgent(op, { env = {}, client = {}, initialize = true } = {}) {
  const agent = spawnAgent(env);
  const c = makeClient(client);
  const conn = c.app.connect(streamFor(agent.child));
  try {
    let init;
    if (initialize) {
      init = await conn.agent.request(acp.methods.agent.initialize, {
        protocolVersion: acp.PROTOCOL_VERSION,
        clientCapabilities: CLIENT_CAPS,
        clientInfo: { name: "selftest", version: "0" },
      });
    }
    return await op(conn.agent, { ...c, ...agent, init, conn });
  } finally {
    conn.close();
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill("SIGKILL");
    await agent.exited;
  }
}

const newSession = (ctx, cwd = "/tmp/selftest-cwd") =>
  ctx.request(acp.methods.agent.session.new, { cwd, mcpServers: [] }).then((r) => r.sessionId);

const prompt = (ctx, sessionId, text, options) =>
  ctx.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] }, options);

const of = (updates, sessionId) => updates.filter((u) => u.sessionId === sessionId).map((u) => u.update);
const kinds = (us) => us.map((u) => u.sessionUpdate);
const messageText = (us) =>
  us
    .filter((u) => u.sessionUpdate === "agent_message_chunk")
    .map((u) => u.content.text)
    .join("");

/** Every stdout line is a JSON-RPC 2.0 message (except lines listed in allow). */
function assertPureStdout(raw, allow = []) {
  for (const line of raw.out) {
    if (allow.includes(line)) continue;
    const msg = JSON.parse(line);
    assert.equal(msg.jsonrpc, "2.0", `not JSON-RPC: ${line.slice(0, 200)}`);
  }
}

// ---------------------------------------------------------------------------

test("initialize: protocol 1, loadSession, no auth", async () => {
  await withAgent(async (ctx, { init, raw }) => {
    assert.equal(init.protocolVersion, 1);
    assert.equal(init.agentCapabilities.loadSession, true);
    assert.deepEqual(init.authMethods, []);
    assert.equal(init.agentInfo.name, "scripted-agent");
    assertPureStdout(raw);
  });
});

test("session/new returns fresh ids", async () => {
  await withAgent(async (ctx) => {
    const a = await newSession(ctx);
    const b = await newSession(ctx);
    assert.equal(typeof a, "string");
    assert.notEqual(a, b);
  });
});

test("echo streams several chunks, end_turn", async () => {
  await withAgent(async (ctx, { updates, raw }) => {
    const sid = await newSession(ctx);
    const text = "hello from the scripted agent";
    const res = await prompt(ctx, sid, `echo ${text}`);
    assert.equal(res.stopReason, "end_turn");
    const us = of(updates, sid);
    assert.ok(us.length >= 2, `chunks: ${us.length}`);
    assert.ok(us.every((u) => u.sessionUpdate === "agent_message_chunk" && u.content.type === "text"));
    assert.equal(messageText(us), text);
    assertPureStdout(raw);
  });
});

test("unknown first word echoes the whole prompt", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const res = await prompt(ctx, sid, "what is up?");
    assert.equal(res.stopReason, "end_turn");
    assert.equal(messageText(of(updates, sid)), "what is up?");
  });
});

test("think: thought chunk then message", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const res = await prompt(ctx, sid, "think");
    assert.equal(res.stopReason, "end_turn");
    const us = of(updates, sid);
    assert.deepEqual(kinds(us), ["agent_thought_chunk", "agent_message_chunk"]);
    assert.ok(us[0].content.text.length > 0);
  });
});

test("plan: 3 entries then message", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const res = await prompt(ctx, sid, "plan");
    assert.equal(res.stopReason, "end_turn");
    const us = of(updates, sid);
    assert.deepEqual(kinds(us), ["plan", "agent_message_chunk"]);
    assert.equal(us[0].entries.length, 3);
    for (const e of us[0].entries) {
      assert.equal(typeof e.content, "string");
      assert.ok(["high", "medium", "low"].includes(e.priority));
      assert.ok(["pending", "in_progress", "completed"].includes(e.status));
    }
  });
});

const EXPECTED_OPTIONS = [
  { optionId: "allow-once", kind: "allow_once", name: "Allow" },
  { optionId: "allow-always", kind: "allow_always", name: "Always" },
  { optionId: "reject-once", kind: "reject_once", name: "Reject" },
];

for (const optionId of ["allow-once", "allow-always"]) {
  test(`tool: ${optionId} -> completed, "tool ran"`, async () => {
    await withAgent(
      async (ctx, { updates, permissionRequests }) => {
        const sid = await newSession(ctx);
        const res = await prompt(ctx, sid, "tool");
        assert.equal(res.stopReason, "end_turn");
        const us = of(updates, sid);
        assert.deepEqual(kinds(us), ["tool_call", "tool_call_update", "agent_message_chunk"]);
        const call = us[0];
        assert.equal(call.title, "Running: npm test");
        assert.equal(call.kind, "execute");
        assert.equal(call.status, "pending");
        assert.equal(permissionRequests.length, 1);
        const pr = permissionRequests[0];
        assert.equal(pr.sessionId, sid);
        assert.equal(pr.toolCall.toolCallId, call.toolCallId);
        assert.deepEqual(pr.options, EXPECTED_OPTIONS);
        assert.equal(us[1].toolCallId, call.toolCallId);
        assert.equal(us[1].status, "completed");
        assert.equal(messageText(us), "tool ran");
      },
      { client: { permission: () => ({ outcome: { outcome: "selected", optionId } }) } },
    );
  });
}

test('tool: reject-once -> failed, "tool rejected", end_turn', async () => {
  await withAgent(
    async (ctx, { updates }) => {
      const sid = await newSession(ctx);
      const res = await prompt(ctx, sid, "tool");
      assert.equal(res.stopReason, "end_turn");
      const us = of(updates, sid);
      assert.equal(us[1].status, "failed");
      assert.equal(messageText(us), "tool rejected");
    },
    { client: { permission: () => ({ outcome: { outcome: "selected", optionId: "reject-once" } }) } },
  );
});

test('tool: session/cancel while asking -> cancelled outcome, failed, stopReason cancelled', async () => {
  let ctxRef, sidRef;
  await withAgent(
    async (ctx, { updates }) => {
      ctxRef = ctx;
      const sid = (sidRef = await newSession(ctx));
      const res = await prompt(ctx, sid, "tool");
      assert.equal(res.stopReason, "cancelled");
      const us = of(updates, sid);
      assert.equal(us.at(-2).status, "failed");
      assert.equal(messageText(us), "tool rejected");
    },
    {
      client: {
        // As ACP requires of a client: on session/cancel, answer pending
        // permission requests with the "cancelled" outcome.
        permission: async () => {
          await ctxRef.notify(acp.methods.agent.session.cancel, { sessionId: sidRef });
          await sleep(50);
          return { outcome: { outcome: "cancelled" } };
        },
      },
    },
  );
});

test("write: fs/write_text_file then fs/read_text_file, reports read-back", async () => {
  await withAgent(async (ctx, { updates, fsCalls }) => {
    const cwd = "/tmp/selftest-project";
    const sid = await newSession(ctx, cwd);
    const res = await prompt(ctx, sid, "write notes/a.txt hello  world");
    assert.equal(res.stopReason, "end_turn");
    assert.deepEqual(
      fsCalls.map((c) => c.method),
      ["fs/write_text_file", "fs/read_text_file"],
    );
    assert.deepEqual(fsCalls[0].params, { sessionId: sid, path: `${cwd}/notes/a.txt`, content: "hello  world" });
    assert.deepEqual(fsCalls[1].params, { sessionId: sid, path: `${cwd}/notes/a.txt` });
    assert.equal(messageText(of(updates, sid)), "read: hello  world");
  });
});

test("write: the client's error message is reported", async () => {
  await withAgent(
    async (ctx, { updates, fsCalls }) => {
      const sid = await newSession(ctx, "/tmp/p");
      const res = await prompt(ctx, sid, "write /etc/passwd pwned");
      assert.equal(res.stopReason, "end_turn");
      assert.equal(fsCalls.length, 1);
      assert.equal(fsCalls[0].params.path, "/etc/passwd");
      assert.equal(messageText(of(updates, sid)), "error: path outside the workspace");
    },
    { client: { writeError: "path outside the workspace" } },
  );
});

test("slow: ticks every 50 ms, end_turn", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const t0 = Date.now();
    const res = await prompt(ctx, sid, "slow 300");
    const dt = Date.now() - t0;
    assert.equal(res.stopReason, "end_turn");
    assert.ok(dt >= 280 && dt < 2000, `took ${dt} ms`);
    const n = of(updates, sid).length;
    assert.ok(n >= 4 && n <= 8, `ticks: ${n}`);
  });
});

test("slow: session/cancel stops early with stopReason cancelled", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const t0 = Date.now();
    const p = prompt(ctx, sid, "slow 10000");
    await sleep(200);
    await ctx.notify(acp.methods.agent.session.cancel, { sessionId: sid });
    const res = await p;
    const dt = Date.now() - t0;
    assert.equal(res.stopReason, "cancelled");
    assert.ok(dt < 1500, `took ${dt} ms`);
    assert.ok(of(updates, sid).length >= 2);
  });
});

test("paras: n paragraphs, one every <ms>, end_turn", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const t0 = Date.now();
    const res = await prompt(ctx, sid, "paras 3 200");
    const dt = Date.now() - t0;
    assert.equal(res.stopReason, "end_turn");
    assert.ok(dt >= 380 && dt < 2000, `took ${dt} ms`);
    const text = of(updates, sid).map((u) => u.content.text).join("");
    assert.equal(text, "Paragraph 1 of 3.\n\nParagraph 2 of 3.\n\nParagraph 3 of 3.\n\n");
  });
});

test("drip: the text in 12 chunks, one every <ms>", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const t0 = Date.now();
    const text = "x".repeat(50) + "\n\n```\ncode\n```\n" + "y".repeat(50);
    const res = await prompt(ctx, sid, `drip 20 ${text}`);
    const dt = Date.now() - t0;
    assert.equal(res.stopReason, "end_turn");
    assert.ok(dt >= 200 && dt < 2000, `took ${dt} ms`);
    const chunks = of(updates, sid).map((u) => u.content.text);
    assert.equal(chunks.length, 12);
    assert.equal(chunks.join(""), text);
  });
});

test("flood: exact byte count in 4 KiB chunks", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx);
    const total = 1_000_000;
    const res = await prompt(ctx, sid, `flood ${total}`);
    assert.equal(res.stopReason, "end_turn");
    const us = of(updates, sid);
    assert.equal(us.length, Math.ceil(total / 4096));
    assert.ok(us.every((u) => u.content.text.length <= 4096));
    const text = messageText(us);
    assert.equal(text.length, total);
    assert.equal(text, floodText(0, total));
  });
});

test("crash: one chunk, then exit code 3; the prompt fails", async () => {
  await withAgent(async (ctx, { updates, exited }) => {
    const sid = await newSession(ctx);
    await assert.rejects(prompt(ctx, sid, "crash"));
    const { code } = await exited;
    assert.equal(code, 3);
    assert.equal(of(updates, sid).length, 1);
  });
});

test("garbage: raw junk on stdout, then a normal turn; connection survives", async () => {
  await withAgent(async (ctx, { updates, raw }) => {
    const sid = await newSession(ctx);
    const res = await prompt(ctx, sid, "garbage");
    assert.equal(res.stopReason, "end_turn");
    assert.equal(messageText(of(updates, sid)), "after garbage");
    assert.ok(raw.out.includes("this is not json"));
    assert.ok(raw.out.some((l) => l.startsWith('{"hello":"world"')));
    const res2 = await prompt(ctx, sid, "echo still alive");
    assert.equal(res2.stopReason, "end_turn");
    assert.ok(messageText(of(updates, sid)).endsWith("still alive"));
    assertPureStdout(raw, ["this is not json", '{"truncated": ', raw.out.find((l) => l.startsWith('{"hello"'))]);
  });
});

test("hang: the prompt is never answered", async () => {
  await withAgent(async (ctx, { child }) => {
    const sid = await newSession(ctx);
    const p = prompt(ctx, sid, "hang");
    p.catch(() => {});
    const r = await Promise.race([p.then(() => "answered"), sleep(700).then(() => "pending")]);
    assert.equal(r, "pending");
    // Still serving other sessions meanwhile.
    const sid2 = await newSession(ctx);
    assert.equal((await prompt(ctx, sid2, "echo ok")).stopReason, "end_turn");
    assert.equal(child.exitCode, null);
  });
});

test("session/load replays history as session/update, then answers", async () => {
  await withAgent(async (ctx, { updates }) => {
    const sid = await newSession(ctx, "/tmp/a");
    await prompt(ctx, sid, "echo first turn");
    await prompt(ctx, sid, "plan");
    const live = of(updates, sid);
    updates.length = 0;
    const res = await ctx.request(acp.methods.agent.session.load, { sessionId: sid, cwd: "/tmp/a", mcpServers: [] });
    assert.equal(typeof res, "object");
    const replay = of(updates, sid);
    // Replay = user turns + everything the agent streamed, in order.
    assert.deepEqual(
      replay.filter((u) => u.sessionUpdate !== "user_message_chunk"),
      live,
    );
    assert.deepEqual(
      replay.filter((u) => u.sessionUpdate === "user_message_chunk").map((u) => u.content.text),
      ["echo first turn", "plan"],
    );
    assert.equal(replay[0].sessionUpdate, "user_message_chunk");
  });
});

test("session/load of an unknown session: -32002", async () => {
  await withAgent(async (ctx) => {
    await assert.rejects(
      ctx.request(acp.methods.agent.session.load, { sessionId: "nope", cwd: "/tmp", mcpServers: [] }),
      (e) => e.code === -32002,
    );
  });
});

test("SCRIPTED_AGENT_STATE_DIR: a new process loads an earlier process's session", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scripted-agent-"));
  try {
    const env = { SCRIPTED_AGENT_STATE_DIR: dir };
    const sid = await withAgent(
      async (ctx) => {
        const sid = await newSession(ctx, "/tmp/a");
        await prompt(ctx, sid, "echo persisted");
        return sid;
      },
      { env },
    );
    await withAgent(
      async (ctx, { updates }) => {
        await ctx.request(acp.methods.agent.session.load, { sessionId: sid, cwd: "/tmp/a", mcpServers: [] });
        assert.equal(messageText(of(updates, sid)), "persisted");
        assert.equal((await prompt(ctx, sid, "echo again")).stopReason, "end_turn");
      },
      { env },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("requests before the initialize response are refused (-32600)", async () => {
  await withAgent(
    async (ctx) => {
      await assert.rejects(newSession(ctx), (e) => e.code === -32600);
    },
    { initialize: false },
  );
});

test("SCRIPTED_AGENT_NO_INIT=1: initialize is never answered", async () => {
  await withAgent(
    async (ctx, { raw }) => {
      const p = ctx.request(acp.methods.agent.initialize, { protocolVersion: 1, clientCapabilities: CLIENT_CAPS });
      p.catch(() => {});
      const r = await Promise.race([p.then(() => "answered"), sleep(700).then(() => "pending")]);
      assert.equal(r, "pending");
      assert.equal(raw.out.length, 0);
    },
    { env: { SCRIPTED_AGENT_NO_INIT: "1" }, initialize: false },
  );
});

test("SCRIPTED_AGENT_EXIT_AT_START=7: exits at once with 7, no output", async () => {
  const { raw, exited } = spawnAgent({ SCRIPTED_AGENT_EXIT_AT_START: "7" });
  const { code } = await exited;
  assert.equal(code, 7);
  assert.equal(raw.out.length, 0);
});

test("closing stdin ends the agent with code 0", async () => {
  const { child, exited } = spawnAgent();
  child.stdin.end();
  const { code } = await exited;
  assert.equal(code, 0);
});
