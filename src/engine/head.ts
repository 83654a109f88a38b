/**
 * Concern modularization (ALGORITHM.md section 4): the N-way output layer becomes a 2-unit head,
 * concerned unit = column c unchanged, unconcerned unit = mean of the other columns. MC-BLN then
 * drops features that are disconnected from c (|W[i,c]| < delta) but tied to the rest
 * (|W_uc[i]| >= delta), by zeroing their row.
 */
import type { HeadWeights } from './graph';

export interface ModuleHead {
  /** [F x 2] row-major: column 0 concerned, column 1 unconcerned. */
  readonly kernel: Float32Array;
  readonly bias: Float32Array;
  /** Features whose row MC-BLN zeroed. */
  readonly removedFeatures: number[];
}

export function moduleHead(w: HeadWeights, c: number, backtrackDelta?: number): ModuleHead {
  const { features: f, classes: n } = w;
  const kernel = new Float32Array(f * 2);
  const removedFeatures: number[] = [];
  for (let i = 0; i < f; i++) {
    let sum = 0;
    for (let j = 0; j < n; j++) if (j !== c) sum += w.kernel[i * n + j];
    kernel[i * 2] = w.kernel[i * n + c];
    kernel[i * 2 + 1] = sum / (n - 1);
    if (backtrackDelta !== undefined && Math.abs(kernel[i * 2]) < backtrackDelta && Math.abs(kernel[i * 2 + 1]) >= backtrackDelta) {
      kernel[i * 2] = 0;
      kernel[i * 2 + 1] = 0;
      removedFeatures.push(i);
    }
  }
  let bsum = 0;
  for (let j = 0; j < n; j++) if (j !== c) bsum += w.bias[j];
  return { kernel, bias: Float32Array.from([w.bias[c], bsum / (n - 1)]), removedFeatures };
}

/** The module's margin z_c - z_uc as a linear function of the features: d . f + e. */
export function marginWeights(head: ModuleHead): { d: Float32Array; e: number } {
  const f = head.kernel.length / 2;
  const d = new Float32Array(f);
  for (let i = 0; i < f; i++) d[i] = head.kernel[i * 2] - head.kernel[i * 2 + 1];
  return { d, e: head.bias[0] - head.bias[1] };
}
