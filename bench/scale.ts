/**
 * Scale (issue 13): decomposition and composition at 10, 100, 200 and 1000 classes, and memory
 * against dataset size. No pretrained model of those sizes is available offline, so each case is a
 * real ResNet architecture with seeded weights on seeded synthetic images: the costs depend on the
 * shapes, and the tau = 0 invariant (composition = model on sampled inputs) holds for any weights.
 *
 *   npm run bench -- --only scale [--classes 10,100,200,1000] [--datasets 5000,50000|none] [--dense-bytes N]
 *
 *   classes  shape (as)            network                          samples/class  unseen images
 *   10       32x32 (CIFAR-10)      ResNet-20 (3x3 blocks, 16-64)    100            256
 *   100      32x32 (CIFAR-100)     ResNet-20                        20             128
 *   200      64x64 (Tiny-ImageNet) ResNet-20, 64x64 input           10             64
 *   1000     224x224 (ImageNet)    ResNet-18 (7x7/2 stem + pool,    2              16
 *                                  2x4 blocks, 64-512; 2.3 M units)
 *
 * Each case runs in a child process of its own, so that its peak RSS is its own. Per case:
 * decomposition seconds per input run and its ratio to a plain forward pass per input (P1);
 * composition throughput of all modules over the model's own (P2, batches of 64, same inputs), on
 * the dataset's first inputs (each sampled by some modules) and on unseen ones (seeded noise, the
 * worst case: most (input, module) pairs leave the shared run); the tau = 0 invariant on the inputs
 * every module sampled (the first of each class's pool: composed top-1 must equal the model's);
 * peak RSS.
 * Memory against dataset size: ResNet-56 (3x9 blocks) decomposed (300 samples per class, tau 0) from
 * a 5,000- and a 50,000-image CIFAR-shaped dataset in the file blob store, read through the
 * service's range-reading SampleSource, then its composition scored on 1,000 images streamed
 * from the same store. Goal: peak RSS < 1.5 GiB and no more at 50,000 than at 5,000.
 * `--dense-bytes N` gives the module runners that limit for their float32 tensors instead of
 * DENSE_MASK_BYTES (0: every point on bitsets), to compare the two forms of the divergence test.
 * Writes bench/results/scale-<backend>.json (scale-<backend>-dense<N>.json with --dense-bytes).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, ModuleRunner, decompose, rankByMargin, type ModuleRunnerOptions } from '../src/engine';
import { toTensor } from '../src/engine/activity';
import { classPools } from '../src/engine/sampling';
import { blobSource, datasetBatches } from '../src/jobs/dataset-batches';
import { FsBlobStore } from '../src/store/blobs';
import { machine, memorySource, now, peakRssKiB, selectBackend, table, writeJson } from './lib';

interface ScaleCase {
  readonly classes: number;
  readonly shape: [number, number, number];
  readonly stem: 'cifar' | 'imagenet';
  /** Filters per stage. */
  readonly widths: readonly number[];
  readonly blocks: number;
  readonly samples: number;
  readonly test: number;
}

const CIFAR_WIDTHS = [16, 32, 64];
const CASES: Record<number, ScaleCase> = {
  10: { classes: 10, shape: [32, 32, 3], stem: 'cifar', widths: CIFAR_WIDTHS, blocks: 3, samples: 100, test: 256 },
  100: { classes: 100, shape: [32, 32, 3], stem: 'cifar', widths: CIFAR_WIDTHS, blocks: 3, samples: 20, test: 128 },
  200: { classes: 200, shape: [64, 64, 3], stem: 'cifar', widths: CIFAR_WIDTHS, blocks: 3, samples: 10, test: 64 },
  // ResNet-18 as torchvision and Keras build it: 11.7 M parameters, 2.3 M observed units.
  1000: { classes: 1000, shape: [224, 224, 3], stem: 'imagenet', widths: [64, 128, 256, 512], blocks: 2, samples: 2, test: 16 },
};
const PREPROCESSING = { scale: 1 / 255 };
const BATCH = 64;

/**
 * A ResNet v1 (conv-BN-ReLU, identity or 1x1 projection shortcuts) with seeded weights: CIFAR stem
 * (3x3/1, widths[0] filters) or ImageNet stem (7x7/2, 64 filters, then 3x3/2 max pooling).
 */
export function seededResnet(
  shape: readonly number[],
  classes: number,
  stem: 'cifar' | 'imagenet',
  blocks: number,
  widths: readonly number[] = CIFAR_WIDTHS,
): tf.LayersModel {
  let seed = 1;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const conv = (x: tf.SymbolicTensor, filters: number, k: number, strides = 1) =>
    tf.layers.conv2d({ filters, kernelSize: k, strides, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => tf.layers.batchNormalization({}).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor) => tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: [...shape] });
  let x = stem === 'imagenet' ? relu(bn(conv(input, 64, 7, 2))) : relu(bn(conv(input, widths[0], 3)));
  if (stem === 'imagenet') x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  widths.forEach((width, stage) => {
    for (let b = 0; b < blocks; b++) {
      const strides = stage > 0 && b === 0 ? 2 : 1;
      const y = bn(conv(relu(bn(conv(x, width, 3, strides))), width, 3));
      const shortcut = strides !== 1 || (x.shape[3] as number) !== width ? bn(conv(x, width, 1, strides)) : x;
      x = relu(tf.layers.add().apply([y, shortcut]) as tf.SymbolicTensor);
    }
  });
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }).apply(x);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
}

/** Seeded pseudo-random pixels (a fixed hash of the index): any language can rebuild them. */
function pixels(n: number, per: number, offset = 0): Uint8Array {
  const out = new Uint8Array(n * per);
  for (let i = 0; i < out.length; i++) out[i] = (Math.imul(i + offset * per + 1, 2654435761) >>> 24) & 0xff;
  return out;
}

/** Top-1 of each row of a [n x k] score matrix. */
const argmax = (rows: Float32Array, k: number): number[] => rankByMargin(rows, k, 1).map((r) => r[0]);

/** Model scores and module margins over `images` in batches, timed separately (interleaved per batch). */
function scoreBoth(model: tf.LayersModel, plan: ModelPlan, runner: ModuleRunner, images: Uint8Array, n: number, shape: readonly number[], k: number) {
  const per = shape[0] * shape[1] * shape[2];
  const model1 = new Float32Array(n * k);
  const composed = new Float32Array(n * k);
  let modelSeconds = 0;
  let composedSeconds = 0;
  for (let s = 0; s < n; s += BATCH) {
    const b = Math.min(BATCH, n - s);
    const part = images.subarray(s * per, (s + b) * per);
    let t = now();
    const x1 = toTensor(plan, part, b, shape, PREPROCESSING);
    model1.set(
      tf.tidy(() => (model.predict(x1, { batchSize: b }) as tf.Tensor).dataSync() as Float32Array),
      s * k,
    );
    x1.dispose();
    modelSeconds += now() - t;
    t = now();
    const x2 = toTensor(plan, part, b, shape, PREPROCESSING);
    const m = runner.margins(x2);
    composed.set(m.dataSync() as Float32Array, s * k);
    m.dispose();
    x2.dispose();
    composedSeconds += now() - t;
  }
  return { model: model1, composed, modelSeconds, composedSeconds };
}

async function classesChild(k: number, runnerOptions: ModuleRunnerOptions): Promise<Record<string, unknown>> {
  const c = CASES[k];
  if (!c) throw new Error(`no scale case for ${k} classes`);
  const per = c.shape[0] * c.shape[1] * c.shape[2];
  const n = c.classes * c.samples;
  const images = pixels(n, per);
  const labels = Int32Array.from({ length: n }, (_, i) => i % c.classes);
  const model = seededResnet(c.shape, c.classes, c.stem, c.blocks, c.widths);
  const plan = new ModelPlan(model);
  // Warm up, then a plain forward pass per input (the P1 baseline) on the first 256 inputs.
  tf.tidy(() => model.predict(toTensor(plan, images.subarray(0, 8 * per), 8, c.shape, PREPROCESSING)));
  const fwdN = Math.min(256, n);
  let t = now();
  for (let s = 0; s < fwdN; s += 128) {
    const b = Math.min(128, fwdN - s);
    const x = toTensor(plan, images.subarray(s * per, (s + b) * per), b, c.shape, PREPROCESSING);
    tf.tidy(() => (model.predict(x, { batchSize: b }) as tf.Tensor).dataSync());
    x.dispose();
  }
  const forwardPerInput = (now() - t) / fwdN;
  t = now();
  const result = await decompose(model, memorySource(images, c.shape), labels, {
    ...DEFAULT_DECOMPOSE_OPTIONS,
    samplesPerClass: c.samples,
    preprocessing: PREPROCESSING,
  });
  const decomposeSeconds = now() - t;
  const runner = new ModuleRunner(plan, result.modules, 'post-activation', runnerOptions);
  // Composition = model on sampled inputs (every class's concern samples: the first `samples` of each class).
  // Inputs every module sampled: concern and tangling both take a prefix of each class's pool.
  const everyModule = classPools(labels, c.classes, DEFAULT_DECOMPOSE_OPTIONS.seed).map((pool) => pool[0]);
  const invariantImages = new Uint8Array(everyModule.length * per);
  everyModule.forEach((i, j) => invariantImages.set(images.subarray(i * per, (i + 1) * per), j * per));
  const invariantRunner = new ModuleRunner(plan, result.modules, 'post-activation', runnerOptions);
  const invariant = scoreBoth(model, plan, invariantRunner, invariantImages, everyModule.length, c.shape, c.classes);
  invariantRunner.dispose();
  const invariantTop1 = argmax(invariant.model, c.classes);
  const invariantHolds = argmax(invariant.composed, c.classes).every((p, i) => p === invariantTop1[i]);
  const sampledN = Math.min(n, c.test * 2);
  const sampled = scoreBoth(model, plan, runner, images, sampledN, c.shape, c.classes);
  const sampledTop1 = argmax(sampled.model, c.classes);
  const sampledAgreement = argmax(sampled.composed, c.classes).filter((p, i) => p === sampledTop1[i]).length / sampledN;
  const sampledStats = { ...runner.passStats };
  const unseenRunner = new ModuleRunner(plan, result.modules, 'post-activation', runnerOptions);
  const test = pixels(c.test, per, 10_000_000);
  const scored = scoreBoth(model, plan, unseenRunner, test, c.test, c.shape, c.classes);
  const m1 = argmax(scored.model, c.classes);
  const agreement = argmax(scored.composed, c.classes).filter((p, i) => p === m1[i]).length / c.test;
  const out = {
    classes: c.classes,
    inputShape: c.shape,
    params: model.countParams(),
    observationUnits: plan.observedUnits,
    samplesPerClass: c.samples,
    inputsRun: result.inputsRun,
    decomposeSeconds,
    decomposeSecondsPerInput: decomposeSeconds / result.inputsRun,
    forwardSecondsPerInput: forwardPerInput,
    p1: decomposeSeconds / result.inputsRun / forwardPerInput,
    invariantImages: everyModule.length,
    invariantHolds,
    datasetImages: sampledN,
    p2Dataset: sampled.modelSeconds / sampled.composedSeconds,
    datasetPassStats: sampledStats,
    datasetAgreement: sampledAgreement,
    unseenImages: c.test,
    modelImagesPerSecond: c.test / scored.modelSeconds,
    composedImagesPerSecond: c.test / scored.composedSeconds,
    p2Unseen: scored.modelSeconds / scored.composedSeconds,
    unseenPassStats: unseenRunner.passStats,
    unseenAgreement: agreement,
    peakRss: peakRssKiB(),
  };
  runner.dispose();
  unseenRunner.dispose();
  model.dispose();
  return out;
}

async function datasetChild(size: number, root: string, key: string, labelsKey: string): Promise<Record<string, unknown>> {
  const blobs = new FsBlobStore(root);
  const shape = [size, 32, 32, 3];
  const ds = { imagesBlob: key, labelsBlob: labelsKey, shape, dtype: 'uint8', count: size };
  const labelBytes = await blobs.get(labelsKey);
  const labels = new Int32Array(labelBytes.buffer.slice(labelBytes.byteOffset, labelBytes.byteOffset + size * 4));
  const rssBefore = process.memoryUsage().rss;
  const model = seededResnet([32, 32, 3], 10, 'cifar', 9);
  const plan = new ModelPlan(model);
  let t = now();
  const result = await decompose(model, blobSource(blobs, ds), labels, { ...DEFAULT_DECOMPOSE_OPTIONS, samplesPerClass: 300, preprocessing: PREPROCESSING });
  const decomposeSeconds = now() - t;
  const runner = new ModuleRunner(plan, result.modules);
  t = now();
  let scored = 0;
  for await (const batch of datasetBatches(blobs, ds, BATCH, 1000)) {
    const x = toTensor(plan, batch.images, batch.labels.length, [32, 32, 3], PREPROCESSING);
    runner.margins(x).dispose();
    x.dispose();
    scored += batch.labels.length;
  }
  const out = {
    datasetImages: size,
    params: model.countParams(),
    inputsRun: result.inputsRun,
    decomposeSeconds,
    scoredImages: scored,
    scoreSeconds: now() - t,
    rssAtStartMiB: rssBefore / 2 ** 20,
    peakRss: peakRssKiB(),
  };
  runner.dispose();
  model.dispose();
  return out;
}

/** Writes a `size`-image dataset (images + int32 labels) to the file blob store by streaming (no whole copy in memory). */
async function writeDataset(blobs: FsBlobStore, size: number): Promise<{ key: string; labelsKey: string }> {
  const per = 32 * 32 * 3;
  const chunk = 1000;
  async function* chunks() {
    for (let s = 0; s < size; s += chunk) yield Buffer.from(pixels(Math.min(chunk, size - s), per, s));
  }
  const images = await blobs.putStream(Readable.from(chunks()));
  const labels = await blobs.putBuffer(new Uint8Array(Int32Array.from({ length: size }, (_, i) => i % 10).buffer));
  return { key: images.key, labelsKey: labels.key };
}

function child(args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...process.execArgv, __filename, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env: process.env });
  const line = r.stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`scale child ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

export async function runScale(opts: { classes: number[]; datasets: number[]; backend: string; denseBytes?: number }, runtimePackage: string): Promise<void> {
  const backend = tf.getBackend();
  console.log(
    `\nscale: backend ${backend}; classes ${opts.classes.join(', ')}; datasets ${opts.datasets.join(', ')}; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const cases: Record<string, unknown>[] = [];
  for (const k of opts.classes) {
    const dense = opts.denseBytes !== undefined ? ['--dense-bytes', String(opts.denseBytes)] : [];
    const r = child(['--scale-child', 'classes', String(k), '--backend', opts.backend, ...dense]);
    cases.push(r);
    console.log(`  ${k} classes: ${JSON.stringify(r)}`);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-blobs-'));
  const memory: Record<string, unknown>[] = [];
  try {
    const blobs = new FsBlobStore(root);
    for (const size of opts.datasets) {
      const { key, labelsKey } = await writeDataset(blobs, size);
      const r = child(['--scale-child', 'dataset', String(size), root, key, labelsKey, '--backend', opts.backend]);
      memory.push(r);
      console.log(`  dataset ${size}: ${JSON.stringify(r)}`);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const mib = (r: Record<string, unknown>) => ((r.peakRss as { maxRSS: number }).maxRSS / 1024).toFixed(0);
  console.log(
    `\n${table(
      [
        'classes',
        'input',
        'units',
        'inputs run',
        's/input',
        'P1',
        'P2 dataset',
        'P2 unseen',
        'rows/input (unseen)',
        'invariant',
        'agreement dataset/unseen',
        'peak RSS MiB',
      ],
      cases.map((r) => [
        r.classes as number,
        (r.inputShape as number[]).join('x'),
        r.observationUnits as number,
        r.inputsRun as number,
        (r.decomposeSecondsPerInput as number).toFixed(4),
        (r.p1 as number).toFixed(2),
        (r.p2Dataset as number).toFixed(3),
        (r.p2Unseen as number).toFixed(3),
        ((r.unseenPassStats as { rowsPerInput?: number }).rowsPerInput ?? 0).toFixed(1),
        r.invariantHolds ? `holds on ${r.invariantImages}` : 'BROKEN',
        `${(r.datasetAgreement as number).toFixed(3)} / ${(r.unseenAgreement as number).toFixed(3)}`,
        mib(r),
      ]),
    )}`,
  );
  console.log(
    `\n${table(
      ['dataset images', 'inputs run', 'decompose s', 'scored', 'peak RSS MiB'],
      memory.map((r) => [r.datasetImages as number, r.inputsRun as number, (r.decomposeSeconds as number).toFixed(1), r.scoredImages as number, mib(r)]),
    )}`,
  );
  // A run with another dense limit (a comparison) does not replace the default run's results.
  const suffix = opts.denseBytes !== undefined ? `-dense${opts.denseBytes}` : '';
  const file = writeJson(`scale-${backend}${suffix}.json`, { machine: machine(), backend, runtimePackage, cases, memory, denseBytes: opts.denseBytes });
  console.log(`wrote ${file}`);
}

// A child process: one case, its JSON on the last stdout line.
if (require.main === module && process.argv.includes('--scale-child')) {
  const at = process.argv.indexOf('--scale-child');
  const [kind, a, b, c, d] = process.argv.slice(at + 1);
  const backendAt = process.argv.indexOf('--backend');
  (async () => {
    await selectBackend(backendAt > 0 ? process.argv[backendAt + 1] : 'auto');
    const denseAt = process.argv.indexOf('--dense-bytes');
    const runnerOptions = denseAt > 0 ? { denseMaskBytes: Number(process.argv[denseAt + 1]) } : {};
    const r = kind === 'classes' ? await classesChild(Number(a), runnerOptions) : await datasetChild(Number(a), b, c, d);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
