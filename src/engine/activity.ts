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

/**
 * Per observation point, per unit: how many of the first `n` inputs made it active (with
 * `everActive`: 1 when at least one did, else 0).
 */
export type Counts = Int32Array[];

export interface CountOptions {
  readonly preprocessing: PreprocessingSpec;
  readonly batchSize: number;
  /** Called after every batch with the number of inputs run so far. */
  readonly onBatch?: (inputsDone: number) => Promise<void> | void;
  /**
   * Record only whether a unit was ever active (all tau = 0 needs): full batches across the
   * snapshot marks and one matMul per observation point instead of a count per unit.
   */
  readonly everActive?: boolean;
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
export async function countClass(
  plan: ModelPlan,
  source: SampleSource,
  pool: readonly number[],
  marks: readonly number[],
  opts: CountOptions,
): Promise<Map<number, Counts>> {
  if (opts.everActive) return everActiveClass(plan, source, pool, marks, opts);
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
    out.set(
      mark,
      running.map((r) => r.slice()),
    );
  }
  return out;
}

/**
 * countClass for tau = 0: "ever active" bitsets after each mark. Batches are full (a mark inside a
 * batch is a segment boundary, not a batch boundary). ReLU outputs are >= 0, so a unit is active on
 * some input of a segment iff its sum over the segment is > 0: per observation point one matMul of
 * a [segments x B] 0/1 indicator with the [B x units] output, and one readback for all points.
 */
async function everActiveClass(
  plan: ModelPlan,
  source: SampleSource,
  pool: readonly number[],
  marks: readonly number[],
  opts: CountOptions,
): Promise<Map<number, Counts>> {
  const out = new Map<number, Counts>();
  if (marks.length === 0) return out;
  const ever: Counts = plan.observationPoints.map((p) => new Int32Array(p.units));
  const width = plan.observationPoints.reduce((a, p) => a + p.units, 0);
  const last = marks[marks.length - 1];
  for (let done = 0; done < last; ) {
    const take = Math.min(opts.batchSize, last - done);
    if (width === 0) {
      // No observation point (e.g. tanh only): nothing to count, so no read and no forward pass;
      // every mark gets the (empty) per-point results and progress advances batch by batch.
      for (const m of marks) if (m > done && m <= done + take) out.set(m, []);
      done += take;
      await opts.onBatch?.(take);
      continue;
    }
    const pixels = await source.read(pool.slice(done, done + take));
    const x = toTensor(plan, pixels, take, source.imageShape, opts.preprocessing);
    // Segment ends inside this batch: the marks in (done, done + take], and the batch end.
    const ends = [...new Set([...marks.filter((m) => m > done && m <= done + take), done + take])].sort((a, b) => a - b);
    const ind = new Float32Array(ends.length * take);
    let from = 0;
    ends.forEach((e, r) => {
      ind.fill(1, r * take + from, r * take + e - done);
      from = e - done;
    });
    const indicator = tf.tensor2d(ind, [ends.length, take]);
    const sums: tf.Tensor[] = [];
    // runToFeatures frees what observe derives unless kept.
    runToFeatures(plan, x, { observe: (i, v) => (sums[i] = tf.keep(tf.matMul(indicator, v.reshape([take, -1])))) }).dispose();
    const all = tf.concat(sums, 1);
    const data = all.dataSync() as Float32Array;
    [all, indicator, ...sums].forEach((t) => t.dispose());
    x.dispose();
    ends.forEach((e, r) => {
      let off = r * width;
      for (const bits of ever) {
        for (let u = 0; u < bits.length; u++) if (data[off + u] > 0) bits[u] = 1;
        off += bits.length;
      }
      if (marks.includes(e))
        out.set(
          e,
          ever.map((b) => b.slice()),
        );
    });
    done += take;
    await opts.onBatch?.(take);
  }
  return out;
}
