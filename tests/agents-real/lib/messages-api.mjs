// A scripted Anthropic Messages API on 127.0.0.1, enough for the Claude Code
// CLI (inside claude-agent-acp) to answer prompts offline.
//
// POST /v1/messages (any query, e.g. ?beta=true), stream true or false.
// A request that offers tools is the agent's main loop; the answer follows
// the last user message:
//   - it holds a tool_result        -> a final text that quotes the result
//   - its text mentions "echo hi"   -> a tool_use of Bash {command: "echo hi"}
//   - anything else                 -> text in several deltas with a fenced code block
// A request without tools (title, summary, quota checks) gets a short text.
// POST /v1/messages/count_tokens answers {input_tokens: 42}. Anything else: 404.
//
// Every request is recorded in `requests` (path, model, stream, tools, kind).
import http from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const PLAIN_ANSWER_DELTAS = [
  'Here is a tiny C program',
  ' that prints a greeting:\n\n',
  '```c\n#include <stdio.h>\n\n',
  'int main(void) {\n    puts("hello");\n',
  '    return 0;\n}\n```\n\n',
  'Compile it with `cc hello.c`.',
];
export const TOOL_COMMAND = 'echo hi > hi.txt && cat hi.txt';

function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((b) => b && b.type === 'text' && typeof b.text === 'string' && !b.text.startsWith('<system-reminder>'))
    .map((b) => b.text)
    .join('\n');
}

function toolResultOf(content) {
  if (!Array.isArray(content)) return null;
  const r = content.find((b) => b && b.type === 'tool_result');
  if (!r) return null;
  const c = typeof r.content === 'string' ? r.content : textOf(r.content);
  return { text: c, isError: !!r.is_error, toolUseId: r.tool_use_id };
}

/* What to answer: a list of content blocks ({type:'text', deltas:[...]} or
 * {type:'tool_use', name, input}) and the stop reason. */
function plan(body) {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  const last = msgs[msgs.length - 1] || {};
  if (tools.length === 0) {
    return { kind: 'side', blocks: [{ type: 'text', deltas: ['Scripted answer.'] }], stop: 'end_turn' };
  }
  const result = last.role === 'user' ? toolResultOf(last.content) : null;
  if (result) {
    const out = result.text.trim().slice(0, 200);
    return {
      kind: 'after-tool',
      blocks: [{ type: 'text', deltas: ['The command ', result.isError ? 'failed: ' : 'printed: ', `\`${out}\``, '.'] }],
      stop: 'end_turn',
    };
  }
  const prompt = last.role === 'user' ? textOf(last.content) : '';
  if (/echo hi/.test(prompt) && tools.some((t) => t.name === 'Bash')) {
    return {
      kind: 'tool-use',
      blocks: [
        { type: 'text', deltas: ['I will run it.'] },
        { type: 'tool_use', name: 'Bash', input: { command: TOOL_COMMAND, description: 'Print hi' } },
      ],
      stop: 'tool_use',
    };
  }
  return { kind: 'plain', blocks: [{ type: 'text', deltas: PLAIN_ANSWER_DELTAS }], stop: 'end_turn' };
}

let msgCounter = 0;
let toolCounter = 0;

function sse(res, event, data) {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

async function streamAnswer(res, model, p, deltaDelayMs) {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'request-id': `req_scripted_${msgCounter}`,
  });
  const id = `msg_scripted_${++msgCounter}`;
  sse(res, 'message_start', {
    type: 'message_start',
    message: {
      id, type: 'message', role: 'assistant', model, content: [],
      stop_reason: null, stop_sequence: null,
      usage: { input_tokens: 20, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    },
  });
  let index = 0;
  let outTokens = 0;
  for (const b of p.blocks) {
    if (b.type === 'text') {
      sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      for (const d of b.deltas) {
        await sleep(deltaDelayMs);
        sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: d } });
        outTokens += 3;
      }
    } else {
      const toolId = `toolu_scripted_${++toolCounter}`;
      sse(res, 'content_block_start', {
        type: 'content_block_start', index, content_block: { type: 'tool_use', id: toolId, name: b.name, input: {} },
      });
      const json = JSON.stringify(b.input);
      const half = Math.floor(json.length / 2);
      for (const part of [json.slice(0, half), json.slice(half)]) {
        await sleep(deltaDelayMs);
        sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: part } });
      }
      outTokens += 10;
    }
    sse(res, 'content_block_stop', { type: 'content_block_stop', index });
    index++;
  }
  sse(res, 'message_delta', {
    type: 'message_delta', delta: { stop_reason: p.stop, stop_sequence: null }, usage: { output_tokens: outTokens },
  });
  sse(res, 'message_stop', { type: 'message_stop' });
  res.end();
}

function jsonAnswer(res, model, p) {
  const content = p.blocks.map((b) => (b.type === 'text'
    ? { type: 'text', text: b.deltas.join('') }
    : { type: 'tool_use', id: `toolu_scripted_${++toolCounter}`, name: b.name, input: b.input }));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({
    id: `msg_scripted_${++msgCounter}`, type: 'message', role: 'assistant', model, content,
    stop_reason: p.stop, stop_sequence: null, usage: { input_tokens: 20, output_tokens: 10 },
  }));
}

/** Starts the server; resolves {url, port, requests, close()}. */
export async function startMessagesApi({ deltaDelayMs = 40, log = () => {} } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', async () => {
      const url = new URL(req.url, 'http://x');
      let body = {};
      try { body = raw ? JSON.parse(raw) : {}; } catch { /* recorded as unparsable */ }
      const rec = {
        at: Date.now(), method: req.method, path: url.pathname, query: url.search,
        model: body.model, stream: body.stream === true,
        tools: Array.isArray(body.tools) ? body.tools.map((t) => t.name) : [],
        messages: Array.isArray(body.messages) ? body.messages.length : 0,
        apiKeyHeader: req.headers['x-api-key'] ? 'x-api-key' : (req.headers.authorization ? 'authorization' : 'none'),
        userAgent: req.headers['user-agent'],
      };
      requests.push(rec);
      try {
        if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens') {
          rec.kind = 'count_tokens';
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ input_tokens: 42 }));
        } else if (req.method === 'POST' && url.pathname === '/v1/messages') {
          const p = plan(body);
          rec.kind = p.kind;
          log(`messages-api: #${requests.length} ${p.kind} model=${rec.model} stream=${rec.stream} tools=${rec.tools.length}`);
          const model = body.model || 'claude-scripted';
          if (body.stream === true) await streamAnswer(res, model, p, deltaDelayMs);
          else jsonAnswer(res, model, p);
        } else {
          rec.kind = 'unknown';
          log(`messages-api: #${requests.length} ${req.method} ${url.pathname} -> 404`);
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: 'not scripted' } }));
        }
      } catch (e) {
        log(`messages-api: error answering: ${e.message}`);
        try { res.destroy(); } catch { /* gone */ }
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

/** One line per fact, for the summaries. */
export function describeRequests(requests) {
  const main = requests.filter((r) => r.tools.length > 0);
  const models = [...new Set(requests.map((r) => r.model).filter(Boolean))];
  const kinds = {};
  for (const r of requests) kinds[r.kind] = (kinds[r.kind] || 0) + 1;
  const paths = [...new Set(requests.map((r) => `${r.method} ${r.path}${r.query}`))];
  return [
    `requests: ${requests.length} (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')})`,
    `paths: ${paths.join(', ')}`,
    `models: ${models.join(', ') || '(none)'}`,
    `streamed: ${requests.filter((r) => r.stream).length} of ${requests.length}`,
    `tools offered: ${main.length ? `yes, in ${main.length} request(s); ${main[0].tools.length} tools, Bash ${main[0].tools.includes('Bash') ? 'among them' : 'NOT among them'}` : 'no'}`,
    `auth header: ${[...new Set(requests.map((r) => r.apiKeyHeader))].join(', ')}`,
  ];
}
