/**
 * Activity counting (ALGORITHM.md section 3): each class's shuffled inputs run once through the
 * model; per observation point and unit we count the inputs on which the unit is active (> 0),
 * and keep a copy of the counts after each prefix length some module needs.
 */
import * as tf from '@tensorflow/tfjs';
import { runToFeatures, type ModelPlan } from './graph';
import type { PhaseClock } from './phase-clock';
import { preprocess, type PreprocessingSpec } from './preprocess';

export interface SampleSource {
  /** [H, W, C] of one image. */
  readonly imageShape: readonly number[];
  /** NHWC pixels of the images at `indices`, in that order. */
  read(indices: readonly number[]): Promise<Uint8Array | Float32Array>;
}

/**
 * Ever-active flags of one observation point's units, packed 8 to a byte (unit u: bit u & 7 of
 * byte u >> 3). A tau = 0 decomposition keeps one or two snapshots per class; for 1000 classes of
 * a ResNet-18 at 224x224 (2.3 M units) that is 4.6 GB as one byte per unit, 0.6 GB packed.
 */
export class PackedBits {
  private constructor(
    readonly bytes: Uint8Array,
    readonly length: number,
  ) {}

  /** Packs 0/1 flags. */
  static pack(flags: Uint8Array): PackedBits {
    const bytes = new Uint8Array((flags.length + 7) >> 3);
    // Branch-free: on activity data a branch per unit mispredicts about half the time.
    for (let u = 0; u < flags.length; u++) bytes[u >> 3] |= (flags[u] & 1) << (u & 7);
    return new PackedBits(bytes, flags.length);
  }

  /** The flags as 0/1, written into `out` (at least `length` long) and returned. */
  unpackInto(out: Int32Array): Int32Array {
    const b = this.bytes;
    for (let u = 0; u < this.length; u++) out[u] = (b[u >> 3] >> (u & 7)) & 1;
    return out;
  }
}

/**
 * Per observation point, per unit: how many of the first `n` inputs made it active (int32), or with
 * `everActive` whether at least one did (packed bits).
 */
export type Counts = (Int32Array | PackedBits)[];

/**
 * A point's counts per unit: the counts themselves, or the bits unpacked into `scratch`. Always an
 * Int32Array, so that the hot loops reading them see one array type.
 */
export function unitValues(part: Int32Array | PackedBits, scratch: Int32Array): Int32Array {
  return part instanceof PackedBits ? part.unpackInto(scratch) : part;
}

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
  /** Times each batch's phases (bench only: it waits for every forward pass to finish). */
  readonly clock?: PhaseClock;
}

export function toTensor(plan: ModelPlan, pixels: Uint8Array | Float32Array, n: number, shape: readonly number[], spec: PreprocessingSpec): tf.Tensor {
  const [h, w, c] = shape;
  const rank = plan.model.inputs[0].shape.length;
  return tf.tensor(preprocess(pixels, c, spec), rank === 3 ? [n, h, w] : [n, h, w, c], 'float32');
}

/** Active-unit counts of one batch, per observation point. */
export function batchCounts(plan: ModelPlan, x: tf.Tensor, clock?: PhaseClock): Int32Array[] {
  const kept: tf.Tensor[] = [];
  const features = runToFeatures(plan, x, {
    observe: (i, value) => {
      kept[i] = tf.keep(value.greater(0).sum(0).reshape([-1]));
    },
  });
  if (clock) {
    clock.settle(features);
    clock.lap('forward');
  }
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
  const running = plan.observationPoints.map((p) => new Int32Array(p.units));
  let done = 0;
  for (const mark of marks) {
    while (done < mark) {
      const take = Math.min(opts.batchSize, mark - done);
      const indices = pool.slice(done, done + take);
      opts.clock?.start();
      const pixels = await source.read(indices);
      const x = toTensor(plan, pixels, take, source.imageShape, opts.preprocessing);
      opts.clock?.lap('data');
      const counts = batchCounts(plan, x, opts.clock);
      x.dispose();
      counts.forEach((c, i) => {
        const r = running[i];
        for (let u = 0; u < c.length; u++) r[u] += c[u];
      });
      opts.clock?.lap('counting');
      opts.clock?.endBatch(take);
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

/** One class's share of a counting stream: its inputs in sample order and the prefix lengths to snapshot. */
export interface ClassJob {
  readonly pool: readonly number[];
  /** Ascending prefix lengths to snapshot (the last is how far to run); empty: the class is not run. */
  readonly marks: readonly number[];
}

/** countClass for tau = 0: one class. */
async function everActiveClass(
  plan: ModelPlan,
  source: SampleSource,
  pool: readonly number[],
  marks: readonly number[],
  opts: CountOptions,
): Promise<Map<number, Counts>> {
  return (await everActiveClasses(plan, source, [{ pool, marks }], opts))[0];
}

/**
 * "Ever active" bitsets for several classes after each of their marks (tau = 0). The classes'
 * prefixes run as one stream, class after class, in full batches: with many classes and few
 * samples each (1000 classes x 2), per-class batches of 2 would leave the backend idle. A class
 * boundary or a mark inside a batch is a segment boundary, not a batch boundary. ReLU outputs are
 * >= 0, so a unit is active on some input of a segment iff its sum over the segment is > 0: per
 * observation point one matMul of a [segments x B] 0/1 indicator with the [B x units] output, and
 * one readback for all points.
 * @returns per job, its bitsets after each of its marks
 */
export async function everActiveClasses(plan: ModelPlan, source: SampleSource, jobs: readonly ClassJob[], opts: CountOptions): Promise<Map<number, Counts>[]> {
  const out = jobs.map(() => new Map<number, Counts>());
  const width = plan.observedUnits;
  // The stream: job j covers positions [start[j], start[j] + last mark of j).
  const start: number[] = [];
  let total = 0;
  for (const job of jobs) {
    start.push(total);
    total += job.marks.length ? job.marks[job.marks.length - 1] : 0;
  }
  /** The job whose range holds position t: the last one starting at or before t (an empty range shares its start with the next). */
  const jobAt = (t: number): number => {
    let lo = 0;
    let hi = jobs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (start[mid] <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const ever = new Map<number, Uint8Array[]>();
  for (let done = 0; done < total; ) {
    const take = Math.min(opts.batchSize, total - done);
    // Segment ends inside this batch: every job end and every mark in (done, done + take], and the batch end.
    const endSet = new Set<number>([done + take]);
    jobs.forEach((job, j) => {
      for (const m of job.marks) {
        const e = start[j] + m;
        if (e > done && e <= done + take) endSet.add(e);
      }
    });
    const ends = [...endSet].sort((a, b) => a - b);
    if (width === 0) {
      // No observation point (e.g. tanh only): nothing to count, so no read and no forward pass;
      // every mark gets the (empty) per-point results and progress advances batch by batch.
      for (const e of ends) {
        const j = jobAt(e - 1);
        if (jobs[j].marks.includes(e - start[j])) out[j].set(e - start[j], []);
      }
      done += take;
      await opts.onBatch?.(take);
      continue;
    }
    const indices: number[] = [];
    for (let t = done; t < done + take; t++) {
      const j = jobAt(t);
      indices.push(jobs[j].pool[t - start[j]]);
    }
    opts.clock?.start();
    const pixels = await source.read(indices);
    const x = toTensor(plan, pixels, take, source.imageShape, opts.preprocessing);
    opts.clock?.lap('data');
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
    if (opts.clock) {
      opts.clock.settle(sums[sums.length - 1]);
      opts.clock.lap('forward');
    }
    // Compared with 0 in the backend: a byte per value to read back, and a branch-free OR below.
    const active = tf.tidy(() => tf.concat(sums, 1).greater(0));
    const data = active.dataSync() as Uint8Array;
    [active, indicator, ...sums].forEach((t) => t.dispose());
    x.dispose();
    ends.forEach((e, r) => {
      const j = jobAt(e - 1);
      let bits = ever.get(j);
      if (!bits) {
        bits = plan.observationPoints.map((p) => new Uint8Array(p.units));
        ever.set(j, bits);
      }
      let off = r * width;
      for (const b of bits) {
        orInto(b, data, off);
        off += b.length;
      }
      const mark = e - start[j];
      if (jobs[j].marks.includes(mark))
        out[j].set(
          mark,
          bits.map((b) => PackedBits.pack(b)),
        );
      // A finished class's running bitsets are not needed again.
      if (mark === jobs[j].marks[jobs[j].marks.length - 1]) ever.delete(j);
    });
    opts.clock?.lap('counting');
    opts.clock?.endBatch(take);
    done += take;
    await opts.onBatch?.(take);
  }
  return out;
}

/** target[u] |= source[offset + u] for every u of target (a function of its own: one hot, monomorphic loop). */
function orInto(target: Uint8Array, source: Uint8Array, offset: number): void {
  for (let u = 0; u < target.length; u++) target[u] |= source[offset + u];
}
