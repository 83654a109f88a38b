/**
 * Compositions: immutable sets of (module, label). A new one is built from modules or by replacing
 * modules of a base composition (which stays as it was; lineage is kept). Modules must share an
 * input shape; each keeps its own model's preprocessing.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, UnprocessableError } from '../../errors';
import { findDataset } from '../../store/datasets';
import type { ComposeByReplacingT, ComposeFromModulesT, CompositionRequestT, CompositionViewT } from '../schemas/compositions';
import type { AppDeps } from '../deps';
import { recordAndEnqueue } from './record-job';

interface Member {
  moduleId: string;
  label: string;
}

async function loadMembers(deps: AppDeps, members: Member[], ownerId: string | null): Promise<void> {
  const ids = [...new Set(members.map((m) => m.moduleId))];
  const rows = await deps.db.module.findMany({ where: { id: { in: ids }, ownerId }, include: { decomposition: { include: { model: true } } } });
  const found = new Map(rows.map((r) => [r.id, r]));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length) throw new NotFoundError('module', missing[0]);
  const shapes = new Map<string, string[]>();
  for (const m of members) {
    const shape = JSON.stringify(found.get(m.moduleId)!.decomposition.model.inputShape);
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

async function membersOf(deps: AppDeps, body: CompositionRequestT, ownerId: string | null): Promise<{ members: Member[]; base?: string }> {
  if ('baseCompositionId' in body) {
    const b = body as ComposeByReplacingT;
    const base = await deps.db.composition.findFirst({ where: { id: b.baseCompositionId, ownerId }, include: { modules: { orderBy: { position: 'asc' } } } });
    if (!base) throw new NotFoundError('composition', b.baseCompositionId);
    const members = base.modules.map((m) => ({ moduleId: m.moduleId, label: m.label }));
    for (const r of b.replace) {
      const slot = members.find((m) => m.label === r.label);
      if (!slot) throw new UnprocessableError(`composition ${base.id} has no label "${r.label}" (labels: ${members.map((m) => m.label).join(', ')})`);
      slot.moduleId = r.moduleId;
    }
    return { members, base: base.id };
  }
  const b = body as ComposeFromModulesT;
  const rows = await deps.db.module.findMany({ where: { id: { in: b.modules.map((m) => m.moduleId) }, ownerId } });
  const names = new Map(rows.map((r) => [r.id, r.className]));
  return { members: b.modules.map((m) => ({ moduleId: m.moduleId, label: m.label ?? names.get(m.moduleId) ?? m.moduleId })) };
}

export async function createComposition(deps: AppDeps, body: CompositionRequestT, ownerId: string | null): Promise<{ id: string; jobId: string }> {
  const { members, base } = await membersOf(deps, body, ownerId);
  await loadMembers(deps, members, ownerId);
  if (body.evalDatasetId) await findDataset(deps.db, body.evalDatasetId, ownerId);
  const continuousLearning = 'modules' in body ? body.continuousLearning : undefined;
  for (const ds of continuousLearning?.datasetIds ?? []) await findDataset(deps.db, ds, ownerId);
  const stray = Object.keys(continuousLearning?.labelMappings ?? {}).filter((ds) => !continuousLearning?.datasetIds.includes(ds));
  if (stray.length > 0) throw new UnprocessableError(`continuousLearning.labelMappings names datasets not in datasetIds: ${stray.join(', ')}`);
  const id = randomUUID();
  const options = {
    ...(body.evalDatasetId ? { evalDatasetId: body.evalDatasetId } : {}),
    ...(body.labelMapping ? { labelMapping: body.labelMapping } : {}),
    ...(continuousLearning ? { continuousLearning } : {}),
  };
  const jobId = await recordAndEnqueue(
    deps,
    { type: 'compose', data: { compositionId: id }, ownerId, resourceId: id },
    (tx, jid) =>
      tx.composition.create({
        data: {
          id,
          ownerId,
          baseCompositionId: base ?? null,
          labels: members.map((m) => m.label),
          options,
          jobId: jid,
          modules: { create: members.map((m, position) => ({ position, moduleId: m.moduleId, label: m.label })) },
        },
      }),
    (tx) => tx.composition.deleteMany({ where: { id } }),
  );
  return { id, jobId };
}

export async function getComposition(deps: AppDeps, id: string, ownerId: string | null): Promise<CompositionViewT> {
  // The job row first: it turns completed only after the metrics committed.
  const job = await deps.db.job.findFirst({ where: { resourceId: id, type: 'compose', ownerId } });
  const c = await deps.db.composition.findFirst({ where: { id, ownerId }, include: { modules: { orderBy: { position: 'asc' } } } });
  if (!c) throw new NotFoundError('composition', id);
  const options = (c.options ?? {}) as { evalDatasetId?: string };
  return {
    id: c.id,
    status: job?.state ?? c.status,
    labels: c.labels as string[],
    modules: c.modules.map((m) => ({ moduleId: m.moduleId, label: m.label })),
    ...(c.baseCompositionId ? { baseCompositionId: c.baseCompositionId } : {}),
    ...(options.evalDatasetId ? { evalDatasetId: options.evalDatasetId } : {}),
    ...(c.jobId ? { jobId: c.jobId } : {}),
    ...(c.metrics ? { metrics: c.metrics as CompositionViewT['metrics'] } : {}),
    ...(job?.state === 'failed' && job.error ? { error: job.error as CompositionViewT['error'] } : {}),
    createdAt: c.createdAt.toISOString(),
    ...(c.finishedAt ? { finishedAt: c.finishedAt.toISOString() } : {}),
  };
}
