/**
 * The engine's one metrics module: top-k with its tie rule, the accuracy/confusion tally,
 * one-vs-rest and P_c from a margin; and its three consumers (model evaluation, decomposition
 * metrics, composition scoring) pinned on a small example with many tied scores to the numbers
 * they gave before they shared it, so a change to how they rank or tally shows up as a moved number.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import {
  CompositionScorer,
  ModelPlan,
  ModuleRunner,
  evaluate,
  evaluateModules,
  maskJaccard,
  moduleHead,
  probabilityFromMargin,
  rankByMargin,
  topK,
  type LabelledBatch,
} from '../../src/engine';
import { AccuracyTally, OneVsRestTally } from '../../src/engine/metrics';

/** Small integers (many ties), deterministic. */
function ints(n: number, mod: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s >> 16) % mod;
  });
}

describe('topK', () => {
  it('ranks best first and resolves ties toward the lower index, like argmax', () => {
    expect(topK([1, 3, 2, 3, 0, 3], 3)).toEqual([1, 3, 5]);
    expect(topK([2, 2, 2], 2)).toEqual([0, 1]);
    expect(topK([0, -0, 0], 3)).toEqual([0, 1, 2]);
    expect(topK([-Infinity, Infinity, Infinity, 1], 4)).toEqual([1, 2, 3, 0]);
  });

  it('returns every index when the row is shorter than k, and none for k = 0', () => {
    expect(topK(Float32Array.from([0.5, 0.25]), 5)).toEqual([0, 1]);
    expect(topK([1, 2, 3], 0)).toEqual([]);
  });

  it('puts an index in the top k exactly when fewer than k values beat it (higher, or equal at a lower index)', () => {
    const rows = Array.from({ length: 200 }, (_, r) => ints(9, 4, r + 1));
    for (const row of rows) {
      for (const k of [1, 3, 5]) {
        const beaten = (c: number) => row.filter((v, j) => v > row[c] || (v === row[c] && j < c)).length;
        const top = topK(row, k);
        expect(top).toEqual(
          Array.from(row.keys())
            .filter((c) => beaten(c) < k)
            .sort((a, b) => beaten(a) - beaten(b)),
        );
        expect(top[0]).toBe(row.indexOf(Math.max(...row)));
      }
    }
  });

  it('rankByMargin ranks each row of a margin matrix', () => {
    expect(rankByMargin(Float32Array.from([1, -2, 1, 0, 5, 4]), 3, 2)).toEqual([
      [0, 2],
      [1, 2],
    ]);
  });
});

describe('AccuracyTally', () => {
  it('counts top-1 and top-5 hits and the confusion matrix with per-class accuracy', () => {
    const t = new AccuracyTally(3);
    t.add(0, [0, 1, 2]);
    t.add(0, [1, 0, 2]);
    t.add(1, [1, 2, 0]);
    t.add(2, [0, 1, 2]);
    expect(t.count).toBe(4);
    expect(t.topK()).toEqual({ top1: 0.5, top5: 1 });
    expect(t.confusion).toEqual([
      [1, 1, 0],
      [0, 1, 0],
      [1, 0, 0],
    ]);
    expect(t.perClass()).toEqual([0.5, 1, 0]);
  });

  it('counts top-5 within the first five of a longer ranking', () => {
    const t = new AccuracyTally();
    t.add(5, [0, 1, 2, 3, 4, 5]);
    t.add(4, [0, 1, 2, 3, 4, 5]);
    expect(t.topK()).toEqual({ top1: 0, top5: 0.5 });
  });

  it('is all zeros before any input, and keeps no matrix unless given the classes', () => {
    expect(new AccuracyTally(2).topK()).toEqual({ top1: 0, top5: 0 });
    expect(new AccuracyTally(2).perClass()).toEqual([0, 0]);
    expect(() => new AccuracyTally().confusion).toThrow();
  });
});

describe('one-vs-rest and P_c', () => {
  it('scores each module as a detector of its class: margin > 0 against label == class', () => {
    const t = new OneVsRestTally([2, 0]);
    t.add(2, [1, -1]); // both right
    t.add(0, [0, 3]); // margin 0 is "not my class": both right
    t.add(1, [0.5, 0.5]); // both wrong
    t.add(0, [-2, -1]); // module 0 right, module 1 wrong
    expect(t.result()).toEqual([0.75, 0.5]);
  });

  it('P_c is softmax([z_c, z_uc])[0] of the margin z_c - z_uc, stable at any margin', () => {
    for (const [zc, zuc] of [
      [2, -1],
      [-3, 0.5],
      [0, 0],
      [10, 10.25],
    ]) {
      expect(probabilityFromMargin(zc - zuc)).toBeCloseTo(Math.exp(zc) / (Math.exp(zc) + Math.exp(zuc)), 14);
    }
    expect(probabilityFromMargin(0)).toBe(0.5);
    expect(probabilityFromMargin(1000)).toBe(1);
    expect(probabilityFromMargin(-1000)).toBe(0);
    expect(probabilityFromMargin(3) + probabilityFromMargin(-3)).toBeCloseTo(1, 15);
    // Past a margin of about 37 P_c is exactly 1.0 in float64: why ranking is by margin.
    expect(probabilityFromMargin(38)).toBe(probabilityFromMargin(40));
  });
});

const CLASSES = 7;
const N = 40;
const IMAGE_SHAPE = [1, 1, CLASSES];

/** input [1,1,7] -> flatten -> Dense(7, relu, identity) -> Dense(7) head with small integer weights. */
function linearNet(): tf.LayersModel {
  const input = tf.input({ shape: IMAGE_SHAPE });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const hidden = tf.layers.dense({ units: CLASSES, activation: 'relu', weights: [tf.eye(CLASSES), tf.zeros([CLASSES])] }).apply(flat) as tf.SymbolicTensor;
  const kernel = tf.tensor2d(ints(CLASSES * CLASSES, 3, 7), [CLASSES, CLASSES]).add(tf.eye(CLASSES).mul(2));
  const out = tf.layers.dense({ units: CLASSES, weights: [kernel, tf.tensor1d(ints(CLASSES, 2, 9))] }).apply(hidden) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function batches(images: Float32Array, labels: Int32Array, size: number): AsyncIterable<LabelledBatch> {
  return (async function* () {
    for (let s = 0; s < labels.length; s += size) yield { images: images.subarray(s * CLASSES, (s + size) * CLASSES), labels: labels.subarray(s, s + size) };
  })();
}

describe('maskJaccard', () => {
  it('gives every module pair, 1 on the diagonal, and their mean', () => {
    const m = (bits: string) => [Uint8Array.from(bits, Number)];
    const j = maskJaccard([m('1100'), m('1110'), m('0011')]);
    expect(j.pairwise).toEqual([
      [1, 2 / 3, 0],
      [2 / 3, 1, 1 / 4],
      [0, 1 / 4, 1],
    ]);
    expect(j.meanPairwise).toBeCloseTo((2 / 3 + 0 + 1 / 4) / 3, 12);
    expect(j.meanVsModel).toBeCloseTo(7 / 12, 12);
  });

  it('above 100 modules, estimates the mean from 4950 seeded pairs and returns no matrix', () => {
    // 150 modules over 64 units, module k keeping a pseudo-random half.
    const masks = Array.from({ length: 150 }, (_, k) => [Uint8Array.from({ length: 64 }, (_, u) => (Math.imul(k * 64 + u + 1, 2654435761) >>> 31) & 1)]);
    const j = maskJaccard(masks);
    expect(j.pairwise).toBeUndefined();
    expect(j.pairsSampled).toBe(4950);
    expect(maskJaccard(masks)).toEqual(j);
    // The exact mean over all 11,175 pairs, from the 100-module path on every pair.
    let sum = 0;
    let pairs = 0;
    for (let a = 0; a < 150; a++) {
      for (let b = a + 1; b < 150; b++) {
        sum += maskJaccard([masks[a], masks[b]]).meanPairwise;
        pairs++;
      }
    }
    expect(Math.abs(j.meanPairwise - sum / pairs)).toBeLessThan(0.01);
  });
});

describe('the metric consumers keep their numbers', () => {
  const images = Float32Array.from(ints(N * CLASSES, 4, 1));
  const labels = Int32Array.from(ints(N, CLASSES, 2));
  let model: tf.LayersModel;
  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    model = linearNet();
  });
  afterAll(() => model.dispose());

  const MODEL_EVALUATION = {
    count: 40,
    top1: 0.075,
    top5: 0.6,
    perClass: [0, 1 / 6, 1 / 7, 0, 0.25, 0, 0],
    // The confusion rows' totals.
    classCounts: [4, 6, 7, 4, 4, 8, 7],
    confusion: [
      [0, 0, 1, 3, 0, 0, 0],
      [1, 1, 0, 2, 1, 1, 0],
      [0, 0, 1, 3, 3, 0, 0],
      [1, 0, 2, 0, 1, 0, 0],
      [1, 0, 0, 2, 1, 0, 0],
      [3, 0, 1, 1, 3, 0, 0],
      [1, 2, 3, 1, 0, 0, 0],
    ],
  };

  it('model evaluation', async () => {
    const r = await evaluate(model, batches(images, labels, 16), { imageShape: IMAGE_SHAPE, preprocessing: { scale: 1 } });
    expect(r).toEqual(MODEL_EVALUATION);
  });

  it("decomposition metrics: model and composed on the images of the modules' classes, one-vs-rest on all", async () => {
    const plan = new ModelPlan(model);
    const moduleClasses = [0, 2, 3, 5, 6];
    const modules = moduleClasses.map((c, i) => ({
      masks: [Uint8Array.from({ length: CLASSES }, (_, u) => (u === (i + 1) % CLASSES ? 0 : 1))],
      head: moduleHead(plan.headWeights(), c),
    }));
    // The 30 of the 40 images whose class has a module (classes 1 and 4 have none).
    const per = images.length / labels.length;
    const kept = Array.from(labels.keys()).filter((i) => moduleClasses.includes(labels[i]));
    const keptImages = Float32Array.from(kept.flatMap((i) => Array.from(images.subarray(i * per, (i + 1) * per))));
    const keptLabels = Int32Array.from(kept, (i) => labels[i]);
    const opts = { imageShape: IMAGE_SHAPE, preprocessing: { scale: 1 }, moduleClasses };
    const runner = new ModuleRunner(plan, modules);
    try {
      const r = await evaluateModules(plan, runner, batches(images, labels, 16), opts);
      // Scored on all 40 images before: classes 1 and 4 counted as errors the modules cannot help
      // making. The model's and the composition's confusion rows of the other classes are as then.
      expect(r).toMatchObject({
        count: 30,
        model: {
          top1: 1 / 30,
          perClass: [0, 0, 1 / 7, 0, 0, 0, 0],
          // No image of classes 1 and 4 was scored: their perClass 0 is no measurement.
          classCounts: [4, 0, 7, 4, 0, 8, 7],
          confusion: MODEL_EVALUATION.confusion.map((row, y) => (moduleClasses.includes(y) ? row : row.map(() => 0))),
        },
        composed: {
          top1: 2 / 30,
          perClass: [0, 0, 1 / 7, 0.25, 0, 0, 0],
          classCounts: [4, 0, 7, 4, 0, 8, 7],
          confusion: [
            [0, 0, 0, 4, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, 4, 0, 2, 0],
            [1, 0, 0, 1, 0, 2, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [2, 0, 0, 4, 0, 0, 2],
            [2, 0, 0, 1, 0, 4, 0],
          ],
        },
        // Each module against all 40 images, as before: the other classes are its rest.
        oneVsRest: [0.6, 0.775, 0.25, 0.45, 0.55],
      });
      // The baseline: the model's highest score among the 5 classes, counted here from its own outputs.
      const scores = tf.tidy(() => (model.predict(tf.tensor(keptImages, [kept.length, ...IMAGE_SHAPE])) as tf.Tensor).arraySync() as number[][]);
      const restricted = scores.map((row) => moduleClasses.reduce((best, c) => (row[c] > row[best] ? c : best), moduleClasses[0]));
      const base = r.baseline!;
      expect(base.top1).toBeCloseTo(restricted.filter((p, i) => p === keptLabels[i]).length / 30, 12);
      expect(base.classCounts).toEqual(r.model.classCounts);
      expect(base.confusion.flat().reduce((a, v) => a + v, 0)).toBe(30);
      // The same as scoring only those 30 images; and the model's figures are its plain evaluation's there.
      const alone = await evaluateModules(plan, runner, batches(keptImages, keptLabels, 16), opts);
      expect({ ...r, oneVsRest: undefined }).toEqual({ ...alone, oneVsRest: undefined });
      const plain = await evaluate(model, batches(keptImages, keptLabels, 16), { imageShape: IMAGE_SHAPE, preprocessing: { scale: 1 } });
      expect(r.model).toEqual({ top1: plain.top1, top5: plain.top5, perClass: plain.perClass, classCounts: plain.classCounts, confusion: plain.confusion });
    } finally {
      runner.dispose();
    }
  });

  it('composition scoring', () => {
    const k = 6;
    const margins = Float32Array.from(ints(N * k, 5, 3), (v) => v - 2);
    const scores = Float32Array.from(ints(N * CLASSES, 4, 4));
    const compLabels = ints(N, k, 5);
    const scorer = new CompositionScorer(k, [0, 1, 2, 3, 5, 6]);
    scorer.add(margins.subarray(0, 25 * k), compLabels.slice(0, 25), scores.subarray(0, 25 * CLASSES));
    scorer.add(margins.subarray(25 * k), compLabels.slice(25), scores.subarray(25 * CLASSES));
    const composed = {
      count: 40,
      top1: 0.1,
      top5: 0.775,
      perClass: [2 / 7, 0, 0.2, 0.125, 0, 0],
      classCounts: [7, 9, 5, 8, 7, 4],
      confusion: [
        [2, 3, 0, 1, 0, 1],
        [3, 0, 2, 2, 2, 0],
        [2, 1, 1, 0, 0, 1],
        [4, 2, 1, 1, 0, 0],
        [1, 3, 2, 0, 0, 1],
        [1, 0, 1, 2, 0, 0],
      ],
    };
    const { baseline, ...rest } = scorer.result();
    expect(rest).toEqual(composed);
    expect(baseline).toMatchObject({ top1: 0.2, top5: 0.975 });
    // The baseline's matrix is over the same labels and images: the composition's row totals, its top-1 on the diagonal.
    const base = baseline as { perClass: number[]; confusion: number[][] };
    const rowSums = (m: number[][]) => m.map((r) => r.reduce((a, b) => a + b, 0));
    expect(rowSums(base.confusion)).toEqual(rowSums(composed.confusion));
    expect(base.confusion.reduce((s, r, i) => s + r[i], 0)).toBe(0.2 * 40);
    expect(base.perClass).toEqual(base.confusion.map((r, i) => r[i] / rowSums(base.confusion)[i]));
    // Without baseline classes there is no baseline field at all (the API shape).
    const plain = new CompositionScorer(k);
    plain.add(margins, compLabels);
    expect(plain.result()).toStrictEqual(composed);
  });
});
