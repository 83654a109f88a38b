/**
 * Building a compact module's network: the model's layers with only the kept channels, each
 * BatchNormalization folded into the layer that feeds it when that is exact, and the module's
 * margin as a 2-unit linear head [d . f + e, 0], so the result is an ordinary classifier plan
 * (ModelPlan, ModuleRunner and export take it as they take the model).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import type { ModelPlan, PlanStep } from '../graph';
import { cloneLayer } from '../layer-clone';
import type { ChannelMap } from './spaces';

/** Per space: the kept channel indices, ascending. */
export type KeepSets = readonly Int32Array[];

/** A linear map's weights in Keras layout (Conv2D [kh, kw, in, out], Dense [in, out], Depthwise [kh, kw, C, 1]). */
export interface LinearWeights {
  readonly kernel: tf.Tensor;
  readonly bias: tf.Tensor1D;
}

function cfg(step: PlanStep): Record<string, unknown> {
  return step.layer.getConfig() as Record<string, unknown>;
}

/**
 * The weights of every Conv2D/Dense/DepthwiseConv2D step with its folded BatchNormalization
 * applied: kernel x s and (bias - mean) x s + beta per output channel, s = gamma / sqrt(var + eps).
 * @returns tensors the caller owns, by step index
 */
export function foldedWeights(plan: ModelPlan, map: ChannelMap): Map<number, LinearWeights> {
  const bnOf = new Map<number, number>();
  for (const [bn, p] of map.folded) bnOf.set(p, bn);
  const out = new Map<number, LinearWeights>();
  plan.steps.forEach((step, i) => {
    if (!['Conv2D', 'Dense', 'DepthwiseConv2D'].includes(step.className)) return;
    const [kernel, maybeBias] = step.layer.getWeights();
    const width =
      step.className === 'DepthwiseConv2D' ? (kernel.shape[2] as number) * (kernel.shape[3] ?? 1) : (kernel.shape[kernel.shape.length - 1] as number);
    const bias = (cfg(step).useBias ?? true) && maybeBias ? (maybeBias as tf.Tensor1D) : undefined;
    const bn = bnOf.get(i);
    out.set(
      i,
      tf.tidy(() => {
        const b0 = bias ? bias.clone() : tf.zeros([width]);
        if (bn === undefined) return { kernel: kernel.clone(), bias: b0 as tf.Tensor1D };
        const { scale, shift } = bnAffine(plan.steps[bn]);
        // Depthwise kernels are [kh, kw, C, 1]: channel axis 2 lines up with s broadcast over [C, 1].
        const s = step.className === 'DepthwiseConv2D' ? scale.reshape([-1, 1]) : scale;
        return { kernel: kernel.mul(s), bias: b0.mul(scale).add(shift) as tf.Tensor1D };
      }),
    );
  });
  return out;
}

/** A BatchNormalization step as y = x * scale + shift (on the last axis). */
export function bnAffine(step: PlanStep): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  const c = cfg(step);
  const w = step.layer.getWeights();
  let k = 0;
  const gamma = c.scale === false ? undefined : w[k++];
  const beta = c.center === false ? undefined : w[k++];
  const mean = w[k++];
  const variance = w[k++];
  const eps = (c.epsilon as number | undefined) ?? 1e-3;
  const inv = variance.add(eps).rsqrt();
  const scale = (gamma ? inv.mul(gamma) : inv) as tf.Tensor1D;
  const shift = (beta ? beta.sub(mean.mul(scale)) : mean.mul(scale).neg()) as tf.Tensor1D;
  return { scale, shift };
}

/** Rows of a layer reading `key`: its kept channels, at every spatial position when it was flattened. */
export function inputRows(map: ChannelMap, keep: KeepSets, key: string): Int32Array {
  const kept = keep[map.spaceOf.get(key) as number];
  const positions = map.positionsOf.get(key);
  if (positions === undefined) return kept;
  const channels = map.spaces[map.spaceOf.get(key) as number].channels;
  const rows = new Int32Array(positions * kept.length);
  for (let p = 0; p < positions; p++) for (let j = 0; j < kept.length; j++) rows[p * kept.length + j] = p * channels + kept[j];
  return rows;
}

export interface CompactNetwork {
  readonly model: tf.LayersModel;
  /** Per compact step (by layer name), the linear layer whose weights a re-fit replaces. */
  readonly linear: ReadonlyMap<string, tf.layers.Layer>;
  /** Name of the margin head layer. */
  readonly headName: string;
}

/**
 * The compact network: the plan's layers with the kept channels and the given linear weights.
 * @param weights per plan step index, the (folded, already sliced) weights of its linear layers
 * @param head margin weights on the kept features: d [F'], e
 */
export function buildNetwork(
  plan: ModelPlan,
  map: ChannelMap,
  keep: KeepSets,
  weights: ReadonlyMap<number, LinearWeights>,
  head: { d: Float32Array; e: number },
): CompactNetwork {
  const inShape = plan.shapes.get(plan.inputKey) as number[];
  const input = tf.input({ shape: inShape, name: `${plan.model.inputs[0].sourceLayer.name}` });
  const values = new Map<string, tf.SymbolicTensor>([[plan.inputKey, input]]);
  const pending: { layer: tf.layers.Layer; values: tf.Tensor[] }[] = [];
  const linear = new Map<string, tf.layers.Layer>();
  plan.steps.forEach((step, i) => {
    const args = step.inputs.map((k) => values.get(k) as tf.SymbolicTensor);
    const folded = map.folded.get(i);
    if (folded !== undefined) {
      // The BatchNormalization lives on in its producer's weights.
      values.set(step.output, args[0]);
      return;
    }
    const width = keep[map.spaceOf.get(step.output) as number].length;
    let layer: tf.layers.Layer;
    if (step.className === 'Conv2D' || step.className === 'Dense') {
      const w = weights.get(i) as LinearWeights;
      layer = cloneLayer(step.layer, step.className === 'Conv2D' ? { filters: width, useBias: true } : { units: width, useBias: true });
      pending.push({ layer, values: [w.kernel, w.bias] });
      linear.set(step.layer.name, layer);
    } else if (step.className === 'DepthwiseConv2D') {
      const w = weights.get(i) as LinearWeights;
      layer = cloneLayer(step.layer, { useBias: true });
      pending.push({ layer, values: [w.kernel, w.bias] });
    } else if (step.className === 'BatchNormalization') {
      layer = cloneLayer(step.layer);
      const kept = keep[map.spaceOf.get(step.output) as number];
      const idx = tf.tensor1d(kept, 'int32');
      pending.push({ layer, values: step.layer.getWeights().map((t) => tf.gather(t, idx)) });
      idx.dispose();
    } else {
      const own = step.layer.getWeights();
      // A layer whose weights compaction cannot slice (SeparableConv2D, PReLU, ...) fixes its
      // channel spaces (spaces.ts): all its channels stay, so its weights are copied as they are.
      const whole = step.inputs.every((k) => keep[map.spaceOf.get(k) as number].length === map.spaces[map.spaceOf.get(k) as number].channels);
      if (own.length > 0 && !(whole && width === map.spaces[map.spaceOf.get(step.output) as number].channels))
        throw new EngineError('UNSUPPORTED_LAYER', `layer ${step.layer.name} (${step.className}) has weights compaction cannot slice`);
      layer = cloneLayer(step.layer);
      if (own.length > 0) pending.push({ layer, values: own.map((t) => t.clone()) });
    }
    values.set(step.output, layer.apply(args.length === 1 ? args[0] : args) as tf.SymbolicTensor);
  });
  const headName = plan.head.name;
  const headLayer = tf.layers.dense({ units: 2, useBias: true, name: headName });
  const features = values.get(plan.featuresKey) as tf.SymbolicTensor;
  const output = headLayer.apply(features) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name: `${plan.model.name}_compact` });
  for (const { layer, values: w } of pending) layer.setWeights(w);
  setMarginHead(headLayer, head.d, head.e);
  return { model, linear, headName };
}

/** Writes margin weights into a 2-unit head: column 0 = d, column 1 = 0 (so z_c - z_uc = d . f + e). */
export function setMarginHead(layer: tf.layers.Layer, d: Float32Array, e: number): void {
  const kernel = new Float32Array(d.length * 2);
  for (let i = 0; i < d.length; i++) kernel[i * 2] = d[i];
  const k = tf.tensor2d(kernel, [d.length, 2]);
  const b = tf.tensor1d([e, 0]);
  layer.setWeights([k, b]);
  k.dispose();
  b.dispose();
}

/**
 * The folded weights of step `i` cut to the kept channels: rows (input channels, or flattened
 * positions x channels) and output channels.
 * @returns tensors the caller owns
 */
export function slicedWeights(plan: ModelPlan, map: ChannelMap, keep: KeepSets, i: number, w: LinearWeights): LinearWeights {
  const step = plan.steps[i];
  const outKey = map.folded.size ? outputKeyOf(plan, map, i) : step.output;
  const outKept = keep[map.spaceOf.get(outKey) as number];
  return tf.tidy(() => {
    const rows = tf.tensor1d(inputRows(map, keep, step.inputs[0]), 'int32');
    const cols = tf.tensor1d(outKept, 'int32');
    if (step.className === 'DepthwiseConv2D') {
      return { kernel: tf.gather(w.kernel, cols, 2), bias: tf.gather(w.bias, cols) as tf.Tensor1D };
    }
    const inAxis = w.kernel.rank - 2;
    const kernel = tf.gather(tf.gather(w.kernel, rows, inAxis), cols, inAxis + 1);
    return { kernel, bias: tf.gather(w.bias, cols) as tf.Tensor1D };
  });
}

/** The key a linear step's (folded) output ends up under: its BatchNormalization's output when folded. */
export function outputKeyOf(plan: ModelPlan, map: ChannelMap, i: number): string {
  for (const [bn, p] of map.folded) if (p === i) return plan.steps[bn].output;
  return plan.steps[i].output;
}
