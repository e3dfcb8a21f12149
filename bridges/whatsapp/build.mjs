// Bundles the bridge into dist/companion-whatsapp.js (Node 20, ESM, with a shebang).
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const out = 'dist/companion-whatsapp.js';
await build({
  entryPoints: ['src/cli.ts'],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
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
