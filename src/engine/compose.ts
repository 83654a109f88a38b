/**
 * Evaluating a set of modules as a classifier (ALGORITHM.md sections 5 and 7): the composition
 * predicts the module class with the highest margin; the original model runs beside it for
 * model-vs-composed accuracy and agreement; each module's one-vs-rest accuracy is P_c > 0.5
 * (margin > 0) against y == c.
 */
import * as tf from '@tensorflow/tfjs';
import type { LabelledBatch } from './evaluate';
import { toTensor } from './activity';
import type { ModelPlan } from './graph';
import type { ModuleRunner } from './modules';
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

export interface TopK {
  readonly top1: number;
  readonly top5: number;
}

export interface CompositionMetrics {
  readonly count: number;
  readonly model: TopK;
  readonly composed: TopK & { readonly perClass: number[]; readonly confusion: number[][] };
  /** Fraction of inputs where the composition's top-1 equals the model's. */
  readonly agreement: number;
  /** Per module (runner order): accuracy of margin > 0 as a detector of its class. */
  readonly oneVsRest: number[];
}

function topIndices(row: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: row.length }, (_, i) => i)
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k);
}

export async function evaluateModules(plan: ModelPlan, runner: ModuleRunner, batches: AsyncIterable<LabelledBatch>, opts: CompositionEvalOptions): Promise<CompositionMetrics> {
  const classes = opts.moduleClasses;
  const n = plan.headWeights().classes;
  const m = classes.length;
  const confusion = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const ovrCorrect = new Array<number>(m).fill(0);
  let count = 0;
  let model1 = 0;
  let model5 = 0;
  let comp1 = 0;
  let comp5 = 0;
  let agree = 0;
  const per = opts.imageShape.reduce((a, b) => a * b, 1);
  for await (const batch of batches) {
    const chunk = opts.chunk ?? Math.max(1, batch.labels.length);
    for (let s = 0; s < batch.labels.length; s += chunk) {
      const labels = batch.labels.subarray(s, s + chunk);
      const b = labels.length;
      const x = toTensor(plan, batch.images.subarray(s * per, (s + b) * per), b, opts.imageShape, opts.preprocessing);
      const scores = tf.tidy(() => (plan.model.predict(x) as tf.Tensor).dataSync() as Float32Array);
      const marginsT = runner.margins(x);
      const margins = marginsT.dataSync() as Float32Array;
      marginsT.dispose();
      x.dispose();
      for (let i = 0; i < b; i++) {
        const y = labels[i];
        const modelTop = topIndices(scores.subarray(i * n, (i + 1) * n), 5);
        const row = margins.subarray(i * m, (i + 1) * m);
        const compTop = topIndices(row, Math.min(5, m)).map((j) => classes[j]);
        if (modelTop[0] === y) model1++;
        if (modelTop.includes(y)) model5++;
        if (compTop[0] === y) comp1++;
        if (compTop.includes(y)) comp5++;
        if (compTop[0] === modelTop[0]) agree++;
        if (y >= 0 && y < n) confusion[y][compTop[0]]++;
        for (let j = 0; j < m; j++) if (row[j] > 0 === (y === classes[j])) ovrCorrect[j]++;
      }
      count += b;
    }
    await opts.onProgress?.(count);
  }
  const perClass = confusion.map((r, i) => {
    const t = r.reduce((a, v) => a + v, 0);
    return t ? r[i] / t : 0;
  });
  const frac = (v: number) => (count ? v / count : 0);
  return {
    count,
    model: { top1: frac(model1), top5: frac(model5) },
    composed: { top1: frac(comp1), top5: frac(comp5), perClass, confusion },
    agreement: frac(agree),
    oneVsRest: ovrCorrect.map(frac),
  };
}

/** Jaccard index of kept units: mean over module pairs, and mean of each module against the whole model. */
export function maskJaccard(masks: readonly (readonly Uint8Array[])[]): { meanPairwise: number; meanVsModel: number } {
  const kept = masks.map((ms) => ms.reduce((s, m) => s + m.reduce((a, v) => a + v, 0), 0));
  const total = masks[0]?.reduce((s, m) => s + m.length, 0) ?? 0;
  let pairs = 0;
  let sum = 0;
  for (let a = 0; a < masks.length; a++) {
    for (let b = a + 1; b < masks.length; b++) {
      let inter = 0;
      masks[a].forEach((ma, p) => {
        const mb = masks[b][p];
        for (let u = 0; u < ma.length; u++) inter += ma[u] & mb[u];
      });
      const union = kept[a] + kept[b] - inter;
      sum += union ? inter / union : 1;
      pairs++;
    }
  }
  return {
    meanPairwise: pairs ? sum / pairs : 1,
    meanVsModel: total ? kept.reduce((a, v) => a + v, 0) / (kept.length * total) : 0,
  };
}
