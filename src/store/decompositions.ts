/** Decomposition rows and the modules they made. Its state is its job's. */
import { rowInsert, utcNow, type Db, type InsertStatement, type Prisma } from './db';
import { NotFoundError } from '../errors';
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';
import { costFractions, createModule, moduleBlobs, type CompactFigures, type NewModule, type ObservationPoint } from './modules';
import { UNFINISHED_STATES, type JobRow } from './jobs';
import { toDataset, type Dataset } from './datasets';

export interface ModuleSummary {
  readonly id: string;
  readonly classIndex: number;
  readonly className: string;
  readonly keptFraction: number;
  /** The module's FLOPs and parameters against the model's (1 for mask modules). */
  readonly flopsFraction: number;
  readonly paramsFraction: number;
}

export interface Decomposition {
  readonly id: string;
  readonly ownerId: string | null;
  readonly modelId: string;
  readonly datasetId: string;
  readonly evalDatasetId: string | null;
  readonly classes: number[] | null;
  readonly options: Record<string, unknown>;
  readonly jobId: string | null;
  readonly engineVersion: string | null;
  readonly observationPoints: ObservationPoint[] | null;
  readonly metrics: Record<string, unknown> | null;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

type DecompositionRow = Prisma.DecompositionGetPayload<object>;

function toDecomposition(row: DecompositionRow): Decomposition {
  return {
    id: row.id,
    ownerId: row.ownerId,
    modelId: row.modelId,
    datasetId: row.datasetId,
    evalDatasetId: row.evalDatasetId,
    classes: (row.classes as number[] | null) ?? null,
    options: row.options as Record<string, unknown>,
    jobId: row.jobId,
    engineVersion: row.engineVersion,
    observationPoints: (row.observationPoints as unknown as ObservationPoint[] | null) ?? null,
    metrics: (row.metrics as Record<string, unknown> | null) ?? null,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
  };
}

export type NewDecomposition = Pick<Decomposition, 'id' | 'ownerId' | 'modelId' | 'datasetId' | 'evalDatasetId' | 'classes' | 'options' | 'jobId'>;

export function decompositionInsert(d: NewDecomposition): InsertStatement {
  return rowInsert('Decomposition', { ...d, createdAt: utcNow() });
}

const MODULE_SUMMARY = { orderBy: { classIndex: 'asc' as const }, select: { id: true, classIndex: true, className: true, keptFraction: true, compact: true } };

function toSummary(row: { id: string; classIndex: number; className: string; keptFraction: number; compact: unknown }): ModuleSummary {
  const { compact, ...rest } = row;
  return { ...rest, ...costFractions(compact as CompactFigures | null) };
}

export async function findDecomposition(db: Db, id: string, ownerId: string | null): Promise<Decomposition & { modules: ModuleSummary[] }> {
  const row = await db.decomposition.findFirst({ where: { id, ownerId }, include: { modules: { ...MODULE_SUMMARY, where: { parentModuleId: null } } } });
  if (!row) throw new NotFoundError('decomposition', id);
  return { ...toDecomposition(row), modules: row.modules.map(toSummary) };
}

/** For the worker: the decomposition with its datasets. */
export async function decompositionForRun(db: Db, id: string): Promise<Decomposition & { dataset: Dataset; evalDataset: Dataset | null }> {
  const row = await db.decomposition.findUnique({ where: { id }, include: { dataset: true, evalDataset: true } });
  if (!row) throw new NotFoundError('decomposition', id);
  return { ...toDecomposition(row), dataset: toDataset(row.dataset), evalDataset: row.evalDataset ? toDataset(row.evalDataset) : null };
}

export interface DecompositionFilter {
  readonly modelId?: string;
  readonly datasetId?: string;
}

export async function listDecompositions(
  db: Db,
  ownerId: string | null,
  filter: DecompositionFilter,
  page: PageRequest,
): Promise<Page<Decomposition & { modules: ModuleSummary[] }>> {
  const where = { ownerId, ...filter, ...afterCursor(page.cursor) };
  return readPage(
    page,
    (take) => db.decomposition.findMany({ where, include: { modules: { ...MODULE_SUMMARY, where: { parentModuleId: null } } }, orderBy: PAGE_ORDER, take }),
    (row) => ({ ...toDecomposition(row), modules: row.modules.map(toSummary) }),
  );
}

export interface DecompositionResults {
  readonly engineVersion: string;
  readonly observationPoints: ObservationPoint[];
  readonly metrics: Record<string, unknown>;
  readonly modules: NewModule[];
}

/** All modules and the metrics, in the caller's transaction; a retried job replaces, never duplicates. */
export async function recordDecompositionResults(db: Db, id: string, r: DecompositionResults): Promise<void> {
  await db.module.deleteMany({ where: { decompositionId: id, parentModuleId: null } });
  for (const m of r.modules) await createModule(db, m);
  await db.decomposition.update({
    where: { id },
    data: {
      engineVersion: r.engineVersion,
      observationPoints: r.observationPoints as unknown as Prisma.InputJsonValue,
      metrics: r.metrics as Prisma.InputJsonValue,
      finishedAt: new Date(),
    },
  });
}

/** What still needs a decomposition: compositions of its modules and unfinished jobs on it or them. */
export async function decompositionUse(db: Db, id: string): Promise<{ compositions: string[]; runningJobs: JobRow[] }> {
  const modules = await db.module.findMany({ where: { decompositionId: id }, select: { id: true } });
  const ids = modules.map((m) => m.id);
  const [members, runningJobs] = await Promise.all([
    db.compositionModule.findMany({ where: { moduleId: { in: ids } }, select: { compositionId: true }, distinct: ['compositionId'] }),
    db.job.findMany({ where: { resourceId: { in: [id, ...ids] }, state: { in: [...UNFINISHED_STATES] } } }),
  ]);
  return { compositions: members.map((m) => m.compositionId), runningJobs };
}

/** Removes the decomposition, its modules and their job rows; returns the blob keys it referred to. */
export async function deleteDecomposition(db: Db, id: string): Promise<string[]> {
  const modules = await db.module.findMany({ where: { decompositionId: id } });
  await db.job.deleteMany({ where: { resourceId: { in: [id, ...modules.map((m) => m.id)] } } });
  await db.module.deleteMany({ where: { decompositionId: id } });
  await db.decomposition.deleteMany({ where: { id } });
  return modules.flatMap(moduleBlobs);
}

/** The one-time energy of the decompositions these modules came from (a composition reuses it). */
export async function decompositionEnergy(db: Db, moduleIds: string[]): Promise<{ seconds: number; kWh: number; co2eKg: number; decompositions: number }> {
  const modules = await db.module.findMany({ where: { id: { in: moduleIds } }, select: { decompositionId: true } });
  const ids = [...new Set(modules.map((m) => m.decompositionId))];
  const decs = await db.decomposition.findMany({ where: { id: { in: ids } }, select: { metrics: true } });
  const total = { seconds: 0, kWh: 0, co2eKg: 0, decompositions: decs.length };
  for (const d of decs) {
    const e = (d.metrics as { energy?: { seconds: number; kWh: number; co2eKg: number } } | null)?.energy;
    if (e) {
      total.seconds += e.seconds;
      total.kWh += e.kWh;
      total.co2eKg += e.co2eKg;
    }
  }
  return total;
}
