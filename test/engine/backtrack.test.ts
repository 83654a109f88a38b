/**
 * Backtracking on hand-built nets whose answers are known by hand: Flatten positions, global
 * pooling channels, pooling windows, ZeroPadding2D + stride-2 'valid', TF 'same' padding with its
 * extra bottom/right row, and both branches of an Add. Then: MC-BI never changes a module's margin.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { ModelPlan, ModuleRunner, backtrackMasks, moduleHead } from '../../src/engine';

type ST = tf.SymbolicTensor;
const ones = (n: number) => new Uint8Array(n).fill(1);
const conv = (filters: number, kernelSize: number, extra: object = {}) => tf.layers.conv2d({ filters, kernelSize, activation: 'relu', ...extra });
const headOn = (x: ST, units = 3) => tf.layers.dense({ units, activation: 'softmax' }).apply(x) as ST;
/** Positions (y, x) whose mask is 1, for a single-channel map of width w. */
const kept = (m: Uint8Array, w: number) =>
  Array.from(m.keys())
    .filter((i) => m[i])
    .map((i) => [Math.floor(i / w), i % w]);

beforeAll(() => tf.setBackend('tensorflow'));

describe('backtracking index mapping', () => {
  it('Flatten: a removed feature masks exactly its one position (last-layer)', () => {
    const input = tf.input({ shape: [2, 2, 1] });
    const obs = conv(2, 1).apply(input) as ST; // [2,2,2] = 8 units
    const model = tf.model({ inputs: input, outputs: headOn(tf.layers.flatten().apply(obs) as ST) });
    const plan = new ModelPlan(model);
    const masks = backtrackMasks(plan, [ones(8)], [1, 5], 'last-layer');
    expect(Array.from(masks[0])).toEqual([1, 0, 1, 1, 1, 0, 1, 1]);
  });

  it('global average pooling: a removed feature masks every position of its channel', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const obs = conv(2, 3, { padding: 'same' }).apply(input) as ST; // [4,4,2]
    const model = tf.model({ inputs: input, outputs: headOn(tf.layers.globalAveragePooling2d({}).apply(obs) as ST) });
    const masks = backtrackMasks(new ModelPlan(model), [ones(32)], [1], 'last-layer');
    expect(Array.from(masks[0])).toEqual(Array.from({ length: 32 }, (_, i) => (i % 2 === 1 ? 0 : 1)));
  });

  it('max pooling: a removed feature masks its 2x2 window', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const obs = conv(1, 1).apply(input) as ST;
    const pool = tf.layers.maxPooling2d({ poolSize: 2 }).apply(obs) as ST;
    const model = tf.model({ inputs: input, outputs: headOn(tf.layers.flatten().apply(pool) as ST) });
    const masks = backtrackMasks(new ModelPlan(model), [ones(16)], [0], 'last-layer');
    expect(kept(masks[0], 4)).not.toEqual(expect.arrayContaining([[0, 0]]));
    expect(Array.from(masks[0]).filter((v) => v === 0)).toHaveLength(4);
    expect([0, 1, 4, 5].every((i) => masks[0][i] === 0)).toBe(true);
  });

  it('ZeroPadding2D(1) + 3x3 stride-2 valid: the kept output (0,0) reads input rows/cols 0..1 only (MC-BI)', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const obs0 = conv(1, 1).apply(input) as ST; // [4,4,1]
    const padded = tf.layers.zeroPadding2d({ padding: 1 }).apply(obs0) as ST; // [6,6,1]
    const obs1 = conv(1, 3, { strides: 2, padding: 'valid' }).apply(padded) as ST; // [2,2,1]
    const model = tf.model({ inputs: input, outputs: headOn(tf.layers.flatten().apply(obs1) as ST) });
    const masks = backtrackMasks(new ModelPlan(model), [ones(16), Uint8Array.from([1, 0, 0, 0])], [], 'input');
    expect(kept(masks[0], 4)).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    const last = backtrackMasks(new ModelPlan(model), [ones(16), Uint8Array.from([0, 0, 0, 1])], [], 'input');
    // Output (1,1) reads padded rows/cols 2..4 = input 1..3.
    expect(kept(last[0], 4)).toEqual([
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 1],
      [2, 2],
      [2, 3],
      [3, 1],
      [3, 2],
      [3, 3],
    ]);
  });

  it("TF 'same' padding with stride 2 pads the extra row/column at the bottom/right", () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const obs0 = conv(1, 1).apply(input) as ST;
    const obs1 = conv(1, 3, { strides: 2, padding: 'same' }).apply(obs0) as ST; // [2,2,1], pad top 0, bottom 1
    const model = tf.model({ inputs: input, outputs: headOn(tf.layers.flatten().apply(obs1) as ST) });
    const plan = new ModelPlan(model);
    const first = backtrackMasks(plan, [ones(16), Uint8Array.from([1, 0, 0, 0])], [], 'input');
    expect(kept(first[0], 4)).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
      [2, 0],
      [2, 1],
      [2, 2],
    ]);
    const lastOnly = backtrackMasks(plan, [ones(16), Uint8Array.from([0, 0, 0, 1])], [], 'input');
    expect(kept(lastOnly[0], 4)).toEqual([
      [2, 2],
      [2, 3],
      [3, 2],
      [3, 3],
    ]);
  });

  it('Add: a unit reaches a kept unit through the identity branch as well as through the conv', () => {
    const input = tf.input({ shape: [3, 3, 1] });
    const obs0 = conv(1, 1).apply(input) as ST; // [3,3,1]
    const c = tf.layers.conv2d({ filters: 1, kernelSize: 1 }).apply(obs0) as ST; // 1x1: reads the same position
    const add = tf.layers.add().apply([c, obs0]) as ST;
    const obs1 = tf.layers.reLU().apply(add) as ST;
    const model = tf.model({ inputs: input, outputs: headOn(tf.layers.flatten().apply(obs1) as ST) });
    const keepCentre = new Uint8Array(9);
    keepCentre[4] = 1;
    const masks = backtrackMasks(new ModelPlan(model), [ones(9), keepCentre], [], 'input');
    expect(kept(masks[0], 3)).toEqual([[1, 1]]);
  });
});

describe('MC-BI never changes a module', () => {
  it('gives the same margins with and without backtracking on random inputs', () => {
    const input = tf.input({ shape: [8, 8, 1] });
    const a = conv(3, 3, { padding: 'same' }).apply(input) as ST;
    const b = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(a) as ST;
    const r = tf.layers.reLU().apply(tf.layers.add().apply([b, a]) as ST) as ST;
    const p = tf.layers.zeroPadding2d({ padding: 1 }).apply(r) as ST;
    const s = conv(4, 3, { strides: 2 }).apply(p) as ST;
    const g = tf.layers.globalAveragePooling2d({}).apply(s) as ST;
    const model = tf.model({ inputs: input, outputs: headOn(g, 4) });
    const plan = new ModelPlan(model);
    const rand = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (((i * 2654435761 + seed) >>> 28) % 3 === 0 ? 0 : 1));
    const masks = plan.observationPoints.map((pt, i) => rand(pt.units, i));
    const head = moduleHead(plan.headWeights(), 2, 0.05);
    const back = backtrackMasks(plan, masks, head.removedFeatures, 'input');
    const extra = back.reduce((n, m, i) => n + m.reduce((x, v, u) => x + (masks[i][u] && !v ? 1 : 0), 0), 0);
    expect(extra).toBeGreaterThan(0);
    const x = tf.randomUniform([16, 8, 8, 1], 0, 1, 'float32', 7);
    const before = new ModuleRunner(plan, [{ masks, head }]);
    const after = new ModuleRunner(plan, [{ masks: back, head }]);
    const m1 = before.margins(x);
    const m2 = after.margins(x);
    expect(Array.from(m2.dataSync())).toEqual(Array.from(m1.dataSync()));
    [m1, m2, x].forEach((t) => t.dispose());
    before.dispose();
    after.dispose();
  });
});
