/** Evaluation requests: a model or a composition on a dataset; checked, recorded, queued. */
import { randomUUID } from 'node:crypto';
import { BadRequestError, ConflictError, UnprocessableError } from '../../errors';
import { findDataset } from '../../store/datasets';
import { inTransaction } from '../../store/db';
import * as evaluationsRepo from '../../store/evaluations';
import { jobOf, jobsOf, type JobRow } from '../../store/jobs';
import { findModel } from '../../store/models';
import { findModuleSources } from '../../store/modules';
import type { PageRequest } from '../../store/page';
import { labelled, matchDatasetClasses } from '../../jobs/label-matching';
import type { EvaluationRequestT, EvaluationViewT } from '../schemas/evaluations';
import type { AppDeps } from '../deps';
import { jobFacts, refuseWhileRunning } from './jobs';
import { bothInOrder } from './look-up';
import { recordAndEnqueue } from './record-job';
import { findUsableComposition } from './usable-composition';

/** 422 unless the dataset's images have the model's input shape. */
export function checkImageShape(inputShape: number[] | null, ds: { shape: number[] }, role: string): void {
  const imageShape = ds.shape.slice(1);
  if (JSON.stringify(imageShape) !== JSON.stringify(inputShape)) {
    throw new UnprocessableError(`${role} images are ${JSON.stringify(imageShape)} but the model expects ${JSON.stringify(inputShape)}`);
  }
}

export async function createEvaluation(deps: AppDeps, body: EvaluationRequestT, ownerId: string | null): Promise<{ id: string; jobId: string }> {
  if ((body.modelId === undefined) === (body.compositionId === undefined)) {
    throw new BadRequestError('give exactly one of modelId (evaluate a model) and compositionId (evaluate a composition)');
  }
  let modelId: string | undefined;
  if (body.modelId !== undefined) {
    if (body.labelMapping) throw new BadRequestError('labelMapping applies to compositions only: a model is scored on the class indices of the dataset');
    if (body.baseline) throw new BadRequestError('baseline applies to compositions only: it is the model restricted to their classes');
    const [model, dataset] = await bothInOrder(findModel(deps.db, body.modelId, ownerId), findDataset(deps.db, body.datasetId, ownerId));
    if (model.status !== 'ready') throw new ConflictError(`model ${model.id} is ${model.status}; it can be evaluated once it is ready`);
    checkImageShape(model.inputShape, dataset, 'dataset');
    if (dataset.numClasses > (model.numClasses ?? 0)) {
      throw new UnprocessableError(`dataset has ${dataset.numClasses} classes but the model only ${model.numClasses}`);
    }
    modelId = model.id;
  } else {
    const [composition, dataset] = await bothInOrder(
      findUsableComposition(deps, body.compositionId as string, ownerId, 'evaluated'),
      findDataset(deps.db, body.datasetId, ownerId),
    );
    const sources = await findModuleSources(
      deps.db,
      composition.modules.map((m) => m.moduleId),
      ownerId,
    );
    const members = composition.modules.map((m) => labelled(m.label, sources.get(m.moduleId)!));
    checkImageShape(sources.get(composition.modules[0].moduleId)!.model.inputShape, dataset, 'dataset');
    matchDatasetClasses(dataset, members, body.labelMapping, true);
  }
  const id = randomUUID();
  const jobId = await recordAndEnqueue(
    deps,
    { type: 'evaluate', data: { evaluationId: id }, ownerId, resourceId: id, ...(modelId ? { modelId } : {}) },
    (jid) => [
      evaluationsRepo.evaluationInsert({
        id,
        ownerId,
        modelId: modelId ?? null,
        compositionId: body.compositionId ?? null,
        datasetId: body.datasetId,
        limit: body.limit ?? null,
        labelMapping: body.labelMapping ?? null,
        baseline: body.compositionId !== undefined && body.baseline === true,
        jobId: jid,
      }),
    ],
    (tx) => evaluationsRepo.deleteEvaluations(tx, [id]),
  );
  return { id, jobId };
}

function evaluationView(ev: evaluationsRepo.Evaluation, job: JobRow | null | undefined): EvaluationViewT {
  return {
    id: ev.id,
    ...jobFacts(job, ev.finishedAt),
    ...(ev.modelId ? { modelId: ev.modelId } : {}),
    ...(ev.compositionId ? { compositionId: ev.compositionId } : {}),
    datasetId: ev.datasetId,
    ...(ev.limit !== null ? { limit: ev.limit } : {}),
    ...(ev.labelMapping ? { labelMapping: ev.labelMapping } : {}),
    ...(ev.compositionId ? { baseline: ev.baseline } : {}),
    ...(ev.jobId ? { jobId: ev.jobId } : {}),
    ...(ev.result ? { result: ev.result } : {}),
    createdAt: ev.createdAt.toISOString(),
    ...(ev.finishedAt ? { finishedAt: ev.finishedAt.toISOString() } : {}),
  };
}

export async function getEvaluation(deps: AppDeps, id: string, ownerId: string | null): Promise<EvaluationViewT> {
  const job = await jobOf(deps.db, id, 'evaluate');
  return evaluationView(await evaluationsRepo.findEvaluation(deps.db, id, ownerId), job);
}

export async function listEvaluations(
  deps: AppDeps,
  ownerId: string | null,
  filter: evaluationsRepo.EvaluationFilter,
  page: PageRequest,
): Promise<{ items: EvaluationViewT[]; nextCursor?: string }> {
  const p = await evaluationsRepo.listEvaluations(deps.db, ownerId, filter, page);
  const jobs = await jobsOf(
    deps.db,
    p.items.map((e) => e.id),
    'evaluate',
  );
  return { ...p, items: p.items.map((e) => evaluationView(e, jobs.get(e.id))) };
}

/** 409 while its job runs (cancel it first); the job row goes with it. */
export async function deleteEvaluation(deps: AppDeps, id: string, ownerId: string | null): Promise<void> {
  await inTransaction(deps.db, async (tx) => {
    await evaluationsRepo.findEvaluation(tx, id, ownerId);
    const job = await jobOf(tx, id, 'evaluate');
    refuseWhileRunning(`evaluation ${id}`, job && (job.state === 'queued' || job.state === 'active') ? [job] : []);
    await evaluationsRepo.deleteEvaluations(tx, [id]);
  });
}
