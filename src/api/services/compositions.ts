/**
 * Compositions: immutable sets of (module, label). A new one is built from modules or by replacing
 * modules of a base composition (which stays as it was; lineage is kept). Modules must share an
 * input shape; each keeps its own model's preprocessing.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, UnprocessableError } from '../../errors';
import { releaseBlobs } from '../../store/blob-refs';
import * as compositionsRepo from '../../store/compositions';
import { findDataset } from '../../store/datasets';
import { inTransaction } from '../../store/db';
import { jobOf, jobsOf, type JobRow } from '../../store/jobs';
import { findModuleSources, type ModuleSource } from '../../store/modules';
import type { PageRequest } from '../../store/page';
import { continuousLearningLabels, labelled, matchDatasetClasses } from '../../jobs/label-matching';
import type { ComposeByReplacingT, ComposeFromModulesT, CompositionRequestT, CompositionViewT } from '../schemas/compositions';
import type { AppDeps } from '../deps';
import { checkImageShape } from './evaluations';
import { jobFacts, refuseWhileRunning } from './jobs';
import { recordAndEnqueue } from './record-job';
import { findUsableComposition } from './usable-composition';

type Member = compositionsRepo.Member;

/** 404 for a module the owner cannot see, 422 for mixed input shapes, 409 for a label claimed twice. */
function checkMembers(members: Member[], sources: Map<string, ModuleSource>): void {
  const missing = members.find((m) => !sources.has(m.moduleId));
  if (missing) throw new NotFoundError('module', missing.moduleId);
  const shapes = new Map<string, string[]>();
  for (const m of members) {
    const shape = JSON.stringify(sources.get(m.moduleId)!.model.inputShape);
    shapes.set(shape, [...(shapes.get(shape) ?? []), m.moduleId]);
  }
  if (shapes.size > 1) {
    const detail = [...shapes].map(([shape, mods]) => `${shape}: ${mods.join(', ')}`).join('; ');
    throw new UnprocessableError(`modules have different input shapes (${detail})`);
  }
  const seen = new Map<string, string>();
  for (const m of members) {
    const other = seen.get(m.label);
    if (other !== undefined) throw new ConflictError(`modules ${other} and ${m.moduleId} both claim the label "${m.label}"; give one of them another label`);
    seen.set(m.label, m.moduleId);
  }
}

async function membersOf(
  deps: AppDeps,
  body: CompositionRequestT,
  ownerId: string | null,
): Promise<{ members: Member[]; base?: string; sources: Map<string, ModuleSource> }> {
  if ('baseCompositionId' in body) {
    const b = body as ComposeByReplacingT;
    const base = await findUsableComposition(deps, b.baseCompositionId, ownerId, 'a base to replace modules of');
    const members = base.modules.map((m) => ({ ...m }));
    for (const r of b.replace) {
      const slot = members.find((m) => m.label === r.label);
      if (!slot) throw new UnprocessableError(`composition ${base.id} has no label "${r.label}" (labels: ${members.map((m) => m.label).join(', ')})`);
      slot.moduleId = r.moduleId;
    }
    return { members, base: base.id, sources: await findModuleSources(deps.db, [...new Set(members.map((m) => m.moduleId))], ownerId) };
  }
  const b = body as ComposeFromModulesT;
  const sources = await findModuleSources(deps.db, [...new Set(b.modules.map((m) => m.moduleId))], ownerId);
  return { members: b.modules.map((m) => ({ moduleId: m.moduleId, label: m.label ?? sources.get(m.moduleId)?.module.className ?? m.moduleId })), sources };
}

export async function createComposition(deps: AppDeps, body: CompositionRequestT, ownerId: string | null): Promise<{ id: string; jobId: string }> {
  const { members, base, sources } = await membersOf(deps, body, ownerId);
  checkMembers(members, sources);
  if (body.evalDatasetId) {
    const ds = await findDataset(deps.db, body.evalDatasetId, ownerId);
    const first = sources.get(members[0].moduleId)!;
    checkImageShape(first.model.inputShape, ds, 'evalDataset');
    // Refused now rather than scored on no image later.
    matchDatasetClasses(
      ds,
      members.map((m) => labelled(m.label, sources.get(m.moduleId)!)),
      body.labelMapping,
    );
  }
  const continuousLearning = 'modules' in body ? body.continuousLearning : undefined;
  const stray = Object.keys(continuousLearning?.labelMappings ?? {}).filter((ds) => !continuousLearning?.datasetIds.includes(ds));
  if (stray.length > 0) throw new UnprocessableError(`continuousLearning.labelMappings names datasets not in datasetIds: ${stray.join(', ')}`);
  const labels = members.map((m) => m.label);
  for (const id of continuousLearning?.datasetIds ?? []) {
    const ds = await findDataset(deps.db, id, ownerId);
    // Its images go through the modules' models, and it must serve a label: refused now rather
    // than failing the job, or being skipped without a word.
    checkImageShape(sources.get(members[0].moduleId)!.model.inputShape, ds, `continuousLearning dataset ${id}`);
    if (!continuousLearningLabels(ds, continuousLearning?.labelMappings?.[id], body.labelMapping).some((l) => l !== undefined && labels.includes(l))) {
      throw new UnprocessableError(
        `no class of continuousLearning dataset ${id} serves a label of the composition (${labels.join(', ')}); ` +
          'say which class serves which label in continuousLearning.labelMappings {"<dataset id>": {"<dataset class>": "<label>"}}',
      );
    }
  }
  const id = randomUUID();
  const options = {
    ...(body.evalDatasetId ? { evalDatasetId: body.evalDatasetId } : {}),
    ...(body.labelMapping ? { labelMapping: body.labelMapping } : {}),
    ...(continuousLearning ? { continuousLearning } : {}),
  };
  const jobId = await recordAndEnqueue(
    deps,
    { type: 'compose', data: { compositionId: id }, ownerId, resourceId: id },
    (jid) => compositionsRepo.compositionInserts({ id, ownerId, baseCompositionId: base ?? null, members, options, jobId: jid }),
    (tx) => compositionsRepo.deleteComposition(tx, id),
  );
  return { id, jobId };
}

function compositionView(c: compositionsRepo.Composition, job: JobRow | null | undefined): CompositionViewT {
  return {
    id: c.id,
    ...jobFacts(job, c.finishedAt),
    labels: c.labels,
    modules: c.modules,
    ...(c.baseCompositionId ? { baseCompositionId: c.baseCompositionId } : {}),
    ...(c.options.evalDatasetId ? { evalDatasetId: c.options.evalDatasetId } : {}),
    ...(c.jobId ? { jobId: c.jobId } : {}),
    ...(c.metrics ? { metrics: c.metrics as CompositionViewT['metrics'] } : {}),
    createdAt: c.createdAt.toISOString(),
    ...(c.finishedAt ? { finishedAt: c.finishedAt.toISOString() } : {}),
  };
}

export async function getComposition(deps: AppDeps, id: string, ownerId: string | null): Promise<CompositionViewT> {
  const job = await jobOf(deps.db, id, 'compose');
  return compositionView(await compositionsRepo.findComposition(deps.db, id, ownerId), job);
}

export async function listCompositions(deps: AppDeps, ownerId: string | null, page: PageRequest): Promise<{ items: CompositionViewT[]; nextCursor?: string }> {
  const p = await compositionsRepo.listCompositions(deps.db, ownerId, page);
  const jobs = await jobsOf(
    deps.db,
    p.items.map((c) => c.id),
    'compose',
  );
  return { ...p, items: p.items.map((c) => compositionView(c, jobs.get(c.id))) };
}

/**
 * 409 while a job works on it (compose, predict, one of its evaluations); then it goes with its
 * evaluations and the module versions continuous learning made for it alone. The modules it
 * reused, and compositions that replaced some of its modules, are not touched.
 */
export async function deleteComposition(deps: AppDeps, id: string, ownerId: string | null): Promise<void> {
  const blobs = await inTransaction(deps.db, async (tx) => {
    await compositionsRepo.findComposition(tx, id, ownerId);
    refuseWhileRunning(`composition ${id}`, await compositionsRepo.compositionRunningJobs(tx, id));
    return compositionsRepo.deleteComposition(tx, id);
  });
  await releaseBlobs(deps.db, deps.blobs, blobs);
}
