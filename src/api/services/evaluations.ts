/** Evaluation requests: check the model and dataset fit together, record, queue. */
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, UnprocessableError } from '../../errors';
import { findDataset } from '../../store/datasets';
import { findModel } from '../../store/models';
import type { EvaluationRequestT, EvaluationViewT } from '../schemas/evaluations';
import type { AppDeps } from '../deps';
import { recordAndEnqueue } from './record-job';

export async function createEvaluation(deps: AppDeps, body: EvaluationRequestT, ownerId: string | null): Promise<{ id: string; jobId: string }> {
  const model = await findModel(deps.db, body.modelId, ownerId);
  const dataset = await findDataset(deps.db, body.datasetId, ownerId);
  if (model.status !== 'ready') throw new ConflictError(`model ${model.id} is ${model.status}; it can be evaluated once it is ready`);
  const inputShape = model.inputShape as number[];
  const imageShape = (dataset.shape as number[]).slice(1);
  if (JSON.stringify(inputShape) !== JSON.stringify(imageShape)) {
    throw new UnprocessableError(`dataset images are ${JSON.stringify(imageShape)} but the model expects ${JSON.stringify(inputShape)}`);
  }
  if (dataset.numClasses > (model.numClasses ?? 0)) {
    throw new UnprocessableError(`dataset has ${dataset.numClasses} classes but the model only ${model.numClasses}`);
  }
  const id = randomUUID();
  const jobId = await recordAndEnqueue(
    deps,
    { type: 'evaluate', data: { evaluationId: id }, ownerId, resourceId: id, modelId: model.id },
    (tx, jid) => tx.evaluation.create({ data: { id, ownerId, modelId: model.id, datasetId: dataset.id, limit: body.limit ?? null, jobId: jid } }),
    (tx) => tx.evaluation.deleteMany({ where: { id } }),
  );
  return { id, jobId };
}

export async function getEvaluation(deps: AppDeps, id: string, ownerId: string | null): Promise<EvaluationViewT> {
  // The job row first: it turns completed only after the result committed (see decompositions).
  const job = await deps.db.job.findFirst({ where: { resourceId: id, type: 'evaluate', ownerId } });
  const ev = await deps.db.evaluation.findFirst({ where: { id, ownerId } });
  if (!ev) throw new NotFoundError('evaluation', id);
  return {
    id: ev.id,
    status: job?.state ?? ev.status,
    ...(ev.modelId ? { modelId: ev.modelId } : {}),
    datasetId: ev.datasetId,
    ...(ev.limit !== null ? { limit: ev.limit } : {}),
    ...(ev.jobId ? { jobId: ev.jobId } : {}),
    ...(ev.result ? { result: ev.result as EvaluationViewT['result'] } : {}),
    ...(job?.error && job.state === 'failed' ? { error: job.error as EvaluationViewT['error'] } : {}),
    createdAt: ev.createdAt.toISOString(),
    ...(ev.finishedAt ? { finishedAt: ev.finishedAt.toISOString() } : {}),
  };
}
