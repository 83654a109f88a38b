/**
 * Decomposition on a hand-built net and on the real ResNet-20: the one-pass masks equal the
 * naive per-module computation, the core invariant holds (tau = 0, post-activation), and with
 * no masks the composition of all modules predicts exactly what the model predicts.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, ModuleRunner, decompose, loadModel, moduleHead, rankByMargin, type DecomposeOptions } from '../../src/engine';
import { batchCounts, countClass, toTensor, unitValues } from '../../src/engine/activity';
import { runToFeatures } from '../../src/engine/graph';
import { classPools, planSamples } from '../../src/engine/sampling';
import { parseModelFile } from '../../src/store/formats/models';
import { CIFAR_PREPROCESSING, RESNET_DIR, cifarRecords } from '../support/fixtures';
import { memorySource } from '../support/sample-source';

/** A small conv net with BN, ReLU, a residual Add, stride-2 padding, pooling and a dense head. */
function tinyNet(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 1] });
  const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, seed: 1 } as never).apply(input) as tf.SymbolicTensor;
  const b1 = tf.layers.batchNormalization().apply(c1) as tf.SymbolicTensor;
  const r1 = tf.layers.reLU().apply(b1) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(r1) as tf.SymbolicTensor;
  const add = tf.layers.add().apply([c2, r1]) as tf.SymbolicTensor;
  const r2 = tf.layers.activation({ activation: 'relu' }).apply(add) as tf.SymbolicTensor;
  const pad = tf.layers.zeroPadding2d({ padding: 1 }).apply(r2) as tf.SymbolicTensor;
  const c3 = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: 'relu' }).apply(pad) as tf.SymbolicTensor;
  const pool = tf.layers.maxPooling2d({ poolSize: 2 }).apply(c3) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(pool) as tf.SymbolicTensor;
  const d1 = tf.layers.dense({ units: 8, activation: 'relu' }).apply(flat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(d1) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  // A positive beta makes BN(0) > 0, so zeroing before BN differs from zeroing after the ReLU.
  const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
  const [gamma, , mean, variance] = bn.getWeights();
  bn.setWeights([gamma, tf.fill([4], 0.5), mean, variance]);
  return model;
}

const OPTS: DecomposeOptions = { ...DEFAULT_DECOMPOSE_OPTIONS, preprocessing: { scale: 1 / 255 }, batchSize: 7 };

describe('decomposition of a hand-built net', () => {
  const n = 90;
  const images = new Uint8Array(n * 64).map((_, i) => (i * 37 + (i >> 6) * 11) % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  let model: tf.LayersModel;
  beforeAll(() => {
    tf.setBackend('tensorflow');
    model = tinyNet();
  });
  afterAll(() => model.dispose());

  it('finds every ReLU output as an observation point and the last Dense as the head', () => {
    const plan = new ModelPlan(model);
    expect(plan.observationPoints.map((p) => p.shape)).toEqual([[8, 8, 4], [8, 8, 4], [4, 4, 6], [8]]);
    expect(plan.head.name).toBe(model.layers[model.layers.length - 1].name);
    expect(plan.observationPoints[1].preActivationLayer).toBe(
      plan.steps.find((s) => s.className === 'Conv2D' && s.layer.name !== model.layers[1].name)?.layer.name,
    );
  });

  it.each([0, 0.3])('one pass gives the masks of the naive per-module computation (tau %s)', async (tau) => {
    const opts = { ...OPTS, samplesPerClass: 20, tanglingRatio: 1, tau };
    const source = memorySource(images, [8, 8, 1]);
    const result = await decompose(model, source, labels, opts);
    const plan = new ModelPlan(model);
    const pools = classPools(labels, 3, opts.seed);
    const sampling = planSamples(pools, opts);
    for (const mod of result.modules) {
      const c = mod.classIndex;
      const u = sampling.tanglingPerClass[c];
      const idx = [...pools[c].slice(0, sampling.concern[c]), ...[0, 1, 2].filter((k) => k !== c).flatMap((k) => pools[k].slice(0, u))];
      const x = toTensor(plan, await source.read(idx), idx.length, [8, 8, 1], opts.preprocessing);
      const counts = batchCounts(plan, x);
      x.dispose();
      const naive = counts.map((cnt) => Uint8Array.from(cnt, (v) => (v > tau * idx.length ? 1 : 0)));
      expect(mod.masks).toEqual(naive);
      expect(mod.concernSamples + mod.tanglingSamples).toBe(idx.length);
    }
    expect(result.inputsRun).toBe(60);
  });

  it('pre-activation masking zeroes the conv output before BN (lossy), post-activation the ReLU output (exact)', () => {
    const plan = new ModelPlan(model);
    const head = moduleHead(plan.headWeights(), 0);
    // Mask one unit of the first observation point (conv -> BN -> ReLU) and nothing else.
    const masks = plan.observationPoints.map((p) => new Uint8Array(p.units).fill(1));
    masks[0][5] = 0;
    const x = toTensor(plan, images.subarray(0, 64 * 10), 10, [8, 8, 1], OPTS.preprocessing);
    const seen: Record<string, Float32Array> = {};
    for (const point of ['post-activation', 'pre-activation'] as const) {
      const runner = new ModuleRunner(plan, [{ masks, head }], point);
      runner.observe(x, (i, v) => {
        if (i === 0) seen[point] = v.dataSync().slice() as Float32Array;
      });
      runner.dispose();
    }
    const plain: Float32Array[] = [];
    runToFeatures(plan, x, { observe: (i, v) => (plain[i] = v.dataSync().slice() as Float32Array) }).dispose();
    x.dispose();
    const units = plan.observationPoints[0].units;
    for (let s = 0; s < 10; s++) {
      // Post: exactly the model's values with unit 5 forced to 0.
      expect(seen['post-activation'][s * units + 5]).toBe(0);
      expect(seen['post-activation'][s * units + 6]).toBe(plain[0][s * units + 6]);
      // Pre: the conv output is zeroed before BN, so the unit becomes relu(BN(0)), not 0 in general.
      expect(seen['pre-activation'][s * units + 6]).toBe(plain[0][s * units + 6]);
    }
    const bnOfZero = Array.from({ length: 10 }, (_, s) => seen['pre-activation'][s * units + 5]);
    expect(new Set(bnOfZero).size).toBe(1);
    expect(bnOfZero[0]).toBeGreaterThan(0.4);
  });

  it('module heads: concerned column unchanged, unconcerned = mean of the others; MC-BLN zeroes rows by the prose rule', () => {
    const w = { kernel: Float32Array.from([0.1, 0.9, 0.7, 0.8, 0.2, 0.6]), bias: Float32Array.from([1, 2, 4]), features: 2, classes: 3 };
    const h = moduleHead(w, 0);
    [0.1, 0.8, 0.8, 0.4].forEach((v, i) => expect(h.kernel[i]).toBeCloseTo(v, 6));
    expect(Array.from(h.bias)).toEqual([1, 3]);
    const bln = moduleHead(w, 0, 0.5);
    // Feature 0: |W[0,0]| = 0.1 < 0.5 and |W_uc[0]| = 0.8 >= 0.5 -> removed; feature 1: |0.8| >= 0.5 -> kept.
    expect(bln.removedFeatures).toEqual([0]);
    expect(Array.from(bln.kernel.slice(0, 2))).toEqual([0, 0]);
  });
});

describe('decomposition of a model without ReLU observation points', () => {
  const n = 60;
  const images = new Uint8Array(n * 64).map((_, i) => (i * 53 + (i >> 6) * 7) % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  beforeAll(() => tf.setBackend('tensorflow'));

  /** conv(tanh) -> pool -> flatten -> dense softmax, or flatten -> dense(tanh) -> dense softmax. */
  function tanhNet(kind: 'conv' | 'dense'): tf.LayersModel {
    const input = tf.input({ shape: [8, 8, 1] });
    let t: tf.SymbolicTensor;
    if (kind === 'conv') {
      t = tf.layers
        .conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) })
        .apply(input) as tf.SymbolicTensor;
      t = tf.layers.maxPooling2d({ poolSize: 2 }).apply(t) as tf.SymbolicTensor;
      t = tf.layers.flatten().apply(t) as tf.SymbolicTensor;
    } else {
      t = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
      t = tf.layers.dense({ units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) }).apply(t) as tf.SymbolicTensor;
    }
    const out = tf.layers
      .dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 7 }) })
      .apply(t) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  }

  it.each([
    ['conv', 0],
    ['dense', 0],
    ['conv', 0.3],
  ] as const)('a %s tanh model gives head-only modules (tau %s), with progress to the end', async (kind, tau) => {
    const model = tanhNet(kind);
    const plan = new ModelPlan(model);
    expect(plan.observationPoints).toHaveLength(0);
    const fractions: number[] = [];
    const result = await decompose(model, memorySource(images, [8, 8, 1]), labels, { ...OPTS, samplesPerClass: 15, tau }, (stage, f) => {
      if (stage === 'observing') fractions.push(f);
    });
    expect(result.modules.map((m) => m.classIndex)).toEqual([0, 1, 2]);
    result.modules.forEach((m) => {
      expect(m.masks).toEqual([]);
      expect(m.kept).toEqual([]);
    });
    expect(result.inputsRun).toBe(45);
    expect(fractions.length).toBeGreaterThan(1);
    expect(fractions[fractions.length - 1]).toBeCloseTo(1, 10);
    // The modules are the model's features with 2-unit heads: margins z_c - mean(z_others).
    const runner = new ModuleRunner(plan, result.modules);
    const x = toTensor(plan, images.subarray(0, 64 * 5), 5, [8, 8, 1], OPTS.preprocessing);
    const margins = runner.margins(x);
    const ranked = rankByMargin(margins.dataSync() as Float32Array, 3, 1).map((r) => r[0]);
    const direct = Array.from((model.predict(x) as tf.Tensor).argMax(-1).dataSync());
    expect(ranked).toEqual(direct);
    [margins, x].forEach((t) => t.dispose());
    runner.dispose();
    model.dispose();
  });
});

describe('decomposition of the real ResNet-20 (CIFAR-10)', () => {
  const SAMPLES = 12;
  let model: tf.LayersModel;
  const train = cifarRecords('data_batch_1.bin', 400);
  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    model = await loadModel(await parseModelFile(fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))));
  });
  afterAll(() => model.dispose());

  it('tau 0 bitset counting (full batches, marks inside them) equals the per-unit counts > 0 at every mark', async () => {
    const plan = new ModelPlan(model);
    const source = memorySource(train.images, [32, 32, 3]);
    const pool = Array.from({ length: 150 }, (_, i) => (i * 7) % 400);
    const marks = [33, 100, 150];
    const opts = { preprocessing: CIFAR_PREPROCESSING, batchSize: 64 };
    const counts = await countClass(plan, source, pool, marks, opts);
    const bits = await countClass(plan, source, pool, marks, { ...opts, everActive: true });
    for (const mark of marks) {
      const c = counts.get(mark)!;
      const b = bits.get(mark)!;
      c.forEach((cp, i) => expect(Array.from(unitValues(b[i], new Int32Array(cp.length)))).toEqual(Array.from(cp as Int32Array, (v) => (v > 0 ? 1 : 0))));
    }
  });

  it("invariant: on every sample used for a module, its activations equal the model's and its P_c is the 2-unit softmax of the model's features", async () => {
    const opts = { ...OPTS, samplesPerClass: SAMPLES, batchSize: 64, preprocessing: CIFAR_PREPROCESSING };
    const source = memorySource(train.images, [32, 32, 3]);
    const result = await decompose(model, source, train.labels, opts);
    expect(result.observationPoints).toHaveLength(19);
    const plan = new ModelPlan(model);
    const pools = classPools(train.labels, 10, opts.seed);
    const sampling = planSamples(pools, opts);
    const head = plan.headWeights();
    let checked = 0;
    for (const mod of result.modules.filter((m) => [0, 3, 9].includes(m.classIndex))) {
      const c = mod.classIndex;
      const u = sampling.tanglingPerClass[c];
      const idx = [
        ...pools[c].slice(0, sampling.concern[c]),
        ...Array.from({ length: 10 }, (_, k) => k)
          .filter((k) => k !== c)
          .flatMap((k) => pools[k].slice(0, u)),
      ];
      const x = toTensor(plan, await source.read(idx), idx.length, [32, 32, 3], opts.preprocessing);
      const plain: Float32Array[] = [];
      const features = runToFeatures(plan, x, { observe: (i, v) => (plain[i] = v.dataSync().slice() as Float32Array) });
      const runner = new ModuleRunner(plan, [mod]);
      runner.observe(x, (i, v) => {
        const masked = v.dataSync();
        expect(masked.length).toBe(plain[i].length);
        for (let j = 0; j < masked.length; j++) if (masked[j] !== plain[i][j]) throw new Error(`point ${i} unit ${j}: ${masked[j]} != ${plain[i][j]}`);
        checked++;
      });
      const margins = runner.margins(x);
      const f = features.dataSync();
      const m = margins.dataSync();
      const fDim = head.features;
      for (let s = 0; s < idx.length; s++) {
        let zc = head.bias[c];
        let zuc = 0;
        for (let j = 0; j < 10; j++) if (j !== c) zuc += head.bias[j];
        for (let i = 0; i < fDim; i++) {
          zc += f[s * fDim + i] * head.kernel[i * 10 + c];
          let o = 0;
          for (let j = 0; j < 10; j++) if (j !== c) o += head.kernel[i * 10 + j];
          zuc += f[s * fDim + i] * o;
        }
        zuc /= 9;
        const pc = Math.exp(zc) / (Math.exp(zc) + Math.exp(zuc)); // the 2-unit softmax, concerned unit
        const pm = 1 / (1 + Math.exp(-m[s]));
        expect(Math.abs(pc - pm)).toBeLessThan(1e-5);
      }
      features.dispose();
      margins.dispose();
      runner.dispose();
      x.dispose();
    }
    expect(checked).toBe(3 * 19);
  });

  it("confidentOnly: a module's concern samples are the first inputs of its class the model gets right", async () => {
    const opts = { ...OPTS, samplesPerClass: 8, batchSize: 64, preprocessing: CIFAR_PREPROCESSING, confidentOnly: true, classes: [3] };
    // Test images: the model gets some of them wrong (it gets its own training images right).
    const test = cifarRecords('test_batch.bin', 400);
    const source = memorySource(test.images, [32, 32, 3]);
    const result = await decompose(model, source, test.labels, opts);
    const plan = new ModelPlan(model);
    const pool = classPools(test.labels, 10, opts.seed)[3];
    const x = toTensor(plan, await source.read(pool), pool.length, [32, 32, 3], CIFAR_PREPROCESSING);
    const pred = Array.from((model.predict(x) as tf.Tensor).argMax(-1).dataSync());
    x.dispose();
    const correct = pool.filter((_, j) => pred[j] === 3);
    expect(correct.length).toBeLessThan(pool.length);
    expect(result.modules[0].concernSamples).toBe(Math.min(8, correct.length));
    // Its masks equal a plain decomposition over exactly those correct inputs.
    const xs = toTensor(plan, await source.read(correct.slice(0, 8)), Math.min(8, correct.length), [32, 32, 3], CIFAR_PREPROCESSING);
    const counts = batchCounts(plan, xs);
    xs.dispose();
    let missing = 0;
    counts.forEach((c, p) => c.forEach((v, u) => (missing += v > 0 && result.modules[0].masks[p][u] !== 1 ? 1 : 0)));
    expect(missing).toBe(0);
  });

  it('with no masks, the composition of all modules ranked by margin predicts exactly what the model predicts', async () => {
    const plan = new ModelPlan(model);
    const head = plan.headWeights();
    const all = plan.observationPoints.map((p) => new Uint8Array(p.units).fill(1));
    const runner = new ModuleRunner(
      plan,
      Array.from({ length: 10 }, (_, c) => ({ masks: all, head: moduleHead(head, c) })),
    );
    const test = cifarRecords('test_batch.bin', 64);
    const x = toTensor(plan, test.images, 64, [32, 32, 3], CIFAR_PREPROCESSING);
    const margins = runner.margins(x);
    const composed = rankByMargin(margins.dataSync() as Float32Array, 10, 1).map((r) => r[0]);
    const direct = Array.from((model.predict(x) as tf.Tensor).argMax(-1).dataSync());
    expect(composed).toEqual(direct);
    margins.dispose();
    x.dispose();
    runner.dispose();
  });

  it('ranking by the saturating probability loses accuracy that ranking by the margin keeps', () => {
    const plan = new ModelPlan(model);
    const head = plan.headWeights();
    const all = plan.observationPoints.map((p) => new Uint8Array(p.units).fill(1));
    const runner = new ModuleRunner(
      plan,
      Array.from({ length: 10 }, (_, c) => ({ masks: all, head: moduleHead(head, c) })),
    );
    const test = cifarRecords('test_batch.bin', 500);
    let byMargin = 0;
    let byProbability = 0;
    let saturatedTies = 0;
    for (let s = 0; s < 500; s += 50) {
      const x = toTensor(plan, test.images.subarray(s * 3072, (s + 50) * 3072), 50, [32, 32, 3], CIFAR_PREPROCESSING);
      const t = runner.margins(x);
      const margins = t.dataSync() as Float32Array;
      t.dispose();
      x.dispose();
      for (let i = 0; i < 50; i++) {
        const row = Array.from(margins.subarray(i * 10, i * 10 + 10));
        // P_c as a float32 softmax of [z_c, z_uc] computes it: it rounds to exactly 1 for margins above ~17.
        const probs = row.map((m) => Math.fround(1 / (1 + Math.exp(-m))));
        const pMax = Math.max(...probs);
        if (probs.filter((p) => p === pMax).length > 1) saturatedTies++;
        const y = test.labels[s + i];
        if (row.indexOf(Math.max(...row)) === y) byMargin++;
        if (probs.indexOf(pMax) === y) byProbability++;
      }
    }
    runner.dispose();
    console.log(`500 test images, no masks: by margin ${byMargin}, by probability ${byProbability}, saturated ties ${saturatedTies}`);
    expect(saturatedTies).toBeGreaterThan(0);
    expect(byProbability).toBeLessThan(byMargin);
  });
});
