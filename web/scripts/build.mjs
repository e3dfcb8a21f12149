// Builds web/dist/: the app bundled by esbuild into hashed names under
// assets/, index.html, manifest.webmanifest and sw.js (fixed names), then
// checks the size budget: everything the first screen loads must stay
// within BUDGET gzipped (level 9, as embedded). Exits 1 above it.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// WEB_DIST: where to build (default web/dist/; CMake builds into its own tree).
const DIST = process.env.WEB_DIST ? path.resolve(process.env.WEB_DIST) : path.join(ROOT, 'dist');
const ASSETS = path.join(DIST, 'assets');
export const BUDGET = 100 * 1024;

const hash8 = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 8).toUpperCase();
const gz = (buf) => gzipSync(buf, { level: 9 }).length;
const rel = (abs) => path.relative(DIST, abs).split(path.sep).join('/');

rmSync(DIST, { recursive: true, force: true });
mkdirSync(ASSETS, { recursive: true });

const app = await build({
  absWorkingDir: ROOT,
  entryPoints: { app: 'src/main.tsx' },
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  target: ['es2020', 'chrome100', 'safari15', 'firefox100'],
  outdir: ASSETS,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'eof',
  charset: 'utf8',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  logLevel: 'warning',
});

const outputs = app.metafile.outputs;
const entryJs = Object.keys(outputs).find((o) => outputs[o].entryPoint === 'src/main.tsx');
const entryCss = outputs[entryJs].cssBundle;
/* The chunks the entry imports statically, transitively: loaded at once. */
const firstJs = new Set();
(function walk(o) {
  if (firstJs.has(o)) return;
  firstJs.add(o);
  for (const imp of outputs[o].imports) if (imp.kind === 'import-statement' && !imp.external) walk(imp.path);
})(entryJs);

/* Icons: copied under content-hashed names (the manifest names them). */
const icon = {};
for (const f of readdirSync(path.join(ROOT, 'public'))) {
  const src = path.join(ROOT, 'public', f);
  const ext = path.extname(f);
  const out = path.join(ASSETS, `${path.basename(f, ext)}-${hash8(readFileSync(src))}${ext}`);
  copyFileSync(src, out);
  icon[f] = `./${rel(out)}`;
}

const manifest = {
  name: 'Companion',
  short_name: 'Companion',
  description: 'Your VS Code workspace from your phone: status, diffs, files, tasks, notifications.',
  id: './',
  start_url: './',
  scope: './',
  display: 'standalone',
  background_color: '#0d1117',
  theme_color: '#0860c9',
  icons: [
    { src: icon['icon.svg'], sizes: 'any', type: 'image/svg+xml' },
    { src: icon['icon-192.png'], sizes: '192x192', type: 'image/png' },
    { src: icon['icon-512.png'], sizes: '512x512', type: 'image/png' },
    { src: icon['icon-maskable-512.png'], sizes: '512x512', type: 'image/png', purpose: 'maskable' },
  ],
};
writeFileSync(path.join(DIST, 'manifest.webmanifest'), `${JSON.stringify(manifest, null, 2)}\n`);

const preload = [...firstJs].filter((o) => o !== entryJs)
  .map((o) => `    <link rel="modulepreload" href="./${rel(path.join(ROOT, o))}">\n`).join('');
const html = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
    <meta name="referrer" content="no-referrer">
    <meta name="color-scheme" content="light dark">
    <meta name="theme-color" content="#f6f7f9" media="(prefers-color-scheme: light)">
    <meta name="theme-color" content="#0d1117" media="(prefers-color-scheme: dark)">
    <meta name="description" content="Companion: your VS Code workspace from your phone.">
    <title>Companion</title>
    <link rel="manifest" href="./manifest.webmanifest">
    <link rel="icon" href="${icon['icon.svg']}" type="image/svg+xml">
    <link rel="apple-touch-icon" href="${icon['apple-touch-icon.png']}">
    <link rel="stylesheet" href="./${rel(path.join(ROOT, entryCss))}">
${preload}    <script type="module" src="./${rel(path.join(ROOT, entryJs))}"></script>
  </head>
  <body>
    <div id="app"></div>
    <noscript>Companion needs JavaScript.</noscript>
  </body>
</html>
`;
writeFileSync(path.join(DIST, 'index.html'), html);

/* The service worker precaches the shell: every file but itself. */
const all = [];
(function list(dir) {
  for (const f of readdirSync(dir)) {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) list(p);
    else all.push(p);
  }
})(DIST);
const shell = ['./', ...all.map((p) => `./${rel(p)}`).filter((u) => u !== './index.html').sort()];
const version = hash8(Buffer.from(all.map((p) => rel(p) + hash8(readFileSync(p))).sort().join('\n')));
await build({
  absWorkingDir: ROOT,
  entryPoints: ['src/sw.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outfile: path.join(DIST, 'sw.js'),
  define: { __PRECACHE__: JSON.stringify(shell), __VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
});

/* Budget. */
const first = new Set([
  path.join(DIST, 'index.html'), path.join(DIST, 'manifest.webmanifest'), path.join(DIST, 'sw.js'),
  path.join(ROOT, entryCss), ...[...firstJs].map((o) => path.join(ROOT, o)),
  path.join(DIST, icon['icon.svg']),
]);
const files = [];
(function list(dir) {
  for (const f of readdirSync(dir)) {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) list(p);
    else files.push(p);
  }
})(DIST);
let firstGz = 0;
let totalGz = 0;
const rows = files.sort().map((p) => {
  const buf = readFileSync(p);
  const g = gz(buf);
  totalGz += g;
  const isFirst = first.has(p);
  if (isFirst) firstGz += g;
  return { file: rel(p), bytes: buf.length, gzip: g, first: isFirst };
});
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log('web/dist (gzip -9):');
for (const r of rows) console.log(`  ${r.first ? '*' : ' '} ${r.file.padEnd(44)} ${String(r.bytes).padStart(8)} B  ${kib(r.gzip).padStart(10)}`);
console.log(`  first screen (*): ${kib(firstGz)} of ${kib(BUDGET)} budget; everything: ${kib(totalGz)}`);
writeFileSync(path.join(path.dirname(DIST), 'dist-report.json'), `${JSON.stringify({ firstScreenGzip: firstGz, totalGzip: totalGz, budget: BUDGET, files: rows }, null, 2)}\n`);
if (firstGz > BUDGET) {
  console.error(`BUDGET EXCEEDED: the first screen loads ${kib(firstGz)} gzipped, more than ${kib(BUDGET)}`);
  process.exit(1);
}
