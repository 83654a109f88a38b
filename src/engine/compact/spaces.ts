/**
 * Channel spaces: which channels of which tensors must be cut together.
 *
 * Every Conv2D/Dense output starts a space of its own. Layers that act per channel (BN, ReLU,
 * pooling, padding, depthwise with multiplier 1, ...) pass their input's space through, and `Add`
 * merges the spaces of its inputs: cutting channel c of a residual stream cuts it from every tensor
 * the `Add`s tie together. A space touched by anything the engine cannot slice (the model input,
 * Reshape, a channels-first layer, an unknown layer with weights) is fixed: all its channels stay.
 */
import type { ModelPlan, PlanStep } from '../graph';

export interface ChannelSpace {
  readonly channels: number;
  readonly prunable: boolean;
  /** An Add joins it: a residual stream, which every block reads and writes. */
  readonly residual: boolean;
}

export interface ChannelMap {
  /** Distinct spaces (union-find roots), indexed by `spaceOf`. */
  readonly spaces: ChannelSpace[];
  /** Space of the last axis of each tensor in the plan. */
  readonly spaceOf: ReadonlyMap<string, number>;
  /** Flattened tensors: spatial positions per channel (feature index = position * C + channel). */
  readonly positionsOf: ReadonlyMap<string, number>;
  /** Indices of BatchNormalization steps folded into the step that feeds them. */
  readonly folded: ReadonlyMap<number, number>;
}

/** Layers that compute each channel from the same channel only and carry no weights we must slice. */
const PER_CHANNEL = new Set([
  'ReLU',
  'Activation',
  'Dropout',
  'SpatialDropout2D',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'ZeroPadding2D',
]);

export const PRODUCERS = new Set(['Conv2D', 'Dense']);

function config(step: PlanStep): Record<string, unknown> {
  return step.layer.getConfig() as Record<string, unknown>;
}

function channelsFirst(step: PlanStep): boolean {
  return config(step).dataFormat === 'channelsFirst';
}

/** Whether a BatchNormalization step normalises the last axis (the only layout we slice). */
export function lastAxisNorm(step: PlanStep, rank: number): boolean {
  const axis = config(step).axis as number | number[] | undefined;
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : undefined) : axis;
  return a === -1 || a === rank - 1 || a === rank;
}

export function channelMap(plan: ModelPlan): ChannelMap {
  const parent: number[] = [];
  const channels: number[] = [];
  const fixed: boolean[] = [];
  const joined: boolean[] = [];
  const make = (n: number, isFixed: boolean): number => {
    parent.push(parent.length);
    channels.push(n);
    fixed.push(isFixed);
    joined.push(false);
    return parent.length - 1;
  };
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]];
      a = parent[a];
    }
    return a;
  };
  const union = (a: number, b: number): number => {
    const ra = find(a);
    const rb = find(b);
    joined[ra] = true;
    if (ra === rb) return ra;
    parent[rb] = ra;
    // Spaces an Add joins must agree in width; a mismatch would be a broken model, so fix both.
    fixed[ra] = fixed[ra] || fixed[rb] || channels[ra] !== channels[rb];
    return ra;
  };
  const fix = (a: number): void => {
    fixed[find(a)] = true;
  };

  const raw = new Map<string, number>();
  const positions = new Map<string, number>();
  const lastDim = (key: string): number => {
    const s = plan.shapes.get(key) ?? [];
    return s[s.length - 1] ?? 0;
  };
  raw.set(plan.inputKey, make(lastDim(plan.inputKey), true));

  for (const step of plan.steps) {
    const ins = step.inputs.map((k) => raw.get(k) as number);
    const out = lastDim(step.output);
    const rank = (plan.shapes.get(step.output) ?? []).length;
    const cls = step.className;
    const flattenedInput = step.inputs.some((k) => positions.has(k));
    let space: number;
    if (PRODUCERS.has(cls) && !channelsFirst(step)) {
      space = make(out, false);
      if (cls === 'Conv2D' && flattenedInput) ins.forEach(fix);
    } else if (flattenedInput && cls !== 'Dropout' && cls !== 'Activation' && cls !== 'ReLU') {
      // Only element-wise layers may sit between a Flatten and the Dense that reads it.
      ins.forEach(fix);
      space = make(out, true);
    } else if (cls === 'DepthwiseConv2D' && (config(step).depthMultiplier ?? 1) === 1 && !channelsFirst(step)) {
      space = ins[0];
    } else if (cls === 'BatchNormalization' && lastAxisNorm(step, rank)) {
      space = ins[0];
    } else if (PER_CHANNEL.has(cls) && !channelsFirst(step) && step.layer.getWeights().length === 0) {
      space = ins[0];
    } else if (cls === 'Rescaling' && typeof config(step).scale === 'number' && typeof (config(step).offset ?? 0) === 'number') {
      space = ins[0];
    } else if (cls === 'Add') {
      space = ins.reduce((a, b) => union(a, b));
    } else if (cls === 'Flatten' && !channelsFirst(step)) {
      const inShape = plan.shapes.get(step.inputs[0]) ?? [];
      space = ins[0];
      if (inShape.length > 1)
        positions.set(
          step.output,
          inShape.slice(0, -1).reduce((a, b) => a * b, 1),
        );
    } else {
      ins.forEach(fix);
      space = make(out, true);
    }
    raw.set(step.output, space);
    // Element-wise layers after a Flatten keep its layout.
    const flat = positions.get(step.inputs[0]);
    if (flat !== undefined && space === ins[0] && !PRODUCERS.has(cls)) positions.set(step.output, flat);
  }

  // Renumber the roots densely.
  const ids = new Map<number, number>();
  const spaces: ChannelSpace[] = [];
  const spaceOf = new Map<string, number>();
  for (const [key, s] of raw) {
    const root = find(s);
    let id = ids.get(root);
    if (id === undefined) {
      id = spaces.length;
      ids.set(root, id);
      spaces.push({ channels: channels[root], prunable: !fixed[root] && channels[root] > 1, residual: joined[root] });
    }
    spaceOf.set(key, id);
  }
  return { spaces, spaceOf, positionsOf: positions, folded: foldable(plan) };
}

/**
 * BatchNormalization steps that fold exactly into the Conv2D/Dense/DepthwiseConv2D feeding them:
 * the producer is linear and nothing else reads its output.
 */
function foldable(plan: ModelPlan): Map<number, number> {
  const readers = new Map<string, number>();
  for (const step of plan.steps) for (const k of step.inputs) readers.set(k, (readers.get(k) ?? 0) + 1);
  const producerOf = new Map<string, number>();
  plan.steps.forEach((s, i) => producerOf.set(s.output, i));
  const out = new Map<number, number>();
  plan.steps.forEach((step, i) => {
    if (step.className !== 'BatchNormalization') return;
    const rank = (plan.shapes.get(step.output) ?? []).length;
    if (!lastAxisNorm(step, rank)) return;
    const p = producerOf.get(step.inputs[0]);
    if (p === undefined) return;
    const prod = plan.steps[p];
    if (!['Conv2D', 'Dense', 'DepthwiseConv2D'].includes(prod.className) || channelsFirst(prod)) return;
    if ((config(prod).activation ?? 'linear') !== 'linear') return;
    if (readers.get(prod.output) !== 1 || prod.output === plan.featuresKey) return;
    if (prod.className === 'DepthwiseConv2D' && (config(prod).depthMultiplier ?? 1) !== 1) return;
    out.set(i, p);
  });
  return out;
}
