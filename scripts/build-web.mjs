#!/usr/bin/env node
/*
 * Builds the web UI (web/) into dist/web with esbuild: one bundle with content-hashed names (served
 * as immutable) and an index.html that points at them. Offline: everything comes from node_modules.
 *
 *   node scripts/build-web.mjs        (part of `npm run build`)
 */
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
fs.rmSync(out, { recursive: true, force: true });

const result = await build({
  entryPoints: { app: path.join(root, 'web/src/main.tsx'), style: path.join(root, 'web/src/style.css') },
  bundle: true,
  minify: true,
  format: 'esm',
  // Vega (most of the bytes) is imported dynamically: its own chunk, preloaded by the page.
  splitting: true,
  chunkNames: '[name]-[hash]',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'linked',
  sourcemap: 'linked',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const js = outputs.find((f) => /^app-.*\.js$/.test(f));
const css = outputs.find((f) => /^style-.*\.css$/.test(f));
if (!js || !css) throw new Error(`esbuild wrote no app bundle or stylesheet: ${outputs.join(', ')}`);
const chunks = outputs.filter((f) => f.endsWith('.js') && f !== js);
const preload = chunks.map((f) => `<link rel="modulepreload" href="/ui/${f}" />`).join('\n    ');
const html = fs.readFileSync(path.join(root, 'web/index.html'), 'utf8').replace('%JS%', js).replace('%CSS%', css).replace('<!-- %PRELOAD% -->', preload);
fs.writeFileSync(path.join(out, 'index.html'), html);
const size = fs.statSync(path.join(out, js)).size;
console.log(`web UI: dist/web/${js} (${(size / 1024).toFixed(0)} KiB), ${chunks.length} chunk(s), ${css}`);
