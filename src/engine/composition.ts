/**
 * A composition of modules from one or several models (ALGORITHM.md sections 5-6): each group of
 * modules from one model runs as one batched pass with that model's preprocessing; the
 * composition predicts the label whose module has the highest margin. The metrics accumulator
 * also scores the baseline "original model restricted to these classes" when one model serves all.
 */
import * as tf from '@tensorflow/tfjs';
import { toTensor } from './activity';
import type { ModelPlan } from './graph';
import type { ModuleRunner } from './modules';
import type { PreprocessingSpec } from './preprocess';

export interface ModuleGroup {
  readonly plan: ModelPlan;
  readonly runner: ModuleRunner;
  readonly preprocessing: PreprocessingSpec;
  /** Composition position of each of the runner's modules. */
  readonly positions: readonly number[];
}

/**
 * Margins of every module of the composition, [n x K] row-major in composition order.
 * @param pixels NHWC pixels of n images of `imageShape`
 */
export function compositionMargins(groups: readonly ModuleGroup[], k: number, pixels: Uint8Array | Float32Array, n: number, imageShape: readonly number[]): Float32Array {
  const out = new Float32Array(n * k);
  for (const g of groups) {
    const x = toTensor(g.plan, pixels, n, imageShape, g.preprocessing);
    const t = g.runner.margins(x);
    const m = t.dataSync() as Float32Array;
    t.dispose();
    x.dispose();
    const gm = g.positions.length;
    for (let i = 0; i < n; i++) for (let j = 0; j < gm; j++) out[i * k + g.positions[j]] = m[i * gm + j];
  }
  return out;
}

/** Scores of the original model, [n x classes], for the baseline. */
export function modelScores(plan: ModelPlan, preprocessing: PreprocessingSpec, pixels: Uint8Array | Float32Array, n: number, imageShape: readonly number[]): Float32Array {
  const x = toTensor(plan, pixels, n, imageShape, preprocessing);
  const s = tf.tidy(() => (plan.model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  x.dispose();
  return s;
}

function ranked(row: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: row.length }, (_, i) => i)
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k);
}

export interface CompositionScore {
  readonly count: number;
  readonly top1: number;
  readonly top5: number;
  readonly perClass: number[];
  /** confusion[true][predicted] over composition labels. */
  readonly confusion: number[][];
  readonly baseline?: { readonly top1: number; readonly top5: number };
}

/** Accumulates composition accuracy (and the restricted-model baseline) batch by batch. */
export class CompositionScorer {
  private readonly confusion: number[][];
  private count = 0;
  private top5 = 0;
  private base1 = 0;
  private base5 = 0;

  /** @param baselineClasses model class index of each composition label, when one model serves all */
  constructor(
    private readonly k: number,
    private readonly baselineClasses?: readonly number[],
  ) {
    this.confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  }

  /**
   * @param margins [n x K] composition margins
   * @param labels composition label index per image
   * @param scores [n x classes] model scores for the baseline (when it applies)
   */
  add(margins: Float32Array, labels: ArrayLike<number>, scores?: Float32Array): void {
    const n = labels.length;
    const classes = scores ? scores.length / n : 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      const top = ranked(margins.subarray(i * this.k, (i + 1) * this.k), Math.min(5, this.k));
      this.confusion[y][top[0]]++;
      if (top.includes(y)) this.top5++;
      if (scores && this.baselineClasses) {
        const restricted = this.baselineClasses.map((c) => scores[i * classes + c]);
        const b = ranked(restricted, Math.min(5, this.k));
        if (b[0] === y) this.base1++;
        if (b.includes(y)) this.base5++;
      }
    }
    this.count += n;
  }

  result(): CompositionScore {
    const frac = (v: number) => (this.count ? v / this.count : 0);
    const correct = this.confusion.reduce((s, r, i) => s + r[i], 0);
    return {
      count: this.count,
      top1: frac(correct),
      top5: frac(this.top5),
      perClass: this.confusion.map((r, i) => {
        const t = r.reduce((a, v) => a + v, 0);
        return t ? r[i] / t : 0;
      }),
      confusion: this.confusion,
      ...(this.baselineClasses ? { baseline: { top1: frac(this.base1), top5: frac(this.base5) } } : {}),
    };
  }
}
