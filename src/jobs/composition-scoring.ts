/**
 * Scores a composition on a dataset: the images of the classes that serve its labels (matched by
 * name, mapping or index: label-matching.ts), beside the restricted-model baseline when asked and
 * one model serves all its modules. Used by the compose job (evalDatasetId, with the baseline) and
 * by evaluations of compositions (baseline when asked: it runs the model once more, about as long
 * as the composition itself), so both give the same numbers for the same images.
 */
import { CompositionScorer, compositionMargins, modelScores, type CompositionScore } from '../engine';
import { UnprocessableError } from '../errors';
import type { Dataset } from '../store/datasets';
import { compositionRuntime } from './composition-runtime';
import { datasetBatches } from './dataset-batches';
import { matchDatasetClasses } from './label-matching';
import type { JobContext } from './context';
import type { JobType } from './queues';

/** Images per read; each runner cuts a batch into passes within its own row budget. */
const BATCH = 512;

export interface ScoringOptions {
  readonly labelMapping?: Record<string, string>;
  /** The first `limit` images (all when undefined). */
  readonly limit?: number;
  /** Also score the restricted-model baseline (when one model serves every module). */
  readonly baseline: boolean;
  readonly onProgress: (imagesRead: number) => Promise<void>;
}

export async function scoreComposition(
  ctx: JobContext<JobType>,
  compositionId: string,
  ds: Dataset,
  { labelMapping, limit, baseline, onProgress }: ScoringOptions,
): Promise<{ score: CompositionScore; labels: string[] }> {
  const rt = await compositionRuntime(ctx.db, ctx.blobs, compositionId, ctx.pins, ctx.config.maxMaskBytes);
  const k = rt.labels.length;
  const toLabel = matchDatasetClasses(ds, rt.members, labelMapping);
  const single = baseline ? rt.baseline : undefined;
  const scorer = new CompositionScorer(k, single?.classes);
  const imageShape = ds.shape.slice(1);
  const per = imageShape.reduce((a, b) => a * b, 1);
  let read = 0;
  for await (const batch of datasetBatches(ctx.blobs, ds, BATCH, limit)) {
    const idx = Array.from(batch.labels.keys()).filter((i) => toLabel[batch.labels[i]] >= 0);
    if (idx.length) {
      const pixels = batch.images instanceof Float32Array ? new Float32Array(idx.length * per) : new Uint8Array(idx.length * per);
      idx.forEach((i, j) => pixels.set(batch.images.subarray(i * per, (i + 1) * per), j * per));
      const margins = compositionMargins(rt.groups, k, pixels, idx.length, imageShape);
      const scores = single ? modelScores(single.plan, single.preprocessing, pixels, idx.length, imageShape) : undefined;
      scorer.add(
        margins,
        idx.map((i) => toLabel[batch.labels[i]]),
        scores,
      );
    }
    read += batch.labels.length;
    await onProgress(read);
  }
  const score = scorer.result();
  // A score of no image is no score: say so rather than report 0.
  if (score.count === 0) {
    throw new UnprocessableError(
      `none of the ${read} images of dataset ${ds.id} read belongs to a class that serves a label of the composition (${rt.labels.join(', ')})`,
    );
  }
  return { score, labels: rt.labels };
}
