/**
 * The shared-run module runner (divergence.ts) against the naive one (input repeated once per
 * module): same margins, same top-1/top-5 order, on a hand-built residual net whose masks force
 * divergence at every observation point (with live tensors across it: a skip from an earlier point
 * and a shortcut from the input), and on the real ResNet-20 decomposed as the P2 bench does.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import {
  DEFAULT_DECOMPOSE_OPTIONS,
  ModelPlan,
  ModuleRunner,
  compositionMargins,
  decompose,
  loadModel,
  moduleHead,
  rankByMargin,
  type ModuleRunnerOptions,
  type ModuleSpec,
  type SampleSource,
} from '../../src/engine';
import { toTensor } from '../../src/engine/activity';
import { runToFeatures } from '../../src/engine/graph';
import { parseModelFile } from '../../src/store/formats/models';
import { CIFAR_PREPROCESSING, RESNET_DIR, cifarRecords } from '../support/fixtures';

type ST = tf.SymbolicTensor;

/**
 * input -> conv(relu) p0 -> conv, BN, ReLU p1 -> conv + p0 (skip across p1) -> ReLU p2
 *       -> conv + 1x1 shortcut of the INPUT (run late, so the input stays live) -> ReLU p3
 *       -> global average pool -> dense(relu) p4 -> dense softmax head
 */
function residualNet(): tf.LayersModel {
  let seed = 11;
  const conv = (filters: number, k: number, extra: object = {}) =>
    tf.layers.conv2d({ filters, kernelSize: k, padding: 'same', kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }), ...extra });
  const input = tf.input({ shape: [6, 6, 2] });
  const p0 = conv(4, 3, { activation: 'relu' }).apply(input) as ST;
  const c1 = conv(4, 3).apply(p0) as ST;
  const p1 = tf.layers.reLU().apply(tf.layers.batchNormalization().apply(c1) as ST) as ST;
  const c2 = conv(4, 3).apply(p1) as ST;
  const p2 = tf.layers.activation({ activation: 'relu' }).apply(tf.layers.add().apply([c2, p0]) as ST) as ST;
  const c3 = conv(4, 3).apply(p2) as ST;
  const sc = conv(4, 1).apply(input) as ST;
  const p3 = tf.layers.reLU().apply(tf.layers.add().apply([c3, sc]) as ST) as ST;
  const g = tf.layers.globalAveragePooling2d({}).apply(p3) as ST;
  const p4 = tf.layers.dense({ units: 5, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }) }).apply(g) as ST;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: seed++ }) }).apply(p4) as ST;
  const model = tf.model({ inputs: input, outputs: out });
  const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
  const [gamma, , mean, variance] = bn.getWeights();
  bn.setWeights([gamma, tf.fill([4], 0.2), mean, variance]);
  return model;
}

/** Model activity per observation point: how many of the inputs make each unit active. */
function activity(plan: ModelPlan, x: tf.Tensor): Int32Array[] {
  const out: Int32Array[] = [];
  tf.tidy(() => {
    runToFeatures(plan, x, { observe: (i, v) => (out[i] = Int32Array.from(v.greater(0).sum(0).reshape([-1]).dataSync())) });
  });
  return out;
}

function expectSameRanking(a: Float32Array, b: Float32Array, m: number): void {
  expect(rankByMargin(a, m, Math.min(5, m))).toEqual(rankByMargin(b, m, Math.min(5, m)));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** The runner's margins on `xs` equal its naive margins (within 1e-5) and rank the same; frees what it made. */
function expectNaiveMargins(runner: ModuleRunner, xs: tf.Tensor, modules: number): void {
  const fast = runner.margins(xs);
  const naive = runner.marginsNaive(xs);
  const a = fast.dataSync() as Float32Array;
  const b = naive.dataSync() as Float32Array;
  [fast, naive].forEach((t) => t.dispose());
  expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  expectSameRanking(a, b, modules);
}

describe('shared-run module runner on a hand-built residual net', () => {
  let model: tf.LayersModel;
  let plan: ModelPlan;
  let x: tf.Tensor;
  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    model = residualNet();
    plan = new ModelPlan(model);
    x = tf.randomNormal([24, 6, 6, 2], 0, 1, 'float32', 3);
  });
  afterAll(() => {
    x.dispose();
    model.dispose();
  });

  /**
   * Module k (k = 0..4) keeps everything before point k and, at point k, masks units active on
   * some (preferably not all) inputs, so pairs diverge exactly there; after k it
   * masks a pseudo-random third. Module 5 masks only units no input activates (never diverges),
   * module 6 nothing.
   */
  function modules(): ModuleSpec[] {
    const act = activity(plan, x);
    const n = x.shape[0];
    const pts = plan.observationPoints;
    const head = plan.headWeights();
    const specs: ModuleSpec[] = [];
    for (let k = 0; k < pts.length; k++) {
      const masks = pts.map((p, i) => {
        const m = new Uint8Array(p.units).fill(1);
        if (i === k) {
          // Prefer units active on some inputs only; the dense point's units (after global
          // pooling) tend to be active on all or none, then any active unit will do.
          let picked = 0;
          for (const partly of [true, false]) {
            for (let u = 0; u < p.units && picked < 2; u++) {
              if (m[u] && act[i][u] > 0 && (!partly || act[i][u] < n)) {
                m[u] = 0;
                picked++;
              }
            }
          }
          expect(picked).toBeGreaterThan(0);
        } else if (i > k) {
          for (let u = 0; u < p.units; u++) if ((u * 7 + k * 3 + i) % 3 === 0) m[u] = 0;
        }
        return m;
      });
      specs.push({ masks, head: moduleHead(head, k % 3) });
    }
    specs.push({ masks: pts.map((p, i) => Uint8Array.from(act[i], (a) => (a === 0 ? 0 : 1))), head: moduleHead(head, 1) });
    specs.push({ masks: pts.map((p) => new Uint8Array(p.units).fill(1)), head: moduleHead(head, 2) });
    return specs;
  }

  it('has the layout the test relies on: 5 observation points, the input and p0 live across later points', () => {
    expect(plan.observationPoints).toHaveLength(5);
    const inputLast = Math.max(...plan.steps.flatMap((s, i) => (s.inputs.includes(plan.inputKey) ? [i] : [])));
    const p1Step = plan.steps.findIndex((s) => s.observation === 1);
    expect(inputLast).toBeGreaterThan(p1Step);
  });

  it('gives the naive margins and ranking, with pairs branching off at every point and two modules never', () => {
    const specs = modules();
    const runner = new ModuleRunner(plan, specs);
    runner.marginsNaive(x).dispose(); // builds the naive path's masks (on first use)
    const before = tf.memory().numTensors;
    expectNaiveMargins(runner, x, specs.length);
    expect(tf.memory().numTensors).toBe(before);
    const stats = runner.divergenceStats!;
    // Every point sees pairs branch off; the last two modules never do.
    stats.divergedAt.forEach((c) => expect(c).toBeGreaterThan(0));
    const divergedTotal = stats.divergedAt.reduce((s, c) => s + c, 0);
    expect(divergedTotal).toBeLessThanOrEqual(x.shape[0] * (specs.length - 2));
    // Only module 0 masks anything at point 0.
    expect(stats.divergedAt[0]).toBeLessThanOrEqual(x.shape[0]);
    runner.dispose();
  });

  it('gives the naive margins batch by batch, also for a batch of one and when every pair diverges at the first point', () => {
    const head = plan.headWeights();
    const all = plan.observationPoints.map((p) => Uint8Array.from({ length: p.units }, (_, u) => (u % 2 ? 1 : 0)));
    const specs = [...modules(), { masks: all, head: moduleHead(head, 0) }];
    const runner = new ModuleRunner(plan, specs);
    for (const [s, n] of [
      [0, 1],
      [1, 7],
      [8, 16],
    ]) {
      const xs = x.slice(s, n);
      expectNaiveMargins(runner, xs, specs.length);
      xs.dispose();
    }
    runner.dispose();
  });

  it('shares a branched row between modules while their masks agree on its active units, and splits it when they stop', () => {
    const act = activity(plan, x);
    const n = x.shape[0];
    const pts = plan.observationPoints;
    const head = plan.headWeights();
    const partly = (i: number, skip: number) => {
      const us: number[] = [];
      for (let u = 0; u < pts[i].units; u++) if (act[i][u] > 0 && act[i][u] < n) us.push(u);
      expect(us.length).toBeGreaterThan(skip);
      return us[skip];
    };
    const never = (i: number) => act[i].findIndex((a) => a === 0);
    const ones = () => pts.map((p) => new Uint8Array(p.units).fill(1));
    // A, B, C mask the same partly active unit at point 1; C also a unit no input activates there
    // (same values as A). B masks a partly active unit at point 3 as well (its rows then split
    // off A's wherever that unit is active); D masks another unit at point 1 (rows of its own).
    const a = ones();
    a[1][partly(1, 0)] = 0;
    const bm = ones();
    bm[1][partly(1, 0)] = 0;
    bm[3][partly(3, 0)] = 0;
    bm[3][partly(3, 1)] = 0;
    const c = ones();
    c[1][partly(1, 0)] = 0;
    if (never(1) >= 0) c[1][never(1)] = 0;
    const d = ones();
    d[1][partly(1, 1)] = 0;
    const specs = [a, bm, c, d].map((masks, k) => ({ masks, head: moduleHead(head, k % 3) }));
    const runner = new ModuleRunner(plan, specs);
    expectNaiveMargins(runner, x, specs.length);
    const st = runner.divergenceStats!;
    // A, B, C leave the model together on the inputs where the shared unit is active: one row each.
    expect(st.divergedAt[1]).toBeGreaterThan(st.rowsAt[1]);
    // B leaves the shared row at point 3 on some input.
    expect(st.leftRowAt[3]).toBeGreaterThan(0);
    expect(st.leftRowAt[1] + st.leftRowAt[2] + st.leftRowAt[4]).toBe(0);
    runner.dispose();
  });

  /** Modules that each mask a different third of every point: every pair diverges into a row of its own. */
  function everyPairDiverges(count: number): ModuleSpec[] {
    const head = plan.headWeights();
    return Array.from({ length: count }, (_, k) => ({
      masks: plan.observationPoints.map((p) => Uint8Array.from({ length: p.units }, (_, u) => ((u + k) % count === 0 ? 0 : 1))),
      head: moduleHead(head, k % 3),
    }));
  }

  it('keeps every shared pass within the row budget when every pair diverges (stopping a pass that would exceed it), with the naive margins', () => {
    const specs = everyPairDiverges(6);
    // naiveAbove: never give way to the naive path, to exercise the budget on the shared run.
    const runner = new ModuleRunner(plan, specs, 'post-activation', { rowBudget: 60, naiveAbove: 1000 });
    const before = tf.memory().numTensors;
    for (let round = 0; round < 2; round++) expectNaiveMargins(runner, x, specs.length);
    const st = runner.passStats;
    const ds = runner.divergenceStats!;
    // 1 + 6 rows per input: a first pass sized on the initial guess (4 rows per input) stops.
    expect(st.stoppedPasses).toBeGreaterThan(0);
    expect(st.rowsPerInput).toBeCloseTo(7, 5);
    expect(st.sharedPasses).toBeGreaterThanOrEqual(2 * Math.ceil(24 / 8));
    expect(ds.passes).toBe(st.sharedPasses);
    expect(ds.maxRows).toBeLessThanOrEqual(60);
    expect(st.maxRows).toBeLessThanOrEqual(60);
    expect(ds.pairs).toBe(2 * 24 * 6);
    // Only the naive masks marginsNaive built (every module masks at every point) remain.
    expect(tf.memory().numTensors - before).toBe(plan.observationPoints.length);
    runner.dispose();
  });

  it('gives way to the naive path when nearly every pair diverges, within the budget and with the same margins', () => {
    const specs = everyPairDiverges(6);
    const runner = new ModuleRunner(plan, specs);
    const results: Float32Array[] = [];
    for (let round = 0; round < 3; round++) {
      const t = runner.margins(x);
      results.push(t.dataSync() as Float32Array);
      t.dispose();
    }
    const naive = runner.marginsNaive(x);
    const b = naive.dataSync() as Float32Array;
    naive.dispose();
    results.forEach((a) => {
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
      expectSameRanking(a, b, specs.length);
    });
    const st = runner.passStats;
    // The first call measures 7 rows per input (> 0.6 x 6 modules); the next two run naive (one
    // pass of 24 x 6 rows each, within the default budget of 512), then marginsNaive.
    expect(st.sharedPasses).toBe(1);
    expect(st.rowsPerInput).toBeCloseTo(7, 5);
    expect(st.naivePasses).toBe(3);
    expect(st.maxRows).toBe(24 * 7);
    runner.dispose();
  });

  /** Margins and divergence counts of a runner on `x` in two passes of 12 (frees the runner). */
  function runAll(specs: ModuleSpec[], options: ModuleRunnerOptions) {
    const runner = new ModuleRunner(plan, specs, 'post-activation', options);
    const parts = [x.slice(0, 12), x.slice(12, 12)];
    const margins = parts.flatMap((p) => {
      const t = runner.margins(p);
      const v = Array.from(t.dataSync());
      [t, p].forEach((z) => z.dispose());
      return v;
    });
    const out = { margins: Float32Array.from(margins), stats: structuredClone(runner.divergenceStats), passes: { ...runner.passStats } };
    runner.dispose();
    return out;
  }

  it('takes the same decisions with the dense tensors off (bitsets in JS), alone or mixed with dense points, past 32 modules too', () => {
    const head = plan.headWeights();
    const sharing = modules();
    // 40 modules: the bitsets span two 32-bit words.
    const many = Array.from({ length: 40 }, (_, k) => ({
      masks: plan.observationPoints.map((p, i) => Uint8Array.from({ length: p.units }, (_, u) => ((u * 5 + k + i) % 41 < 2 ? 0 : 1))),
      head: moduleHead(head, k % 3),
    }));
    const smallest = Math.min(...plan.observationPoints.map((p) => p.units));
    for (const specs of [sharing, everyPairDiverges(6), many]) {
      const dense = runAll(specs, { naiveAbove: 1000 });
      // Only the smallest point dense (8 bytes per module and unit), then none.
      for (const denseMaskBytes of [8 * specs.length * smallest, 0]) {
        const sparse = runAll(specs, { naiveAbove: 1000, denseMaskBytes });
        expect(sparse.stats).toEqual(dense.stats);
        expect(sparse.passes).toEqual(dense.passes);
        expect(maxAbsDiff(sparse.margins, dense.margins)).toBe(0);
      }
    }
    const runner = new ModuleRunner(plan, many, 'post-activation', { naiveAbove: 1000, denseMaskBytes: 0 });
    expectNaiveMargins(runner, x, many.length);
    expect(runner.divergenceStats!.divergedAt.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    runner.dispose();
  });

  it('with the dense tensors off, keeps no [M, ...] masks and never gives way to the naive path', () => {
    const specs = everyPairDiverges(6);
    const start = tf.memory().numTensors;
    const runner = new ModuleRunner(plan, specs, 'post-activation', { denseMaskBytes: 0 });
    // d, e, and per point the units some module masks (every point: every module masks a sixth).
    expect(tf.memory().numTensors - start).toBe(2 + plan.observationPoints.length);
    for (let round = 0; round < 3; round++) runner.margins(x).dispose();
    expect(runner.passStats.naivePasses).toBe(0);
    expect(runner.passStats.sharedPasses).toBeGreaterThanOrEqual(3);
    expect(tf.memory().numTensors - start).toBe(2 + plan.observationPoints.length);
    runner.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('runs a single module the naive way (one row per input is already its whole cost)', () => {
    const runner = new ModuleRunner(plan, modules().slice(0, 1));
    const t = runner.margins(x);
    const n = runner.marginsNaive(x);
    expect(maxAbsDiff(t.dataSync() as Float32Array, n.dataSync() as Float32Array)).toBe(0);
    [t, n].forEach((v) => v.dispose());
    expect(runner.passStats.sharedPasses).toBe(0);
    expect(runner.divergenceStats).toBeUndefined();
    runner.dispose();
  });

  it("builds the naive path's masks only when that path runs, and frees them on dispose", () => {
    const specs = modules();
    // Points some module masks: the shared run keeps 3 tensors per such point, plus d and e.
    const masked = plan.observationPoints.filter((_, i) => specs.some((s) => s.masks[i].some((v) => v === 0))).length;
    const start = tf.memory().numTensors;
    const runner = new ModuleRunner(plan, specs);
    expect(tf.memory().numTensors - start).toBe(2 + 3 * masked);
    runner.margins(x).dispose();
    expect(tf.memory().numTensors - start).toBe(2 + 3 * masked);
    runner.marginsNaive(x).dispose();
    expect(tf.memory().numTensors - start).toBe(2 + 4 * masked);
    runner.dispose();
    expect(tf.memory().numTensors).toBe(start);
    const naive = new ModuleRunner(plan, specs, 'post-activation', { sharedRun: false });
    expect(tf.memory().numTensors - start).toBe(2);
    naive.margins(x).dispose();
    expect(tf.memory().numTensors - start).toBe(2 + masked);
    naive.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it("runToFeatures frees each intermediate after its last consumer (and a masked step's unmasked output at once)", async () => {
    const specs = modules();
    const runner = new ModuleRunner(plan, specs, 'post-activation', { sharedRun: false });
    runner.marginsNaive(x.slice(0, 1)).dispose(); // masks built
    const rows = x.shape[0] * specs.length;
    // Bytes of every step output of a pass over `rows` rows: what a pass holding all of them needs.
    const all = plan.steps.reduce((a, s) => a + 4 * rows * (plan.shapes.get(s.output) as number[]).reduce((p, d) => p * d, 1), 0);
    const before = tf.memory().numTensors;
    const info = await tf.profile(() => runner.marginsNaive(x).dispose());
    expect(tf.memory().numTensors).toBe(before);
    // Measured: 0.61 x all; keeping every intermediate (and the unmasked outputs) to the end: 2.24 x.
    expect(info.peakBytes - info.newBytes).toBeLessThan(0.75 * all);
    runner.dispose();
  });

  it('pre-activation masks keep the naive path', () => {
    const runner = new ModuleRunner(plan, modules(), 'pre-activation');
    expect(runner.divergenceStats).toBeUndefined();
    runner.dispose();
  });
});

describe('shared-run module runner on the real ResNet-20 (CIFAR-10)', () => {
  it('gives the naive margins and identical top-1/top-5 on 200 test images (tau 0, 300 samples per class)', async () => {
    await tf.setBackend('tensorflow');
    const model = await loadModel(await parseModelFile(fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))));
    const plan = new ModelPlan(model);
    const train = cifarRecords('data_batch_1.bin', 10_000);
    const source: SampleSource = {
      imageShape: [32, 32, 3],
      read: async (idx) => {
        const out = new Uint8Array(idx.length * 3072);
        idx.forEach((i, j) => out.set(train.images.subarray(i * 3072, (i + 1) * 3072), j * 3072));
        return out;
      },
    };
    const dec = await decompose(model, source, train.labels, { ...DEFAULT_DECOMPOSE_OPTIONS, preprocessing: CIFAR_PREPROCESSING, samplesPerClass: 300 });
    const runner = new ModuleRunner(plan, dec.modules);
    const n = 200;
    const test = cifarRecords('test_batch.bin', n);
    // Through compositionMargins (the service's path), in the composition order 9..0.
    const positions = dec.modules.map((_, j) => 9 - j);
    const a = compositionMargins([{ plan, runner, preprocessing: CIFAR_PREPROCESSING, positions }], 10, test.images, n, [32, 32, 3]);
    const b = new Float32Array(n * 10);
    for (let s = 0; s < n; s += 25) {
      const xs = toTensor(plan, test.images.subarray(s * 3072, (s + 25) * 3072), 25, [32, 32, 3], CIFAR_PREPROCESSING);
      const t = runner.marginsNaive(xs);
      const d = t.dataSync();
      for (let i = 0; i < 25; i++) for (let j = 0; j < 10; j++) b[(s + i) * 10 + positions[j]] = d[i * 10 + j];
      [xs, t].forEach((v) => v.dispose());
    }
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    expectSameRanking(a, b, 10);
    const stats = runner.divergenceStats!;
    const diverged = stats.divergedAt.reduce((s, c) => s + c, 0);
    // Most pairs never diverge from the model on this fixture (measured: 77 %).
    expect(diverged).toBeGreaterThan(0);
    expect(diverged).toBeLessThan(0.5 * n * 10);
    runner.dispose();
    model.dispose();
  });
});
