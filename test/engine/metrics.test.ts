/**
 * The engine's three metric consumers (model evaluation, decomposition metrics, composition
 * scoring) pinned on a small example with many tied scores, so that a change to how they rank or
 * tally shows up as a moved number.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { CompositionScorer, ModelPlan, ModuleRunner, evaluate, evaluateModules, moduleHead, type LabelledBatch } from '../../src/engine';

/** Small integers (many ties), deterministic. */
function ints(n: number, mod: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s >> 16) % mod;
  });
}

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

describe('the metric consumers keep their numbers', () => {
  const images = Float32Array.from(ints(N * CLASSES, 4, 1));
  const labels = Int32Array.from(ints(N, CLASSES, 2));
  let model: tf.LayersModel;
  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    model = linearNet();
  });
  afterAll(() => model.dispose());

  it('model evaluation', async () => {
    const r = await evaluate(model, batches(images, labels, 16), { imageShape: IMAGE_SHAPE, preprocessing: { scale: 1 } });
    expect(r).toEqual({
      count: 40,
      top1: 0.075,
      top5: 0.6,
      perClass: [0, 1 / 6, 1 / 7, 0, 0.25, 0, 0],
      confusion: [
        [0, 0, 1, 3, 0, 0, 0],
        [1, 1, 0, 2, 1, 1, 0],
        [0, 0, 1, 3, 3, 0, 0],
        [1, 0, 2, 0, 1, 0, 0],
        [1, 0, 0, 2, 1, 0, 0],
        [3, 0, 1, 1, 3, 0, 0],
        [1, 2, 3, 1, 0, 0, 0],
      ],
    });
  });

  it('decomposition metrics', async () => {
    const plan = new ModelPlan(model);
    const moduleClasses = [0, 2, 3, 5, 6];
    const modules = moduleClasses.map((c, i) => ({
      masks: [Uint8Array.from({ length: CLASSES }, (_, u) => (u === (i + 1) % CLASSES ? 0 : 1))],
      head: moduleHead(plan.headWeights(), c),
    }));
    const runner = new ModuleRunner(plan, modules);
    try {
      const r = await evaluateModules(plan, runner, batches(images, labels, 16), { imageShape: IMAGE_SHAPE, preprocessing: { scale: 1 }, moduleClasses });
      expect(r).toEqual({
        count: 40,
        // The same model and data as 'model evaluation' above: the same top-1/top-5.
        model: { top1: 0.075, top5: 0.6 },
        composed: {
          top1: 0.05,
          top5: 0.75,
          perClass: [0, 0, 1 / 7, 0.25, 0, 0, 0],
          confusion: [
            [0, 0, 0, 4, 0, 0, 0],
            [1, 0, 0, 3, 0, 1, 1],
            [0, 0, 1, 4, 0, 2, 0],
            [1, 0, 0, 1, 0, 2, 0],
            [1, 0, 0, 0, 0, 2, 1],
            [2, 0, 0, 4, 0, 0, 2],
            [2, 0, 0, 1, 0, 4, 0],
          ],
        },
        agreement: 0.4,
        oneVsRest: [0.6, 0.775, 0.25, 0.45, 0.55],
      });
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
      confusion: [
        [2, 3, 0, 1, 0, 1],
        [3, 0, 2, 2, 2, 0],
        [2, 1, 1, 0, 0, 1],
        [4, 2, 1, 1, 0, 0],
        [1, 3, 2, 0, 0, 1],
        [1, 0, 1, 2, 0, 0],
      ],
    };
    expect(scorer.result()).toEqual({ ...composed, baseline: { top1: 0.2, top5: 0.975 } });
    // Without baseline classes there is no baseline field at all (the API shape).
    const plain = new CompositionScorer(k);
    plain.add(margins, compLabels);
    expect(plain.result()).toStrictEqual(composed);
  });
});
