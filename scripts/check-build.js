#!/usr/bin/env node
/*
 * `npm start`, `npm run worker`, `npm run migrate` and `npm run create-key` run the compiled
 * dist/ and never compile (build once: `npm run build`). This guard runs first and stops with a
 * clear message when dist/ is missing or older than the sources, instead of a "Cannot find module"
 * or silently running stale code.
 *
 *   node scripts/check-build.js dist/src/main.js
 *
 * Sources are src/**\/*.ts (the generated Prisma client included: `npm ci` regenerates it), the
 * tsconfig files, and the web UI's web/ (built into dist/web by the same command). Without src/ (a
 * deployed image that ships only dist/) only the entry is checked.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const entry = process.argv[2];
if (!entry) {
  console.error('usage: node scripts/check-build.js <dist entry, e.g. dist/src/main.js>');
  process.exit(2);
}

function newest(dir) {
  let best = { file: '', mtime: 0 };
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const cand = e.isDirectory() ? newest(p) : /\.(ts|tsx|css|html)$/.test(e.name) ? { file: p, mtime: fs.statSync(p).mtimeMs } : undefined;
    if (cand && cand.mtime > best.mtime) best = cand;
  }
  return best;
}

const built = path.join(root, entry);
if (!fs.existsSync(built)) {
  console.error(`${entry} is missing: run \`npm run build\` first (it compiles src/ into dist/ once).`);
  process.exit(1);
}
const src = path.join(root, 'src');
if (fs.existsSync(src)) {
  const builtAt = fs.statSync(built).mtimeMs;
  const sources = [newest(src)];
  for (const f of ['tsconfig.json', 'tsconfig.build.json']) {
    const p = path.join(root, f);
    if (fs.existsSync(p)) sources.push({ file: p, mtime: fs.statSync(p).mtimeMs });
  }
  // The web UI (web/ into dist/web, same `npm run build`): its page is the build's witness.
  const web = path.join(root, 'web');
  const page = path.join(root, 'dist', 'web', 'index.html');
  if (fs.existsSync(web)) {
    const builtPage = fs.existsSync(page) ? fs.statSync(page).mtimeMs : 0;
    const w = newest(web);
    if (w.mtime > Math.min(builtAt, builtPage)) sources.push({ file: w.file, mtime: Number.POSITIVE_INFINITY });
  }
  const stale = sources.filter((s) => s.mtime > builtAt).sort((a, b) => b.mtime - a.mtime)[0];
  if (stale) {
    console.error(`dist/ is older than ${path.relative(root, stale.file)}: run \`npm run build\` to compile the current sources.`);
    process.exit(1);
  }
}
