/**
 * Input preprocessing, per channel: x = (pixel * scale - mean[c]) / std[c].
 * Computed in float64 and rounded once to float32, as a NumPy float64 pipeline feeding a float32
 * model does: an exact scale such as 1/65025 must not pick up float32 rounding on the way.
 */
import { EngineError } from './errors';

export interface PreprocessingSpec {
  readonly scale: number;
  readonly mean?: readonly number[];
  readonly std?: readonly number[];
}

/**
 * Why `spec` cannot preprocess inputs of `channels` channels (mean and std each hold one value, or
 * one per channel), or undefined when it can: checked when a model is imported, so that a model
 * whose preprocessing cannot apply is refused then rather than failing every later job.
 */
export function preprocessingProblem(spec: PreprocessingSpec, channels: number): string | undefined {
  for (const [name, values] of [
    ['mean', spec.mean],
    ['std', spec.std],
  ] as const) {
    if (values && values.length > 1 && values.length !== channels) {
      return `preprocessing.${name} has ${values.length} values, but the model's input has ${channels} channel${channels === 1 ? '' : 's'}: give one value, or one per channel`;
    }
  }
  return undefined;
}

/**
 * @param pixels NHWC values (uint8 or float32), length n*h*w*channels
 * @param channels C, the innermost axis
 * @returns a new Float32Array the caller owns
 */
export function preprocess(pixels: Uint8Array | Float32Array, channels: number, spec: PreprocessingSpec): Float32Array {
  const problem = preprocessingProblem(spec, channels);
  // A model imported before its preprocessing was checked on import: its jobs fail as unusable (422).
  if (problem) throw new EngineError('SHAPE_MISMATCH', problem);
  const out = new Float32Array(pixels.length);
  const mean = expand(spec.mean, channels, 0);
  const std = expand(spec.std, channels, 1);
  const scale = spec.scale;
  for (let i = 0; i < pixels.length; i++) {
    const c = i % channels;
    out[i] = (pixels[i] * scale - mean[c]) / std[c];
  }
  return out;
}

function expand(values: readonly number[] | undefined, channels: number, fallback: number): Float64Array {
  const out = new Float64Array(channels).fill(fallback);
  if (!values || values.length === 0) return out;
  for (let c = 0; c < channels; c++) out[c] = values.length === 1 ? values[0] : values[c];
  return out;
}
