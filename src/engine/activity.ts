/**
 * Activity counting (ALGORITHM.md section 3): each class's shuffled inputs run once through the
 * model; per observation point and unit we count the inputs on which the unit is active (> 0),
 * and keep a copy of the counts after each prefix length some module needs.
 */
import * as tf from '@tensorflow/tfjs';
import { runToFeatures, type ModelPlan } from './graph';
import { preprocess, type PreprocessingSpec } from './preprocess';

export interface SampleSource {
  /** [H, W, C] of one image. */
  readonly imageShape: readonly number[];
  /** NHWC pixels of the images at `indices`, in that order. */
  read(indices: readonly number[]): Promise<Uint8Array | Float32Array>;
}

/** Per observation point, per unit: how many of the first `n` inputs made it active. */
export type Counts = Int32Array[];

export interface CountOptions {
  readonly preprocessing: PreprocessingSpec;
  readonly batchSize: number;
  /** Called after every batch with the number of inputs run so far. */
  readonly onBatch?: (inputsDone: number) => Promise<void> | void;
}

export function toTensor(plan: ModelPlan, pixels: Uint8Array | Float32Array, n: number, shape: readonly number[], spec: PreprocessingSpec): tf.Tensor {
  const [h, w, c] = shape;
  const rank = plan.model.inputs[0].shape.length;
  return tf.tensor(preprocess(pixels, c, spec), rank === 3 ? [n, h, w] : [n, h, w, c], 'float32');
}

/** Active-unit counts of one batch, per observation point. */
export function batchCounts(plan: ModelPlan, x: tf.Tensor): Counts {
  const kept: tf.Tensor[] = [];
  const features = runToFeatures(plan, x, {
    observe: (i, value) => {
      kept[i] = tf.keep(value.greater(0).sum(0).reshape([-1]));
    },
  });
  features.dispose();
  return kept.map((t) => {
    const data = t.dataSync() as Int32Array;
    t.dispose();
    return Int32Array.from(data);
  });
}

/**
 * @param pool the class's inputs in sample order
 * @param marks ascending prefix lengths to snapshot (the last is how far to run)
 * @returns counts after each mark, keyed by the mark
 */
export async function countClass(plan: ModelPlan, source: SampleSource, pool: readonly number[], marks: readonly number[], opts: CountOptions): Promise<Map<number, Counts>> {
  const out = new Map<number, Counts>();
  const running: Counts = plan.observationPoints.map((p) => new Int32Array(p.units));
  let done = 0;
  for (const mark of marks) {
    while (done < mark) {
      const take = Math.min(opts.batchSize, mark - done);
      const indices = pool.slice(done, done + take);
      const pixels = await source.read(indices);
      const x = toTensor(plan, pixels, take, source.imageShape, opts.preprocessing);
      const counts = batchCounts(plan, x);
      x.dispose();
      counts.forEach((c, i) => {
        const r = running[i];
        for (let u = 0; u < c.length; u++) r[u] += c[u];
      });
      done += take;
      await opts.onBatch?.(take);
    }
    out.set(mark, running.map((r) => r.slice()));
  }
  return out;
}
