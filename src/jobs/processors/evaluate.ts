/**
 * evaluate: runs a model over a dataset in streaming batches and stores top-1, top-5, per-class
 * accuracy and the confusion matrix on the evaluation row.
 */
import { evaluate } from '../../engine';
import type { Prisma } from '../../store/db';
import { findModelById } from '../../store/models';
import { cachedModel } from '../model-cache';
import { datasetBatches } from '../dataset-batches';
import type { Processor } from '../context';

const BATCH_SIZE = 256;

export const evaluateProcessor: Processor<'evaluate'> = async (ctx) => {
  const ev = await ctx.db.evaluation.findUniqueOrThrow({ where: { id: ctx.data.evaluationId }, include: { dataset: true } });
  await ctx.db.evaluation.update({ where: { id: ev.id }, data: { status: 'active' } });
  if (!ev.modelId) throw new Error('evaluation has no model');
  const model = await findModelById(ctx.db, ev.modelId);
  await ctx.progress(2, 'loading');
  const tfModel = await cachedModel(ctx.blobs, model.canonicalBlob!, ctx.leases);
  const ds = ev.dataset;
  const shape = ds.shape as number[];
  const total = Math.min(shape[0], ev.limit ?? shape[0]);
  const result = await evaluate(tfModel, datasetBatches(ctx.blobs, { ...ds, shape }, BATCH_SIZE, total), {
    imageShape: shape.slice(1),
    preprocessing: JSON.parse(model.preprocessing),
    total,
    onProgress: (done) => ctx.progress(5 + (90 * done) / total, 'evaluating'),
  });
  await ctx.record((tx) =>
    tx.evaluation.update({
      where: { id: ev.id },
      data: { status: 'completed', result: result as unknown as Prisma.InputJsonValue, finishedAt: new Date() },
    }),
  );
  return { evaluationId: ev.id, count: result.count, top1: result.top1, top5: result.top5 };
};
