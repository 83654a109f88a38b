#!/usr/bin/env node
/*
 * Air-gapped install of @tensorflow/tfjs-node (see ../shared/ENVIRONMENT.md).
 *
 * tfjs-node's own install script downloads libtensorflow, which fails without internet, so
 * package.json denies it (`allowScripts`) and this postinstall stages the TensorFlow C library
 * from a local `tensorflow-cpu` wheel instead, then runs tfjs-node's install script, which skips
 * the download when deps/lib/libtensorflow.so.2.9.1 exists and builds the addon with node-gyp.
 *
 * Every failure here is tolerated: the service then runs on the wasm backend. It never fails
 * `npm ci`. Set TFJS_NODE_SKIP_STAGE=1 to skip it.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cp = require('node:child_process');

const WHEEL_SPEC = process.env.TFJS_NODE_WHEEL_SPEC || 'tensorflow-cpu==2.21.0';
const WHEEL_DIRS = ['/opt/pypi/files', '/opt/wheels'];

function log(msg) {
  console.log(`[stage-tfjs-node] ${msg}`);
}

function tfjsNodeDir() {
  try {
    return path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    return null;
  }
}

function bindingExists(dir) {
  const libDir = path.join(dir, 'lib');
  if (!fs.existsSync(libDir)) return false;
  return fs.readdirSync(libDir).some((d) => fs.existsSync(path.join(libDir, d, 'tfjs_binding.node')));
}

function findWheel() {
  if (process.env.TFJS_NODE_WHEEL && fs.existsSync(process.env.TFJS_NODE_WHEEL)) {
    return process.env.TFJS_NODE_WHEEL;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-wheel-'));
  // pip answers from the machine's local mirror; cap it so a missing mirror cannot hang npm ci.
  const r = cp.spawnSync('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '-d', tmp, WHEEL_SPEC], {
    stdio: 'ignore',
    timeout: 180_000,
  });
  if (r.status === 0) {
    const f = fs.readdirSync(tmp).find((n) => n.endsWith('.whl'));
    if (f) return path.join(tmp, f);
  }
  for (const dir of WHEEL_DIRS) {
    if (!fs.existsSync(dir)) continue;
    const f = fs.readdirSync(dir).find((n) => /^tensorflow_cpu-.*\.whl$/.test(n));
    if (f) return path.join(dir, f);
  }
  return null;
}

function stage(dir, wheel) {
  const deps = path.join(dir, 'deps');
  const lib = path.join(deps, 'lib');
  const include = path.join(deps, 'include');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-unzip-'));
  const unzip = cp.spawnSync(
    'unzip',
    ['-q', '-o', wheel, 'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2', 'tensorflow/include/*', '-d', tmp],
    { stdio: 'ignore' },
  );
  const src = path.join(tmp, 'tensorflow');
  if (!fs.existsSync(path.join(src, 'libtensorflow_cc.so.2'))) {
    throw new Error(`unzip of ${wheel} failed (status ${unzip.status})`);
  }
  fs.rmSync(deps, { recursive: true, force: true });
  fs.mkdirSync(lib, { recursive: true });
  fs.renameSync(path.join(src, 'libtensorflow_cc.so.2'), path.join(lib, 'libtensorflow_cc.so.2'));
  fs.renameSync(path.join(src, 'libtensorflow_framework.so.2'), path.join(lib, 'libtensorflow_framework.so.2'));
  fs.renameSync(path.join(src, 'include'), include);
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so'));
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so.2'));
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so.2.9.1'));
  fs.symlinkSync('libtensorflow_framework.so.2', path.join(lib, 'libtensorflow_framework.so'));
  fs.rmSync(tmp, { recursive: true, force: true });
}

// node-gyp would download Node's headers; point it at the ones installed with Node instead.
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const guess = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(guess, 'include', 'node', 'node.h')) ? guess : undefined;
}

function build(dir) {
  const nodedir = nodeDir();
  const r = cp.spawnSync(process.execPath, ['scripts/install.js'], {
    cwd: dir,
    stdio: 'inherit',
    timeout: 900_000,
    // node-pre-gyp and node-gyp live in the root .bin when npm hoists them.
    env: {
      ...process.env,
      ...(nodedir ? { npm_config_nodedir: nodedir } : {}),
      PATH: [path.join(dir, 'node_modules', '.bin'), path.resolve(dir, '..', '..', '.bin'), process.env.PATH].join(path.delimiter),
    },
  });
  return r.status === 0 && bindingExists(dir);
}

function main() {
  if (process.env.TFJS_NODE_SKIP_STAGE === '1') return log('skipped (TFJS_NODE_SKIP_STAGE=1)');
  const dir = tfjsNodeDir();
  if (!dir) return log('@tensorflow/tfjs-node is not installed; the wasm backend will be used');
  if (bindingExists(dir)) return log('tfjs-node addon already built');
  const wheel = findWheel();
  if (!wheel) return log(`no ${WHEEL_SPEC} wheel found; the wasm backend will be used`);
  log(`staging libtensorflow from ${wheel}`);
  try {
    stage(dir, wheel);
  } finally {
    if (wheel.startsWith(os.tmpdir())) fs.rmSync(path.dirname(wheel), { recursive: true, force: true });
  }
  log('building the tfjs-node addon (node-gyp)');
  if (build(dir)) log('tfjs-node addon built');
  else log('tfjs-node addon build failed; the wasm backend will be used');
}

try {
  main();
} catch (err) {
  log(`failed: ${err?.message}; the wasm backend will be used`);
}
