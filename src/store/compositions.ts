/**
 * Composition rows: an immutable list of (module, label). Continuous learning may point a member
 * at a new module version before the composition first runs. Its state is its job's.
 */
import { rowInsert, utcNow, type Db, type InsertStatement, type Prisma } from './db';
import { NotFoundError } from '../errors';
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';
import { UNFINISHED_STATES, type JobRow } from './jobs';
import { WITH_SOURCE, ensureModule, moduleBlobs, toModuleSource, type ModuleSource, type NewModule } from './modules';

export interface CompositionOptions {
  readonly evalDatasetId?: string;
  readonly labelMapping?: Record<string, string>;
  readonly continuousLearning?: { readonly datasetIds: string[]; readonly labelMappings?: Record<string, Record<string, string>> };
}

export interface Member {
  readonly moduleId: string;
  readonly label: string;
}

export interface Composition {
  readonly id: string;
  readonly ownerId: string | null;
  readonly baseCompositionId: string | null;
  readonly labels: string[];
  readonly modules: Member[];
  readonly options: CompositionOptions;
  readonly jobId: string | null;
  readonly metrics: Record<string, unknown> | null;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

const WITH_MEMBERS = { modules: { orderBy: { position: 'asc' as const } } } as const;
type CompositionRow = Prisma.CompositionGetPayload<{ include: typeof WITH_MEMBERS }>;

function toComposition(row: CompositionRow): Composition {
  return {
    id: row.id,
    ownerId: row.ownerId,
    baseCompositionId: row.baseCompositionId,
    labels: row.labels as string[],
    modules: row.modules.map((m) => ({ moduleId: m.moduleId, label: m.label })),
    options: (row.options as CompositionOptions | null) ?? {},
    jobId: row.jobId,
    metrics: (row.metrics as Record<string, unknown> | null) ?? null,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
  };
}

export interface NewComposition {
  readonly id: string;
  readonly ownerId: string | null;
  readonly baseCompositionId: string | null;
  readonly members: Member[];
  readonly options: CompositionOptions;
  readonly jobId: string;
}

/** The composition row and one row per member (a composition may have 1000: one INSERT for all). */
export function compositionInserts(c: NewComposition): InsertStatement[] {
  const composition = rowInsert('Composition', {
    id: c.id,
    ownerId: c.ownerId,
    baseCompositionId: c.baseCompositionId,
    labels: c.members.map((m) => m.label),
    options: c.options,
    jobId: c.jobId,
    createdAt: utcNow(),
  });
  const members: InsertStatement = {
    text: (p) => `INSERT INTO "CompositionModule" ("compositionId", "position", "moduleId", "label")
           SELECT $${p}, m.position, m."moduleId", m.label FROM unnest($${p + 1}::int[], $${p + 2}::text[], $${p + 3}::text[]) AS m(position, "moduleId", label)`,
    values: [c.id, c.members.map((_, i) => i), c.members.map((m) => m.moduleId), c.members.map((m) => m.label)],
  };
  return [composition, members];
}

export async function findComposition(db: Db, id: string, ownerId: string | null): Promise<Composition> {
  const row = await db.composition.findFirst({ where: { id, ownerId }, include: WITH_MEMBERS });
  if (!row) throw new NotFoundError('composition', id);
  return toComposition(row);
}

export async function findCompositionById(db: Db, id: string): Promise<Composition> {
  const row = await db.composition.findUnique({ where: { id }, include: WITH_MEMBERS });
  if (!row) throw new NotFoundError('composition', id);
  return toComposition(row);
}

export async function listCompositions(db: Db, ownerId: string | null, page: PageRequest): Promise<Page<Composition>> {
  const where = { ownerId, ...afterCursor(page.cursor) };
  return readPage(page, (take) => db.composition.findMany({ where, include: WITH_MEMBERS, orderBy: PAGE_ORDER, take }), toComposition);
}

/** The composition's members in order, each with what it takes to run its module. */
export async function compositionSources(db: Db, id: string): Promise<{ composition: Composition; sources: ModuleSource[] }> {
  const row = await db.composition.findUnique({
    where: { id },
    include: { modules: { orderBy: { position: 'asc' }, include: { module: { include: WITH_SOURCE } } } },
  });
  if (!row) throw new NotFoundError('composition', id);
  return { composition: toComposition(row), sources: row.modules.map((m) => toModuleSource(m.module)) };
}

/** The module ids of the members, in order. */
export async function compositionMemberIds(db: Db, id: string): Promise<string[]> {
  const rows = await db.compositionModule.findMany({ where: { compositionId: id }, orderBy: { position: 'asc' }, select: { moduleId: true } });
  return rows.map((r) => r.moduleId);
}

/** A new module version (continuous learning) that the member at `position` now points to. */
export async function pointMemberAt(db: Db, compositionId: string, position: number, version: NewModule): Promise<void> {
  await ensureModule(db, version);
  await db.compositionModule.update({ where: { compositionId_position: { compositionId, position } }, data: { moduleId: version.id } });
}

export async function recordCompositionMetrics(db: Db, id: string, metrics: Record<string, unknown>): Promise<void> {
  await db.composition.update({ where: { id }, data: { metrics: metrics as Prisma.InputJsonValue, finishedAt: new Date() } });
}

/** The module versions continuous learning made for this composition (ids "<composition>-<position>"). */
async function versionsMadeFor(db: Db, id: string) {
  return db.module.findMany({ where: { id: { startsWith: `${id}-` }, parentModuleId: { not: null } } });
}

/** Unfinished jobs on the composition (compose, predict), its evaluations, or its module versions (export). */
export async function compositionRunningJobs(db: Db, id: string): Promise<JobRow[]> {
  const [evaluations, versions] = await Promise.all([db.evaluation.findMany({ where: { compositionId: id }, select: { id: true } }), versionsMadeFor(db, id)]);
  const resources = [id, ...evaluations.map((e) => e.id), ...versions.map((v) => v.id)];
  return db.job.findMany({ where: { resourceId: { in: resources }, state: { in: [...UNFINISHED_STATES] } } });
}

/**
 * Removes the composition with its evaluations, job rows, and the module versions continuous
 * learning made for it that no other composition uses; returns the blob keys those referred to.
 */
export async function deleteComposition(db: Db, id: string): Promise<string[]> {
  const evaluations = await db.evaluation.findMany({ where: { compositionId: id }, select: { id: true } });
  await db.job.deleteMany({ where: { resourceId: { in: [id, ...evaluations.map((e) => e.id)] } } });
  await db.evaluation.deleteMany({ where: { compositionId: id } });
  const versions = await versionsMadeFor(db, id);
  await db.composition.deleteMany({ where: { id } });
  const unused = [];
  for (const v of versions) {
    if ((await db.compositionModule.count({ where: { moduleId: v.id } })) === 0) unused.push(v);
  }
  await db.job.deleteMany({ where: { resourceId: { in: unused.map((v) => v.id) } } });
  await db.module.deleteMany({ where: { id: { in: unused.map((v) => v.id) } } });
  return unused.flatMap(moduleBlobs);
}
