/** Decomposition requests: validate model, datasets, classes and options; record; queue. */
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, UnprocessableError } from '../../errors';
import { findDataset, type DatasetRow } from '../../store/datasets';
import { findModel, type ModelRow } from '../../store/models';
import type { DecompositionRequestT, DecompositionViewT, ModuleViewT } from '../schemas/decompositions';
import { DEFAULT_DECOMPOSE_OPTIONS } from '../../jobs/queues';
import type { AppDeps } from '../deps';
import { recordAndEnqueue } from './record-job';

function checkFits(model: ModelRow, ds: DatasetRow, role: string): void {
  const imageShape = (ds.shape as number[]).slice(1);
  if (JSON.stringify(imageShape) !== JSON.stringify(model.inputShape)) {
    throw new UnprocessableError(`${role} images are ${JSON.stringify(imageShape)} but the model expects ${JSON.stringify(model.inputShape)}`);
  }
  if (ds.numClasses > (model.numClasses ?? 0)) {
    throw new UnprocessableError(`${role} has ${ds.numClasses} classes but the model only ${model.numClasses}`);
  }
}

export async function createDecomposition(deps: AppDeps, body: DecompositionRequestT, ownerId: string | null): Promise<{ id: string; jobId: string }> {
  const model = await findModel(deps.db, body.modelId, ownerId);
  if (model.status !== 'ready') throw new ConflictError(`model ${model.id} is ${model.status}; it can be decomposed once it is ready`);
  const dataset = await findDataset(deps.db, body.datasetId, ownerId);
  checkFits(model, dataset, 'dataset');
  const evalDataset = body.evalDatasetId ? await findDataset(deps.db, body.evalDatasetId, ownerId) : undefined;
  if (evalDataset) checkFits(model, evalDataset, 'evalDataset');
  const bad = (body.classes ?? []).filter((c) => c >= (model.numClasses ?? 0));
  if (bad.length) throw new UnprocessableError(`classes ${bad.join(', ')} are not classes of the model (0..${(model.numClasses ?? 1) - 1})`);

  const options = { ...DEFAULT_DECOMPOSE_OPTIONS, ...(body.options ?? {}) };
  const id = randomUUID();
  const jobId = await recordAndEnqueue(
    deps,
    { type: 'decompose', data: { decompositionId: id }, ownerId, resourceId: id, modelId: model.id },
    (tx, jid) =>
      tx.decomposition.create({
        data: {
          id,
          ownerId,
          modelId: model.id,
          datasetId: dataset.id,
          evalDatasetId: evalDataset?.id ?? null,
          ...(body.classes ? { classes: [...body.classes].sort((a, b) => a - b) } : {}),
          options,
          jobId: jid,
        },
      }),
    (tx) => tx.decomposition.deleteMany({ where: { id } }),
  );
  return { id, jobId };
}

export async function getDecomposition(deps: AppDeps, id: string, ownerId: string | null): Promise<DecompositionViewT> {
  // The job row is read first: it turns completed only after the results committed, so a
  // completed state can never be shown beside results read from before the commit.
  const job = await deps.db.job.findFirst({ where: { resourceId: id, type: 'decompose', ownerId } });
  const dec = await deps.db.decomposition.findFirst({ where: { id, ownerId }, include: { modules: { orderBy: { classIndex: 'asc' } } } });
  if (!dec) throw new NotFoundError('decomposition', id);
  return {
    id: dec.id,
    status: job?.state ?? dec.status,
    modelId: dec.modelId,
    datasetId: dec.datasetId,
    ...(dec.evalDatasetId ? { evalDatasetId: dec.evalDatasetId } : {}),
    ...(dec.classes ? { classes: dec.classes as number[] } : {}),
    options: dec.options as object,
    ...(dec.jobId ? { jobId: dec.jobId } : {}),
    ...(dec.engineVersion ? { engineVersion: dec.engineVersion } : {}),
    modules: dec.modules.map((m) => ({ id: m.id, classIndex: m.classIndex, className: m.className, keptFraction: m.keptFraction })),
    ...(dec.metrics ? { metrics: dec.metrics as DecompositionViewT['metrics'] } : {}),
    ...(job?.state === 'failed' && job.error ? { error: job.error as DecompositionViewT['error'] } : {}),
    createdAt: dec.createdAt.toISOString(),
    ...(dec.finishedAt ? { finishedAt: dec.finishedAt.toISOString() } : {}),
  };
}

export async function getModule(deps: AppDeps, id: string, ownerId: string | null): Promise<ModuleViewT> {
  const m = await deps.db.module.findFirst({ where: { id, ownerId }, include: { decomposition: { select: { modelId: true } } } });
  if (!m) throw new NotFoundError('module', id);
  return {
    id: m.id,
    decompositionId: m.decompositionId,
    modelId: m.decomposition.modelId,
    classIndex: m.classIndex,
    className: m.className,
    keptFraction: m.keptFraction,
    perLayer: m.perLayer as ModuleViewT['perLayer'],
    ...(m.oneVsRest ? { oneVsRest: m.oneVsRest as { accuracy: number } } : {}),
    createdAt: m.createdAt.toISOString(),
  };
}
