/**
 * A composition of modules from one or several models (ALGORITHM.md sections 5-6): each group of
 * modules from one model runs as one batched pass with that model's preprocessing; the
 * composition predicts the label whose module has the highest margin. The metrics accumulator
 * also scores the baseline "original model restricted to these classes" when one model serves all.
 */
import * as tf from '@tensorflow/tfjs';
import { toTensor } from './activity';
import type { ModelPlan } from './graph';
import { AccuracyTally, topK } from './metrics';
import type { ModuleRunner } from './modules';
import { predictBatched } from './evaluate';
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
export function compositionMargins(
  groups: readonly ModuleGroup[],
  k: number,
  pixels: Uint8Array | Float32Array,
  n: number,
  imageShape: readonly number[],
): Float32Array {
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
export function modelScores(
  plan: ModelPlan,
  preprocessing: PreprocessingSpec,
  pixels: Uint8Array | Float32Array,
  n: number,
  imageShape: readonly number[],
): Float32Array {
  const x = toTensor(plan, pixels, n, imageShape, preprocessing);
  const s = tf.tidy(() => predictBatched(plan.model, x).dataSync() as Float32Array);
  x.dispose();
  return s;
}

export interface CompositionScore {
  readonly count: number;
  readonly top1: number;
  readonly top5: number;
  readonly perClass: number[];
  /** Images per label: a perClass entry over none is no measurement. */
  readonly classCounts: number[];
  /** confusion[true][predicted] over composition labels. */
  readonly confusion: number[][];
  /** The restricted model on the same images, per composition label like the composition's own figures. */
  readonly baseline?: { readonly top1: number; readonly top5: number; readonly perClass: number[]; readonly confusion: number[][] };
}

/** Accumulates composition accuracy (and the restricted-model baseline) batch by batch. */
export class CompositionScorer {
  private readonly composed: AccuracyTally;
  private readonly baseline?: AccuracyTally;

  /** @param baselineClasses model class index of each composition label, when one model serves all */
  constructor(
    private readonly k: number,
    private readonly baselineClasses?: readonly number[],
  ) {
    this.composed = new AccuracyTally(k);
    if (baselineClasses) this.baseline = new AccuracyTally(k);
  }

  /**
   * @param margins [n x K] composition margins
   * @param labels composition label index per image
   * @param scores [n x classes] model scores for the baseline: on every call when the scorer has baseline classes
   */
  add(margins: Float32Array, labels: ArrayLike<number>, scores?: Float32Array): void {
    const n = labels.length;
    const classes = scores ? scores.length / n : 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      this.composed.add(y, topK(margins.subarray(i * this.k, (i + 1) * this.k), 5));
      if (scores && this.baseline && this.baselineClasses) {
        const restricted = this.baselineClasses.map((c) => scores[i * classes + c]);
        this.baseline.add(y, topK(restricted, 5));
      }
    }
  }

  result(): CompositionScore {
    const c = this.composed;
    return {
      count: c.count,
      ...c.topK(),
      perClass: c.perClass(),
      classCounts: c.classCounts(),
      confusion: c.confusion,
      ...(this.baseline ? { baseline: { ...this.baseline.topK(), perClass: this.baseline.perClass(), confusion: this.baseline.confusion } } : {}),
    };
  }
}
