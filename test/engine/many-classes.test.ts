/**
 * Many classes (issue 13): the paper's datasets include CIFAR-100 and ImageNet-200, and users bring
 * ImageNet's 1000. A small CNN with a 1000-class head (seeded weights: the tau = 0 invariant holds
 * for any weights) decomposes into 1000 modules whose composition predicts what the model predicts
 * on every sampled input, on both the shared run and the naive path.
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, ModuleRunner, decompose, rankByMargin } from '../../src/engine';
import { toTensor } from '../../src/engine/activity';
import { memorySource } from '../support/sample-source';
import { seededClassifier } from '../support/seeded-net';

require('@tensorflow/tfjs-node');

const SHAPE = [16, 16, 3];
const PER = 16 * 16 * 3;

/** Top-1 of each row of a [n x k] score matrix (the first index among equals). */
const argmax = (rows: Float32Array, k: number): number[] => rankByMargin(rows, k, 1).map((r) => r[0]);

describe.each([100, 1000])('a %s-class CNN', (classes) => {
  const perClass = 2;
  const n = classes * perClass;
  const images = Uint8Array.from({ length: n * PER }, (_, i) => (i * 2654435761) >>> 24);
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const source = memorySource(images, SHAPE);

  it('decomposes into one module per class; the composition predicts what the model does on every sampled input', async () => {
    await tf.setBackend('tensorflow');
    const model = seededClassifier(classes, 16, SHAPE);
    const plan = new ModelPlan(model);
    const preprocessing = { scale: 1 / 255 };
    const t0 = Date.now();
    const result = await decompose(model, source, labels, {
      ...DEFAULT_DECOMPOSE_OPTIONS,
      samplesPerClass: perClass,
      tanglingRatio: classes,
      batchSize: 256,
      preprocessing,
    });
    const decomposeMs = Date.now() - t0;
    expect(result.modules).toHaveLength(classes);
    // Sampled inputs: every module saw all of them (concern: its class; tangling: every other class).
    const m = 64;
    const x = toTensor(plan, images.subarray(0, m * PER), m, SHAPE, preprocessing);
    const modelTop1 = argmax(
      tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array),
      classes,
    );
    const runner = new ModuleRunner(plan, result.modules);
    const t1 = Date.now();
    const shared = runner.margins(x);
    const composeMs = Date.now() - t1;
    const naive = runner.marginsNaive(x);
    expect(argmax(shared.dataSync() as Float32Array, classes)).toEqual(modelTop1);
    expect(argmax(naive.dataSync() as Float32Array, classes)).toEqual(modelTop1);
    // The same run with bitsets instead of dense tensors (the form ImageNet-size models take).
    const sparseRunner = new ModuleRunner(plan, result.modules, 'post-activation', { denseMaskBytes: 0 });
    const sparse = sparseRunner.margins(x);
    const [a, b] = [sparse.dataSync() as Float32Array, shared.dataSync() as Float32Array];
    expect(a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i])), 0)).toBeLessThan(1e-5);
    expect(sparseRunner.divergenceStats).toEqual(runner.divergenceStats);
    sparse.dispose();
    sparseRunner.dispose();
    console.log(
      `${classes} classes: decomposition of ${n} inputs ${decomposeMs} ms; ${classes} modules over ${m} inputs ${composeMs} ms ` +
        `(shared run, ${runner.passStats.sharedPasses} passes, most rows ${runner.passStats.maxRows}); composed top-1 = model top-1 on ${m}/${m}`,
    );
    tf.dispose([x, shared, naive]);
    runner.dispose();
    model.dispose();
  });
});
