/**
 * evaluate: runs a model, or a composition, over a dataset in streaming batches and records top-1,
 * top-5, per-class accuracy, the confusion matrix and the number of images scored.
 */
import { evaluate } from '../../engine';
import { findDatasetById } from '../../store/datasets';
import { findEvaluationById, recordEvaluationResult, type EvaluationResult } from '../../store/evaluations';
import { findModelById } from '../../store/models';
import { cachedModel } from '../model-cache';
import { datasetBatches } from '../dataset-batches';
import { scoreComposition } from '../composition-scoring';
import type { Processor } from '../context';

const BATCH_SIZE = 256;

export const evaluateProcessor: Processor<'evaluate'> = async (ctx) => {
  const ev = await findEvaluationById(ctx.db, ctx.data.evaluationId);
  const ds = await findDatasetById(ctx.db, ev.datasetId);
  const total = Math.min(ds.count, ev.limit ?? ds.count);
  await ctx.progress(2, 'loading');
  let result: EvaluationResult;
  if (ev.compositionId) {
    const { score, labels } = await scoreComposition(ctx, ev.compositionId, ds, {
      labelMapping: ev.labelMapping ?? undefined,
      limit: total,
      baseline: ev.baseline,
      onProgress: (done) => ctx.progress(5 + (90 * done) / total, 'evaluating'),
    });
    result = { ...score, labels };
  } else {
    const model = await findModelById(ctx.db, ev.modelId as string);
    const tfModel = await cachedModel(ctx.blobs, model.canonicalBlob!, ctx.pins);
    result = await evaluate(tfModel, datasetBatches(ctx.blobs, ds, BATCH_SIZE, total), {
      imageShape: ds.shape.slice(1),
      preprocessing: model.preprocessing,
      total,
      onProgress: (done) => ctx.progress(5 + (90 * done) / total, 'evaluating'),
    });
  }
  await ctx.record((tx) => recordEvaluationResult(tx, ev.id, result));
  return { evaluationId: ev.id, count: result.count, top1: result.top1, top5: result.top5 };
};
