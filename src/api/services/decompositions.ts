/** Decompositions and their modules: requests checked, recorded, queued; views, lists, deletion. */
import { randomUUID } from 'node:crypto';
import { ConflictError, UnprocessableError } from '../../errors';
import { releaseBlobs } from '../../store/blob-refs';
import { findDataset, type Dataset } from '../../store/datasets';
import { inTransaction } from '../../store/db';
import * as decompositionsRepo from '../../store/decompositions';
import { jobOf, jobsOf, type JobRow } from '../../store/jobs';
import { findModel, type Model } from '../../store/models';
import * as modulesRepo from '../../store/modules';
import type { PageRequest } from '../../store/page';
import type { DecompositionRequestT, DecompositionViewT, ModuleViewT } from '../schemas/decompositions';
import { DEFAULT_DECOMPOSE_OPTIONS } from '../../jobs/queues';
import type { AppDeps } from '../deps';
import { checkImageShape } from './evaluations';
import { jobFacts, refuseWhileRunning } from './jobs';
import { recordAndEnqueue } from './record-job';

function checkFits(model: Model, ds: Dataset, role: string): void {
  checkImageShape(model.inputShape, ds, role);
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
  // The modules of some classes are scored on the images of those classes: there must be some.
  if (evalDataset && body.classes?.every((c) => !evalDataset.classCounts[c])) {
    throw new UnprocessableError(`evalDataset ${evalDataset.id} has no image of classes ${body.classes?.join(', ')}, on which their modules would be scored`);
  }

  const options = { ...DEFAULT_DECOMPOSE_OPTIONS, ...(body.options ?? {}) };
  // A compact network carries its masks after the ReLUs; the pre-activation rule has no place there.
  if (options.compact && options.maskPoint !== 'post-activation')
    throw new UnprocessableError('compact modules need post-activation masks (options.maskPoint)');
  const id = randomUUID();
  const jobId = await recordAndEnqueue(
    deps,
    { type: 'decompose', data: { decompositionId: id }, ownerId, resourceId: id, modelId: model.id },
    (jid) => [
      decompositionsRepo.decompositionInsert({
        id,
        ownerId,
        modelId: model.id,
        datasetId: dataset.id,
        evalDatasetId: evalDataset?.id ?? null,
        classes: body.classes ? [...body.classes].sort((a, b) => a - b) : null,
        options,
        jobId: jid,
      }),
    ],
    (tx) => decompositionsRepo.deleteDecomposition(tx, id),
  );
  return { id, jobId };
}

function decompositionView(
  dec: decompositionsRepo.Decomposition & { modules: decompositionsRepo.ModuleSummary[] },
  job: JobRow | null | undefined,
): DecompositionViewT {
  return {
    id: dec.id,
    ...jobFacts(job, dec.finishedAt),
    modelId: dec.modelId,
    datasetId: dec.datasetId,
    ...(dec.evalDatasetId ? { evalDatasetId: dec.evalDatasetId } : {}),
    ...(dec.classes ? { classes: dec.classes } : {}),
    options: dec.options,
    ...(dec.jobId ? { jobId: dec.jobId } : {}),
    ...(dec.engineVersion ? { engineVersion: dec.engineVersion } : {}),
    modules: dec.modules,
    ...(dec.metrics ? { metrics: dec.metrics as DecompositionViewT['metrics'] } : {}),
    createdAt: dec.createdAt.toISOString(),
    ...(dec.finishedAt ? { finishedAt: dec.finishedAt.toISOString() } : {}),
  };
}

export async function getDecomposition(deps: AppDeps, id: string, ownerId: string | null): Promise<DecompositionViewT> {
  const job = await jobOf(deps.db, id, 'decompose');
  return decompositionView(await decompositionsRepo.findDecomposition(deps.db, id, ownerId), job);
}

export async function listDecompositions(
  deps: AppDeps,
  ownerId: string | null,
  filter: decompositionsRepo.DecompositionFilter,
  page: PageRequest,
): Promise<{ items: DecompositionViewT[]; nextCursor?: string }> {
  const p = await decompositionsRepo.listDecompositions(deps.db, ownerId, filter, page);
  const jobs = await jobsOf(
    deps.db,
    p.items.map((d) => d.id),
    'decompose',
  );
  return { ...p, items: p.items.map((d) => decompositionView(d, jobs.get(d.id))) };
}

/**
 * 409 while its job (or an export of one of its modules) runs, or while a composition uses one of
 * its modules; then the decomposition, its modules and their job rows go, and the blobs only they
 * referred to.
 */
export async function deleteDecomposition(deps: AppDeps, id: string, ownerId: string | null): Promise<void> {
  const blobs = await inTransaction(deps.db, async (tx) => {
    await decompositionsRepo.findDecomposition(tx, id, ownerId);
    const use = await decompositionsRepo.decompositionUse(tx, id);
    refuseWhileRunning(`decomposition ${id}`, use.runningJobs);
    if (use.compositions.length > 0) {
      const more = use.compositions.length - 3;
      const shown = use.compositions.slice(0, 3).join(', ') + (more > 0 ? ` and ${more} more` : '');
      throw new ConflictError(`decomposition ${id} has modules that ${use.compositions.length} composition(s) use (${shown}); delete those compositions first`);
    }
    return decompositionsRepo.deleteDecomposition(tx, id);
  });
  await releaseBlobs(deps.db, deps.blobs, blobs);
}

function compactView(c: modulesRepo.CompactFigures): NonNullable<ModuleViewT['compact']> {
  return {
    module: { params: c.params, flops: c.flops, sizeBytes: c.networkBytes },
    model: { params: c.modelParams, flops: c.modelFlops, sizeBytes: c.modelBytes },
    criterion: c.criterion,
    layers: c.layers,
  };
}

function moduleView(m: modulesRepo.Module): ModuleViewT {
  return {
    id: m.id,
    decompositionId: m.decompositionId,
    modelId: m.modelId,
    classIndex: m.classIndex,
    className: m.className,
    keptFraction: m.keptFraction,
    perLayer: m.perLayer,
    ...(m.oneVsRest ? { oneVsRest: m.oneVsRest } : {}),
    ...modulesRepo.costFractions(m.compact),
    ...(m.compact ? { compact: compactView(m.compact) } : {}),
    ...(m.parentModuleId ? { parentModuleId: m.parentModuleId } : {}),
    createdAt: m.createdAt.toISOString(),
  };
}

export async function getModule(deps: AppDeps, id: string, ownerId: string | null): Promise<ModuleViewT> {
  return moduleView(await modulesRepo.findModule(deps.db, id, ownerId));
}

export async function listModules(
  deps: AppDeps,
  ownerId: string | null,
  filter: modulesRepo.ModuleFilter,
  page: PageRequest,
): Promise<{ items: ModuleViewT[]; nextCursor?: string }> {
  const p = await modulesRepo.listModules(deps.db, ownerId, filter, page);
  return { ...p, items: p.items.map(moduleView) };
}
