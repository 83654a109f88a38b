/**
 * Backtracking (ALGORITHM.md section 4, MC-BLN and MC-BI). Walking from the head toward the
 * input, a unit is "live" when some live unit downstream reads it (conv receptive fields with the
 * layer's stride and padding, pooling windows, global pooling, Flatten/Reshape positions, both
 * branches of an Add; zero-padding cells read nothing). Features whose head row MC-BLN removed are
 * not live. A unit that is not live cannot change the module's margin, so masking it is free under
 * post-activation masking; it only raises the masked fraction.
 *
 * `last-layer` marks the observation points nearest the head (the paper's MC-BLN carry-back);
 * `input` marks every observation point (MC-BI).
 */
import { EngineError } from './errors';
import type { ModelPlan, PlanStep } from './graph';

type Live = Uint8Array;

interface Conv2DLike {
  kernelSize?: number | number[];
  poolSize?: number | number[];
  strides?: number | number[];
  padding?: string;
  dilationRate?: number | number[];
  depthMultiplier?: number;
}

function pair(v: number | number[] | undefined, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  return Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];
}

/** TF padding: 'same' pads floor(total/2) at the top/left and the rest (one more) at the bottom/right. */
function padBefore(inSize: number, outSize: number, k: number, s: number, padding: string): number {
  if (padding !== 'same') return 0;
  const total = Math.max((outSize - 1) * s + k - inSize, 0);
  return Math.floor(total / 2);
}

/**
 * Windowed layers (conv, depthwise conv, pooling): input (y, x, c) is live when an output unit whose
 * window covers it is live; `channelsMix` says whether every output channel reads every input one.
 */
function windowBack(out: Live, outShape: number[], inShape: number[], cfg: Conv2DLike, channelsMix: boolean, multiplier = 1): Live {
  const [oh, ow, oc] = outShape;
  const [ih, iw, ic] = inShape;
  const [kh, kw] = pair(cfg.kernelSize ?? cfg.poolSize, 1);
  const [sh, sw] = pair(cfg.strides ?? cfg.poolSize ?? 1, 1);
  const [dh, dw] = pair(cfg.dilationRate, 1);
  if (dh !== 1 || dw !== 1) throw new EngineError('INVALID_MODEL', 'backtracking through dilated convolutions is not supported');
  const padding = cfg.padding ?? 'valid';
  const pt = padBefore(ih, oh, kh, sh, padding);
  const pl = padBefore(iw, ow, kw, sw, padding);
  const live = new Uint8Array(ih * iw * ic);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const base = (y * ow + x) * oc;
      let any = false;
      for (let c = 0; c < oc && !any; c++) any = out[base + c] === 1;
      if (!any) continue;
      for (let ky = 0; ky < kh; ky++) {
        const iy = y * sh - pt + ky;
        if (iy < 0 || iy >= ih) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = x * sw - pl + kx;
          if (ix < 0 || ix >= iw) continue;
          const ib = (iy * iw + ix) * ic;
          if (channelsMix) {
            live.fill(1, ib, ib + ic);
          } else {
            for (let c = 0; c < ic; c++) {
              for (let m = 0; m < multiplier; m++) if (out[base + c * multiplier + m]) live[ib + c] = 1;
            }
          }
        }
      }
    }
  }
  return live;
}

/** Which units of each input of `step` are read by live units of its output. */
function stepBack(step: PlanStep, out: Live, outShape: number[], inShapes: number[][]): Live[] {
  const cfg = step.layer.getConfig() as Conv2DLike & { padding?: number | number[][] };
  const inShape = inShapes[0];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  switch (step.className) {
    case 'BatchNormalization':
    case 'Activation':
    case 'ReLU':
    case 'Dropout':
    case 'Rescaling':
    case 'LeakyReLU':
    case 'ELU':
    case 'PReLU':
    case 'Softmax':
    case 'Flatten':
    case 'Reshape':
      return [out.slice()];
    case 'Add':
      return inShapes.map(() => out.slice());
    case 'Multiply':
      return inShapes.map((shape) => broadcastBack(out, outShape, shape));
    case 'Concatenate':
      return concatBack(out, outShape, inShapes, (cfg as { axis?: number }).axis ?? -1, step.layer.name);
    case 'SeparableConv2D':
      return [windowBack(out, outShape, inShape, cfg, true)];
    case 'Cropping2D': {
      const [[top], [left]] = (cfg as { cropping?: number[][] }).cropping ?? [[0], [0]];
      const [h, w, c] = inShape;
      const [oh, ow] = outShape;
      const live = new Uint8Array(h * w * c);
      for (let y = 0; y < oh; y++) live.set(out.subarray(y * ow * c, (y + 1) * ow * c), ((y + top) * w + left) * c);
      return [live];
    }
    case 'Dense': {
      const any = out.some((v) => v === 1);
      return [new Uint8Array(size(inShape)).fill(any ? 1 : 0)];
    }
    case 'Conv2D':
      return [windowBack(out, outShape, inShape, cfg, true)];
    case 'DepthwiseConv2D':
      return [windowBack(out, outShape, inShape, cfg, false, cfg.depthMultiplier ?? 1)];
    case 'MaxPooling2D':
    case 'AveragePooling2D':
      return [windowBack(out, outShape, inShape, cfg, false)];
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      const [h, w, c] = inShape;
      const live = new Uint8Array(h * w * c);
      for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) live[p * c + ch] = out[ch];
      return [live];
    }
    case 'ZeroPadding2D': {
      const pad = cfg.padding as unknown;
      const [[top], [left]] = Array.isArray(pad)
        ? (pad as (number | number[])[]).map((p) => (Array.isArray(p) ? p : [p, p]))
        : [[pad as number], [pad as number]];
      const [h, w, c] = inShape;
      const ow = outShape[1];
      const live = new Uint8Array(h * w * c);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) live.set(out.subarray(((y + top) * ow + x + left) * c, ((y + top) * ow + x + left + 1) * c), (y * w + x) * c);
      }
      return [live];
    }
    default:
      throw new EngineError('UNSUPPORTED_LAYER', `backtracking through ${step.className} (${step.layer.name}) is not supported`);
  }
}

/**
 * An input of a broadcasting elementwise layer (Multiply, e.g. a [1, 1, C] squeeze-and-excitation
 * gate times [H, W, C] features): a unit is live when any output unit it is broadcast to is live.
 */
function broadcastBack(out: Live, outShape: number[], inShape: number[]): Live {
  const size = inShape.reduce((a, b) => a * b, 1);
  if (size === out.length) return out.slice();
  const live = new Uint8Array(size);
  const rank = outShape.length;
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    if (out[o]) {
      let i = 0;
      for (let d = 0; d < rank; d++) i = i * inShape[d] + (inShape[d] === 1 ? 0 : index[d]);
      live[i] = 1;
    }
    for (let d = rank - 1; d >= 0 && ++index[d] === outShape[d]; d--) index[d] = 0;
  }
  return live;
}

/** Concatenate's inputs: each reads its own slice of the output along the axis (MC-BI maps indices to the right input). */
function concatBack(out: Live, outShape: number[], inShapes: number[][], axis: number, name: string): Live[] {
  const rank = outShape.length;
  const a = axis < 0 ? rank + axis : axis - 1; // per-sample axis (the config counts the batch)
  if (a < 0 || a >= rank) throw new EngineError('UNSUPPORTED_LAYER', `backtracking through ${name} (Concatenate on axis ${axis}) is not supported`);
  const outer = outShape.slice(0, a).reduce((x, y) => x * y, 1);
  const inner = outShape.slice(a + 1).reduce((x, y) => x * y, 1);
  let offset = 0;
  return inShapes.map((shape) => {
    const width = shape[a] * inner;
    const live = new Uint8Array(outer * width);
    for (let o = 0; o < outer; o++) live.set(out.subarray(o * outShape[a] * inner + offset, o * outShape[a] * inner + offset + width), o * width);
    offset += width;
    return live;
  });
}

/**
 * @param masks the module's masks (1 kept), per observation point; not modified
 * @param removedFeatures head rows MC-BLN zeroed
 * @returns new masks with the units that cannot reach a live feature masked too
 */
export function backtrackMasks(plan: ModelPlan, masks: readonly Uint8Array[], removedFeatures: readonly number[], mode: 'last-layer' | 'input'): Uint8Array[] {
  const result = masks.map((m) => m.slice());
  const live = new Map<string, Live>();
  const featureShape = plan.shapes.get(plan.featuresKey) as number[];
  const features = new Uint8Array(featureShape.reduce((a, b) => a * b, 1)).fill(1);
  for (const f of removedFeatures) features[f] = 0;
  live.set(plan.featuresKey, features);

  // Tensors reachable from the features without passing an observation point: the `last-layer`
  // walk marks the observation points it meets first and stops there.
  const nearHead = new Set<string>([plan.featuresKey]);
  for (let s = plan.steps.length - 1; s >= 0; s--) {
    const step = plan.steps[s];
    let out = live.get(step.output);
    if (!out) continue;
    if (step.observation !== undefined) {
      const p = step.observation;
      if (mode === 'input' || nearHead.has(step.output)) {
        const m = result[p];
        for (let u = 0; u < m.length; u++) m[u] &= out[u];
      }
      // A masked unit is zero: it passes nothing upstream whatever reads it.
      out = out.map((v, u) => v & result[p][u]);
    }
    const inShapes = step.inputs.map((k) => plan.shapes.get(k) as number[]);
    const back = stepBack(step, out, plan.shapes.get(step.output) as number[], inShapes);
    step.inputs.forEach((k, i) => {
      const prev = live.get(k);
      if (!prev) live.set(k, back[i]);
      else for (let u = 0; u < prev.length; u++) prev[u] |= back[i][u];
      if (step.observation === undefined && nearHead.has(step.output)) nearHead.add(k);
    });
  }
  return result;
}
