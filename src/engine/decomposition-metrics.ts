/**
 * Decomposition metrics (ALGORITHM.md section 7). Evaluating a decomposition's modules as a
 * classifier (section 5): the composition predicts the module class with the highest margin; the
 * original model runs beside it for model-vs-composed accuracy and agreement; each module's
 * one-vs-rest accuracy is P_c > 0.5 (margin > 0) against y == c. And the Jaccard index of kept units.
 */
import { countKept } from './mask-count';
import * as tf from '@tensorflow/tfjs';
import type { LabelledBatch } from './evaluate';
import { toTensor } from './activity';
import type { ModelPlan } from './graph';
import { AccuracyTally, OneVsRestTally, topK, type TopK } from './metrics';
import type { MarginSource } from './modules';
import { predictBatched } from './evaluate';
import type { PreprocessingSpec } from './preprocess';

export interface CompositionEvalOptions {
  readonly imageShape: readonly number[];
  readonly preprocessing: PreprocessingSpec;
  /** Class index of each module, in the runner's order. */
  readonly moduleClasses: readonly number[];
  /** Inputs per `runner.margins` call (default: the whole batch; the runner bounds its own passes). */
  readonly chunk?: number;
  readonly total?: number;
  readonly onProgress?: (done: number) => Promise<void> | void;
}

export interface CompositionMetrics {
  /** Images scored: those of the modules' classes. */
  readonly count: number;
  readonly model: TopK & { readonly perClass: number[]; readonly classCounts: number[]; readonly confusion: number[][] };
  readonly composed: TopK & { readonly perClass: number[]; readonly classCounts: number[]; readonly confusion: number[][] };
  /**
   * Modules of some classes only: the model restricted to those classes (its highest score among
   * them), on the same images. What their composition can at best reproduce: with no unit masked it
   * predicts exactly this (ALGORITHM.md section 5's sanity property, on a subset).
   */
  readonly baseline?: TopK & { readonly perClass: number[]; readonly classCounts: number[]; readonly confusion: number[][] };
  /** Fraction of inputs where the composition's top-1 equals the model's. */
  readonly agreement: number;
  /** Per module (runner order): accuracy of margin > 0 as a detector of its class. */
  readonly oneVsRest: number[];
}

export async function evaluateModules(
  plan: ModelPlan,
  runner: MarginSource,
  batches: AsyncIterable<LabelledBatch>,
  opts: CompositionEvalOptions,
): Promise<CompositionMetrics> {
  const classes = opts.moduleClasses;
  const n = plan.headWeights().classes;
  const m = classes.length;
  const model = new AccuracyTally(n);
  const composed = new AccuracyTally(n);
  const baseline = m < n ? new AccuracyTally(n) : undefined;
  const oneVsRest = new OneVsRestTally(classes);
  // The modules of some classes only (`classes`) compose a classifier of those classes: it and the
  // model are scored on their images, as a composition is; images of other classes would count as
  // errors it cannot help making. One-vs-rest accuracy still sees every image (they are the rest).
  const scored = new Set(classes);
  let seen = 0;
  let agree = 0;
  const per = opts.imageShape.reduce((a, b) => a * b, 1);
  for await (const batch of batches) {
    const chunk = opts.chunk ?? Math.max(1, batch.labels.length);
    for (let s = 0; s < batch.labels.length; s += chunk) {
      const labels = batch.labels.subarray(s, s + chunk);
      const b = labels.length;
      const x = toTensor(plan, batch.images.subarray(s * per, (s + b) * per), b, opts.imageShape, opts.preprocessing);
      const scores = tf.tidy(() => predictBatched(plan.model, x).dataSync() as Float32Array);
      const marginsT = runner.margins(x);
      const margins = marginsT.dataSync() as Float32Array;
      marginsT.dispose();
      x.dispose();
      for (let i = 0; i < b; i++) {
        const y = labels[i];
        const modelTop = topK(scores.subarray(i * n, (i + 1) * n), 5);
        const row = margins.subarray(i * m, (i + 1) * m);
        oneVsRest.add(y, row);
        if (!scored.has(y)) continue;
        const compTop = topK(row, 5).map((j) => classes[j]);
        model.add(y, modelTop);
        composed.add(y, compTop);
        baseline?.add(
          y,
          topK(
            classes.map((c) => scores[i * n + c]),
            5,
          ).map((j) => classes[j]),
        );
        if (compTop[0] === modelTop[0]) agree++;
      }
    }
    seen += batch.labels.length;
    await opts.onProgress?.(seen);
  }
  const count = composed.count;
  return {
    count,
    model: { ...model.topK(), perClass: model.perClass(), classCounts: model.classCounts(), confusion: model.confusion },
    composed: { ...composed.topK(), perClass: composed.perClass(), classCounts: composed.classCounts(), confusion: composed.confusion },
    ...(baseline
      ? { baseline: { ...baseline.topK(), perClass: baseline.perClass(), classCounts: baseline.classCounts(), confusion: baseline.confusion } }
      : {}),
    agreement: count ? agree / count : 0,
    oneVsRest: oneVsRest.result(),
  };
}

export interface MaskJaccard {
  readonly meanPairwise: number;
  readonly meanVsModel: number;
  /** pairwise[a][b]: Jaccard index of modules a and b (1 on the diagonal), in module order; up to MATRIX_MODULES modules. */
  readonly pairwise?: number[][];
  /** Above MATRIX_MODULES modules: meanPairwise is the mean over this many seeded random pairs. */
  readonly pairsSampled?: number;
}

/**
 * Modules up to which the pairwise matrix is computed and returned. Beyond it the matrix is too
 * large to send or draw (1000 modules: a million cells, ~10 MB of JSON) and every pair costs
 * modules^2 x units, so the mean is estimated from SAMPLED_PAIRS pairs instead.
 */
export const MATRIX_MODULES = 100;
const SAMPLED_PAIRS = 4950; // as many pairs as 100 modules have

/** Jaccard index of kept units: module pairs (all of them, or a seeded sample), their mean, and the mean of each module against the whole model. */
export function maskJaccard(masks: readonly (readonly Uint8Array[])[]): MaskJaccard {
  const kept = masks.map((ms) => ms.reduce((s, m) => s + countKept(m), 0));
  const total = masks[0]?.reduce((s, m) => s + m.length, 0) ?? 0;
  const jaccard = (a: number, b: number): number => {
    let inter = 0;
    masks[a].forEach((ma, p) => {
      const mb = masks[b][p];
      for (let u = 0; u < ma.length; u++) inter += ma[u] & mb[u];
    });
    const union = kept[a] + kept[b] - inter;
    return union ? inter / union : 1;
  };
  const meanVsModel = total ? kept.reduce((a, v) => a + v, 0) / (kept.length * total) : 0;
  const n = masks.length;
  if (n > MATRIX_MODULES) {
    // A fixed-seed LCG: the same modules give the same estimate.
    let state = 12345;
    const next = (m: number) => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state % m;
    };
    let sum = 0;
    for (let k = 0; k < SAMPLED_PAIRS; k++) {
      const a = next(n);
      const b = (a + 1 + next(n - 1)) % n;
      sum += jaccard(a, b);
    }
    return { meanPairwise: sum / SAMPLED_PAIRS, meanVsModel, pairsSampled: SAMPLED_PAIRS };
  }
  let pairs = 0;
  let sum = 0;
  const pairwise = masks.map((_, a) => masks.map((_, b): number => (a === b ? 1 : 0)));
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const j = jaccard(a, b);
      pairwise[a][b] = j;
      pairwise[b][a] = j;
      sum += j;
      pairs++;
    }
  }
  return { meanPairwise: pairs ? sum / pairs : 1, meanVsModel, pairwise };
}
