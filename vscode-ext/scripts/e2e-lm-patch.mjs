// Used by scripts/e2e-install.sh lm: code-server 4.105.1's VS Code
// (lib/vscode) depends on @parcel/watcher at a GitHub commit, which only npm's
// registry can replace here. Points the dependency at the registry's 2.5.1
// (the version that commit carries) in package.json and npm-shrinkwrap.json,
// so its postinstall (`npm install` in lib/vscode) resolves it from npm.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const VERSION = '2.5.1';
const pkgFile = path.join(dir, 'package.json');
const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
const wrapFile = path.join(dir, 'npm-shrinkwrap.json');
const wrap = JSON.parse(readFileSync(wrapFile, 'utf8'));
const was = pkg.dependencies['@parcel/watcher'];
if (was === VERSION) {
  console.log(`e2e: @parcel/watcher already ${VERSION}`);
  process.exit(0);
}
pkg.dependencies['@parcel/watcher'] = VERSION;
if (wrap.packages?.['']?.dependencies) wrap.packages[''].dependencies['@parcel/watcher'] = VERSION;
delete wrap.packages?.['node_modules/@parcel/watcher'];
writeFileSync(pkgFile, JSON.stringify(pkg, null, 2) + '\n');
writeFileSync(wrapFile, JSON.stringify(wrap, null, 2) + '\n');
console.log(`e2e: @parcel/watcher ${was} -> ${VERSION} (npm registry)`);
