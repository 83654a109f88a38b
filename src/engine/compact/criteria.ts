/**
 * Channel selection criteria: how much each channel of each prunable space matters to a module,
 * measured on the module itself (masks applied) over its calibration inputs. A channel is scored
 * where a linear layer (or the head) reads it, summed over the tensors of its space that are read.
 *
 * - activation-rate: how often the channel is active (> 0), the paper's own notion of use;
 * - energy: mean squared activation x squared norm of the weights that read it, i.e. how much
 *   signal it sends downstream;
 * - taylor: |d margin / d activation x activation| per input (summed over positions first), the
 *   first-order change of the module's margin if the channel were removed. Gradients only score.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelPlan, PlanStep } from '../graph';
import { bnAffine, type LinearWeights } from './network';
import { lastAxisNorm, type ChannelMap } from './spaces';

export const COMPACT_CRITERIA = ['activation-rate', 'energy', 'taylor'] as const;
export type CompactCriterion = (typeof COMPACT_CRITERIA)[number];

/** A tensor read by a linear layer, with the squared norm of the weights reading each channel. */
interface Reader {
  readonly key: string;
  readonly space: number;
  readonly weightNorm: Float32Array;
}

/** Every (tensor, linear reader) pair whose tensor lies in a prunable space, the head included. */
function readers(plan: ModelPlan, map: ChannelMap, folded: ReadonlyMap<number, LinearWeights>, d: Float32Array): Reader[] {
  const byKey = new Map<string, Reader>();
  const add = (key: string, kernel: tf.Tensor): void => {
    const space = map.spaceOf.get(key) as number;
    if (!map.spaces[space].prunable) return;
    const channels = map.spaces[space].channels;
    // Rows of the reader's kernel grouped per input channel: [.., channels, out] -> per channel.
    const norm = tf.tidy(
      () =>
        kernel
          .reshape([-1, channels, kernel.shape[kernel.rank - 1]])
          .square()
          .sum([0, 2])
          .dataSync() as Float32Array,
    );
    const prev = byKey.get(key);
    if (prev) for (let c = 0; c < channels; c++) prev.weightNorm[c] += norm[c];
    else byKey.set(key, { key, space, weightNorm: Float32Array.from(norm) });
  };
  plan.steps.forEach((step, i) => {
    if (step.className !== 'Conv2D' && step.className !== 'Dense') return;
    add(step.inputs[0], (folded.get(i) as LinearWeights).kernel);
  });
  const head = tf.tensor2d(d, [d.length, 1]);
  add(plan.featuresKey, head);
  head.dispose();
  return [...byKey.values()];
}

export interface ScoringRun {
  readonly plan: ModelPlan;
  readonly map: ChannelMap;
  readonly folded: ReadonlyMap<number, LinearWeights>;
  /** Per observation point: the module's mask as a [1, ...shape] tensor (undefined: all kept). */
  readonly masks: readonly (tf.Tensor | undefined)[];
  readonly d: Float32Array;
  readonly e: number;
}

/**
 * Scores of every channel, per space (zeros for fixed spaces), over `x` in batches.
 * @returns per space, one score per channel (higher = keep)
 */
export async function channelScores(run: ScoringRun, x: tf.Tensor, criterion: CompactCriterion, batchSize = 64): Promise<Float32Array[]> {
  const { plan, map } = run;
  const read = readers(plan, map, run.folded, run.d);
  // No prunable channel (every space fixed, e.g. all read by layers compaction cannot slice): nothing to score.
  if (read.length === 0) return map.spaces.map((sp) => new Float32Array(sp.channels));
  const sums = read.map((r) => new Float64Array(map.spaces[r.space].channels));
  const n = x.shape[0];
  const dT = tf.tensor2d(run.d, [run.d.length, 1]);
  for (let s = 0; s < n; s += batchSize) {
    const xb = x.slice(s, Math.min(batchSize, n - s));
    const parts = tf.tidy(() => batchStats(run, xb, read, dT, criterion).map((t) => t.dataSync() as Float32Array));
    parts.forEach((p, j) => {
      for (let c = 0; c < p.length; c++) sums[j][c] += p[c];
    });
    xb.dispose();
    await new Promise((r) => setImmediate(r));
  }
  dT.dispose();
  const scores = map.spaces.map((sp) => new Float32Array(sp.channels));
  const seen = map.spaces.map(() => 0);
  read.forEach((r, j) => {
    const w = criterion === 'energy' ? r.weightNorm : undefined;
    for (let c = 0; c < sums[j].length; c++) scores[r.space][c] += (sums[j][c] / n) * (w ? w[c] : 1);
    seen[r.space] += 1;
  });
  // The activation rate is a rate: averaged over the tensors of a space, not summed.
  if (criterion === 'activation-rate') scores.forEach((s, k) => seen[k] > 1 && s.forEach((v, c) => (s[c] = v / seen[k])));
  return scores;
}

/** Per reader: the batch's per-channel sum (over inputs) of the criterion's statistic. */
function batchStats(run: ScoringRun, x: tf.Tensor, read: readonly Reader[], dT: tf.Tensor2D, criterion: CompactCriterion): tf.Tensor[] {
  const perChannel = (r: Reader, t: tf.Tensor): tf.Tensor3D => t.reshape([t.shape[0], -1, run.map.spaces[r.space].channels]) as tf.Tensor3D;
  if (criterion !== 'taylor') {
    const values = forward(run, x, new Set(read.map((r) => r.key)));
    return read.map((r) => {
      const v = perChannel(r, values.get(r.key) as tf.Tensor);
      return criterion === 'energy' ? v.square().mean(1).sum(0) : v.greater(0).cast('float32').mean(1).sum(0);
    });
  }
  const keys = read.map((r) => r.key);
  const zeros = keys.map((k) => tf.zeros([x.shape[0], ...(run.plan.shapes.get(k) as number[])]));
  // tf.grads frees what its function made: the activations it must hand back are kept, then freed here.
  const captured = new Map<string, tf.Tensor>();
  const margin = (...offsets: tf.Tensor[]): tf.Scalar => {
    const values = forward(run, x, new Set(keys), new Map(keys.map((k, j) => [k, offsets[j]])));
    for (const k of keys) captured.set(k, tf.keep(values.get(k) as tf.Tensor));
    return (values.get(run.plan.featuresKey) as tf.Tensor2D).matMul(dT).sum() as tf.Scalar;
  };
  const grads = tf.grads(margin)(zeros);
  const out = read.map((r, j) =>
    perChannel(r, (captured.get(r.key) as tf.Tensor).mul(grads[j]))
      .sum(1)
      .abs()
      .sum(0),
  );
  for (const t of captured.values()) t.dispose();
  return out;
}

/**
 * BatchNormalization as x * scale + shift: the same values as the layer at inference, and a
 * gradient tfjs can take (its own batchNorm gradient fails without gamma or beta, scale=False).
 */
function affine(step: PlanStep, x: tf.Tensor): tf.Tensor {
  const { scale, shift } = bnAffine(step);
  return x.mul(scale).add(shift);
}

/**
 * The module's forward pass (masks applied), returning the tensors at `want` and the features.
 * With `offsets`, the tensor at each of those keys gets the offset added (zeros whose gradient is
 * the margin's gradient with respect to that tensor).
 */
function forward(run: ScoringRun, x: tf.Tensor, want: ReadonlySet<string>, offsets?: ReadonlyMap<string, tf.Tensor>): Map<string, tf.Tensor> {
  const { plan } = run;
  const values = new Map<string, tf.Tensor>([[plan.inputKey, x]]);
  const out = new Map<string, tf.Tensor>();
  for (const step of plan.steps) {
    const args = step.inputs.map((k) => values.get(k) as tf.Tensor);
    const channelNorm = step.className === 'BatchNormalization' && lastAxisNorm(step, (plan.shapes.get(step.output) ?? []).length);
    let y = channelNorm ? affine(step, args[0]) : (step.layer.apply(args.length === 1 ? args[0] : args, { training: false }) as tf.Tensor);
    const mask = step.observation === undefined ? undefined : run.masks[step.observation];
    if (mask) y = y.mul(mask);
    const offset = offsets?.get(step.output);
    if (offset) y = y.add(offset);
    values.set(step.output, y);
  }
  for (const k of want) out.set(k, values.get(k) as tf.Tensor);
  out.set(plan.featuresKey, values.get(plan.featuresKey) as tf.Tensor);
  return out;
}
