// Bundles the bridge into dist/companion-whatsapp.js (Node 20, ESM, with a shebang).
// `--minify --out FILE` (the VS Code extension's package.sh): a minified bundle elsewhere, without a source map.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import process from 'node:process';

const args = process.argv.slice(2);
const minify = args.includes('--minify');
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? args[outAt + 1] : 'dist/companion-whatsapp.js';
if (!out) throw new Error('--out needs a file');
await build({
  entryPoints: ['src/cli.ts'],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: !minify,
  minify,
  legalComments: 'none',
  banner: {
    // The shebang, and a require() for the CommonJS packages inside the ESM bundle.
    js: "#!/usr/bin/env node\nimport { createRequire as __cwCreateRequire } from 'node:module';\nconst require = __cwCreateRequire(import.meta.url);",
  },
  // Optional Baileys peers for media and link previews; the bridge sends text only.
  external: ['sharp', 'jimp', 'link-preview-js', 'audio-decode'],
  logLevel: 'warning',
});
chmodSync(out, 0o755);
