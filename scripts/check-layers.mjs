#!/usr/bin/env node
// The helper's layers (docs/architecture.md), checked: every C include in
// core/, ipc/, workspace/, server/ and app/ must go down or sideways, never up;
// libwebsockets.h only in server/; ipc/ only from app/; no include circle
// between modules; and no file over 900 lines but workspace/git_ctx.c. A module is a name and what carries it as a
// prefix: foo.c, foo.h, foo_impl.h and foo_*.c in one folder (so the two
// halves of a module may share an internal header). Exit 1 with every
// violation listed.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// What each folder may include, besides itself and system headers.
const ALLOWED = {
  core: [],
  ipc: [],
  workspace: ['core'],
  server: ['core'],
  app: ['core', 'ipc', 'workspace', 'server'],
};
const LWS_ONLY = 'server';
// Files this long are split along their seams (git_ctx.c is one module,
// loaded as companion-git.so, and stays whole).
const MAX_LINES = 900;
const LONG_OK = new Set(['workspace/git_ctx.c']);

const problems = [];
const files = [];
for (const dir of Object.keys(ALLOWED)) {
  for (const f of readdirSync(path.join(root, dir)).sort()) {
    if (/\.[ch]$/.test(f)) files.push(`${dir}/${f}`);
  }
}

// Module of a file: the shortest stem among the folder's headers (less any
// _impl) that the file's name is or starts with followed by "_" (foo_impl.h
// and foo_bar.c belong to foo when foo.h or foo_impl.h exists).
const headersIn = {};
for (const f of files) {
  const [dir, name] = f.split('/');
  if (name.endsWith('.h')) (headersIn[dir] ||= new Set()).add(name.slice(0, -2).replace(/_impl$/, ''));
}
function moduleOf(file) {
  const [dir, name] = file.split('/');
  const stem = name.replace(/\.[ch]$/, '');
  let mod = null;
  for (const h of headersIn[dir] || []) {
    if ((stem === h || stem.startsWith(`${h}_`)) && (!mod || h.length < mod.length)) mod = h;
  }
  return `${dir}/${mod || stem}`;
}

const edges = new Map(); // module -> Set(module), with one example each
const example = new Map();
for (const f of files) {
  const dir = f.split('/')[0];
  const text = readFileSync(path.join(root, f), 'utf8');
  const nlines = text.split('\n').length - 1;
  if (nlines > MAX_LINES && !LONG_OK.has(f)) problems.push(`${f}: ${nlines} lines (at most ${MAX_LINES})`);
  for (const [n, line] of text.split('\n').entries()) {
    const sys = line.match(/^\s*#\s*include\s*<([^>]+)>/);
    if (sys && sys[1].startsWith('libwebsockets') && dir !== LWS_ONLY)
      problems.push(`${f}:${n + 1}: includes <${sys[1]}> outside ${LWS_ONLY}/`);
    const m = line.match(/^\s*#\s*include\s*"([^"]+)"/);
    if (!m) continue;
    const target = m[1];
    const tdir = target.split('/')[0];
    if (!(tdir in ALLOWED)) {
      problems.push(`${f}:${n + 1}: includes "${target}", outside the layers`);
      continue;
    }
    if (tdir !== dir && !ALLOWED[dir].includes(tdir))
      problems.push(`${f}:${n + 1}: ${dir}/ may not include ${tdir}/ ("${target}")`);
    const a = moduleOf(f);
    const b = moduleOf(target);
    if (a === b) continue;
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a).add(b);
    if (!example.has(`${a}>${b}`)) example.set(`${a}>${b}`, `${f}:${n + 1}`);
  }
}

// Include circles between modules (Tarjan's strongly connected components).
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const on = new Set();
function strong(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  on.add(v);
  for (const w of edges.get(v) || []) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (on.has(w)) {
      low.set(v, Math.min(low.get(v), idx.get(w)));
    }
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1) {
      const inside = new Set(comp);
      const how = [];
      for (const a of comp)
        for (const b of edges.get(a) || []) if (inside.has(b)) how.push(`${a} -> ${b} (${example.get(`${a}>${b}`)})`);
      problems.push(`include circle between modules ${comp.sort().join(', ')}:\n    ${how.join('\n    ')}`);
    }
  }
}
for (const v of edges.keys()) if (!idx.has(v)) strong(v);

if (problems.length) {
  console.error(`layers: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
const n = [...edges.values()].reduce((s, e) => s + e.size, 0);
console.log(`layers: ${files.length} files, ${edges.size} modules with ${n} dependencies, no upward include, no circle`);
