/**
 * The architecture families users bring (issue 13), each a small Keras 3 model saved as `.keras` and
 * `.h5` by scripts/fixtures/keras3-families.py and trained briefly on 16x16 MNIST digits 0-4:
 * both files load and give Keras' own softmax; decomposition at tau = 0 keeps the core invariant
 * (on every sampled input, the composition predicts what the model predicts); two modules compose
 * the same on the shared run and the naive path; a module exports as a model plain TF.js loads.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_DECOMPOSE_OPTIONS,
  ModelPlan,
  ModuleRunner,
  DEFAULT_COMPACT_OPTIONS,
  backtrackMasks,
  compactModules,
  decompose,
  moduleHead,
  loadModel,
  probabilityFromMargin,
  rankByMargin,
  type Decomposition,
} from '../../src/engine';
import { toTensor } from '../../src/engine/activity';
import { exportModule } from '../../src/engine/export';
import { parseDataset } from '../../src/store/formats/datasets';
import { parseModelFile } from '../../src/store/formats/models';
import { memorySource } from '../support/sample-source';

require('@tensorflow/tfjs-node');

const DIR = path.resolve(__dirname, '../fixtures/keras-families');
const FAMILIES = ['mobilenet_v2', 'mobilenet_v3', 'efficientnet', 'densenet', 'inception', 'xception', 'resnet_v2', 'activations'];
const SHAPE = [16, 16, 1];
const PER = 256;
const RAW = { scale: 1 }; // every family rescales inside the model
/** Families whose branches reach the head through Concatenate or a Multiply gate without a mixing conv: removed features mask units there. */
const BACKTRACK_MASKS_MORE = ['inception', 'mobilenet_v3'];
/** Test images the decomposition samples (all of them); the rest are unseen. */
const SAMPLED = 300;

interface Golden {
  inputShape: [number, number, number, number];
  testAccuracy: number | null;
  probs: number[][];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Top-1 of each row of a [n x k] score matrix (the first index among equals). */
const argmax = (rows: Float32Array, k: number): number[] => rankByMargin(rows, k, 1).map((r) => r[0]);

describe.each(FAMILIES)('the %s family', (family) => {
  const golden = JSON.parse(fs.readFileSync(path.join(DIR, `${family}.golden.json`), 'utf8')) as Golden;
  let images: Uint8Array;
  let labels: Int32Array;
  let model: tf.LayersModel;
  let plan: ModelPlan;
  let result: Decomposition;

  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    const ds = await parseDataset([{ name: 'mnist16-test.npz', bytes: fs.readFileSync(path.join(DIR, 'mnist16-test.npz')) }]);
    images = ds.images as Uint8Array;
    labels = Int32Array.from(ds.labels);
    model = await loadModel(await parseModelFile(fs.readFileSync(path.join(DIR, `${family}.keras`))));
    plan = new ModelPlan(model);
  });
  afterAll(() => model?.dispose());

  it.each(['keras', 'h5'])('.%s loads and gives the golden softmax within 1e-4', async (ext) => {
    const m = await loadModel(await parseModelFile(fs.readFileSync(path.join(DIR, `${family}.${ext}`))));
    const [n, h, w, c] = golden.inputShape;
    const x = tf.tensor4d(
      Float32Array.from({ length: n * h * w * c }, (_, i) => (i * 37) % 256),
      golden.inputShape,
    );
    const probs = (m.predict(x) as tf.Tensor).dataSync();
    x.dispose();
    m.dispose();
    expect(maxAbsDiff(probs, golden.probs.flat())).toBeLessThanOrEqual(1e-4);
  });

  it('decomposes at tau 0: on every sampled input the composition predicts what the model does', async () => {
    const sampledLabels = labels.slice(0, SAMPLED);
    // Concern and tangling samples cover every sampled input of every class.
    const opts = { ...DEFAULT_DECOMPOSE_OPTIONS, samplesPerClass: SAMPLED, tanglingRatio: 4, batchSize: 64, preprocessing: RAW };
    result = await decompose(model, memorySource(images, SHAPE), sampledLabels, opts);
    expect(result.modules).toHaveLength(5);
    const x = toTensor(plan, images, labels.length, SHAPE, RAW);
    const modelTop1 = argmax(
      tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array),
      5,
    );
    const runner = new ModuleRunner(plan, result.modules);
    const margins = runner.margins(x);
    const composedTop1 = argmax(margins.dataSync() as Float32Array, 5);
    margins.dispose();
    runner.dispose();
    x.dispose();
    expect(composedTop1.slice(0, SAMPLED)).toEqual(modelTop1.slice(0, SAMPLED));
    const unseen = composedTop1.slice(SAMPLED).filter((p, i) => p === modelTop1[SAMPLED + i]).length / (labels.length - SAMPLED);
    const kept = result.modules[0].kept.reduce((a, b) => a + b, 0) / plan.observationPoints.reduce((a, p) => a + p.units, 0);
    console.log(
      `${family}: ${plan.observationPoints.length} observation points, module 0 keeps ${(100 * kept).toFixed(1)} % of their units; ` +
        `composed = model on ${SAMPLED}/${SAMPLED} sampled inputs and on ${(100 * unseen).toFixed(1)} % of ${labels.length - SAMPLED} unseen ones`,
    );
  });

  it('composes two modules the same on the shared run and on the naive path', () => {
    const two = [result.modules[1], result.modules[3]];
    const x = toTensor(plan, images.subarray(0, 64 * PER), 64, SHAPE, RAW);
    const runner = new ModuleRunner(plan, two);
    const shared = runner.margins(x);
    const naive = runner.marginsNaive(x);
    expect(maxAbsDiff(shared.dataSync(), naive.dataSync())).toBeLessThan(1e-5);
    tf.dispose([shared, naive, x]);
    runner.dispose();
  });

  it('backtracks through every layer (MC-BI) without changing a margin', () => {
    // Random masks and a head with its weakest features removed, so that backtracking has units to mask.
    const rand = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (((i * 2654435761 + seed) >>> 28) % 3 === 0 ? 0 : 1));
    const masks = plan.observationPoints.map((p, i) => rand(p.units, i));
    const head = moduleHead(plan.headWeights(), 1, 0.3);
    const back = backtrackMasks(plan, masks, head.removedFeatures, 'input');
    const extra = back.reduce((n, m, i) => n + m.reduce((x, v, u) => x + (masks[i][u] && !v ? 1 : 0), 0), 0);
    const x = toTensor(plan, images.subarray(0, 64 * PER), 64, SHAPE, RAW);
    const before = new ModuleRunner(plan, [{ masks, head }]);
    const after = new ModuleRunner(plan, [{ masks: back, head }]);
    const m1 = before.margins(x);
    const m2 = after.margins(x);
    expect(maxAbsDiff(m1.dataSync(), m2.dataSync())).toBeLessThanOrEqual(1e-6);
    console.log(`${family}: MC-BI masked ${extra} more units (${head.removedFeatures.length} head features removed), margins unchanged`);
    if (BACKTRACK_MASKS_MORE.includes(family)) expect(extra).toBeGreaterThan(0);
    tf.dispose([m1, m2, x]);
    before.dispose();
    after.dispose();
  });

  it('compacts a module: with every channel kept it gives the module margins, with half the MACs it runs', async () => {
    const source = memorySource(images, SHAPE);
    const opts = { ...DEFAULT_COMPACT_OPTIONS, seed: DEFAULT_DECOMPOSE_OPTIONS.seed, calibration: 40, preprocessing: RAW };
    const x = toTensor(plan, images.subarray(0, 64 * PER), 64, SHAPE, RAW);
    const runner = new ModuleRunner(plan, [result.modules[0]]);
    const expected = runner.margins(x);
    for (const flops of [1, 0.5]) {
      const { modules } = await compactModules(model, source, labels, [result.modules[0]], { ...opts, flops });
      const compact = modules[0];
      const own = new ModuleRunner(new ModelPlan(compact.model), [compact]);
      const margins = own.margins(x);
      if (flops === 1) expect(maxAbsDiff(margins.dataSync(), expected.dataSync())).toBeLessThan(1e-3);
      else console.log(`${family}: compact module at flops 0.5 runs ${(100 * (compact.macs / compact.modelMacs)).toFixed(0)} % of the model's MACs`);
      margins.dispose();
      own.dispose();
      compact.model.dispose();
    }
    tf.dispose([x, expected]);
    runner.dispose();
  });

  it('exports a module that plain TF.js loads and that gives the service P_c', async () => {
    const mod = result.modules[2];
    const exported = await exportModule(plan, mod, RAW, { classIndex: 2 });
    const json = JSON.parse(JSON.stringify(exported.modelJson)) as tf.io.ModelJSON;
    const reloaded = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: exported.weights.slice(0) }),
    );
    const n = 32;
    const raw = tf.tensor(Float32Array.from(images.subarray(0, n * PER)), [n, ...SHAPE]);
    const p = reloaded.predict(raw) as tf.Tensor;
    const runner = new ModuleRunner(plan, [mod]);
    const margins = runner.margins(raw);
    const service = Array.from(margins.dataSync(), probabilityFromMargin);
    expect(maxAbsDiff(p.dataSync(), service)).toBeLessThan(1e-5);
    tf.dispose([raw, p, margins]);
    runner.dispose();
    reloaded.dispose();
  });
});
