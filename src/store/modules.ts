/**
 * Module rows: one per class of a decomposition (id "<decomposition>-<class>"), plus the versions
 * continuous learning makes (parentModuleId set). Masks and heads are blobs.
 */
import type { Db, Prisma } from './db';
import { NotFoundError } from '../errors';
import { toModel, type Model } from './models';
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';

export interface LayerKept {
  readonly layer: string;
  readonly units: number;
  readonly kept: number;
}

/** A compact module's cost against its model (multiply-accumulates as FLOPs, as the literature counts). */
export interface CompactFigures {
  readonly flopsFraction: number;
  readonly paramsFraction: number;
  readonly flops: number;
  readonly modelFlops: number;
  readonly params: number;
  readonly modelParams: number;
  /** Size of the stored network blob, and of the model in the same format. */
  readonly networkBytes: number;
  readonly modelBytes: number;
  readonly criterion: string;
  /** Output channels kept per Conv2D/Dense layer. */
  readonly layers: { readonly layer: string; readonly channels: number; readonly kept: number }[];
}

/** FLOPs and parameters of a module against its model's: a mask module runs the whole model (1). */
export function costFractions(compact: CompactFigures | null): { flopsFraction: number; paramsFraction: number } {
  return { flopsFraction: compact?.flopsFraction ?? 1, paramsFraction: compact?.paramsFraction ?? 1 };
}

export interface Module {
  readonly id: string;
  readonly ownerId: string | null;
  readonly decompositionId: string;
  readonly modelId: string;
  readonly classIndex: number;
  readonly className: string;
  readonly keptFraction: number;
  readonly perLayer: LayerKept[];
  readonly masksBlob: string;
  readonly headBlob: string;
  readonly oneVsRest: { accuracy: number } | null;
  readonly exportBlob: string | null;
  /** Compact modules: their own network (masks and head are laid out on it). */
  readonly networkBlob: string | null;
  readonly compact: CompactFigures | null;
  readonly parentModuleId: string | null;
  readonly createdAt: Date;
}

/** How to read a decomposition's packed masks: its observation points in mask order. */
export interface ObservationPoint {
  readonly layer: string;
  readonly shape: number[];
  readonly units: number;
}

/** A module with what it takes to run it: its model and its decomposition's mask layout. */
export interface ModuleSource {
  readonly module: Module;
  readonly model: Model;
  readonly observationPoints: ObservationPoint[];
  /** The decomposition's options (maskPoint, samplesPerClass, tanglingRatio, ...). */
  readonly options: Record<string, unknown>;
}

const WITH_MODEL_ID = { decomposition: { select: { modelId: true } } } as const;
type ModuleRow = Prisma.ModuleGetPayload<{ include: typeof WITH_MODEL_ID }>;

function toModule(row: ModuleRow): Module {
  return {
    id: row.id,
    ownerId: row.ownerId,
    decompositionId: row.decompositionId,
    modelId: row.decomposition.modelId,
    classIndex: row.classIndex,
    className: row.className,
    keptFraction: row.keptFraction,
    perLayer: row.perLayer as unknown as LayerKept[],
    masksBlob: row.masksBlob,
    headBlob: row.headBlob,
    oneVsRest: (row.oneVsRest as { accuracy: number } | null) ?? null,
    exportBlob: row.exportBlob,
    networkBlob: row.networkBlob,
    compact: (row.compact as unknown as CompactFigures | null) ?? null,
    parentModuleId: row.parentModuleId,
    createdAt: row.createdAt,
  };
}

export const WITH_SOURCE = { decomposition: { include: { model: true } } } as const;
export type ModuleSourceRow = Prisma.ModuleGetPayload<{ include: typeof WITH_SOURCE }>;

export function toModuleSource(row: ModuleSourceRow): ModuleSource {
  const dec = row.decomposition;
  return {
    module: toModule({ ...row, decomposition: { modelId: dec.modelId } }),
    model: toModel(dec.model),
    observationPoints: (dec.observationPoints as unknown as ObservationPoint[] | null) ?? [],
    options: (dec.options as Record<string, unknown> | null) ?? {},
  };
}

export async function findModule(db: Db, id: string, ownerId: string | null): Promise<Module> {
  const row = await db.module.findFirst({ where: { id, ownerId }, include: WITH_MODEL_ID });
  if (!row) throw new NotFoundError('module', id);
  return toModule(row);
}

/** The modules with these ids that the owner may use, with their sources (missing ids are left out). */
export async function findModuleSources(db: Db, ids: string[], ownerId: string | null): Promise<Map<string, ModuleSource>> {
  const rows = await db.module.findMany({ where: { id: { in: ids }, ownerId }, include: WITH_SOURCE });
  return new Map(rows.map((r) => [r.id, toModuleSource(r)]));
}

/** For workers: a job's module regardless of owner. */
export async function moduleSource(db: Db, id: string): Promise<ModuleSource> {
  const row = await db.module.findUnique({ where: { id }, include: WITH_SOURCE });
  if (!row) throw new NotFoundError('module', id);
  return toModuleSource(row);
}

export interface ModuleFilter {
  readonly decompositionId?: string;
  readonly modelId?: string;
  readonly classIndex?: number;
  readonly className?: string;
}

export async function listModules(db: Db, ownerId: string | null, filter: ModuleFilter, page: PageRequest): Promise<Page<Module>> {
  const { modelId, ...own } = filter;
  const where = { ownerId, ...own, ...(modelId ? { decomposition: { modelId } } : {}), ...afterCursor(page.cursor) };
  return readPage(page, (take) => db.module.findMany({ where, include: WITH_MODEL_ID, orderBy: PAGE_ORDER, take }), toModule);
}

export async function setModuleExport(db: Db, id: string, exportBlob: string): Promise<void> {
  await db.module.update({ where: { id }, data: { exportBlob } });
}

/** A module row to write: what the job knows (the model comes with the decomposition; export later). */
export type NewModule = Pick<
  Module,
  'id' | 'ownerId' | 'decompositionId' | 'classIndex' | 'className' | 'keptFraction' | 'perLayer' | 'masksBlob' | 'headBlob'
> & {
  readonly oneVsRest?: { accuracy: number };
  readonly parentModuleId?: string;
  readonly networkBlob?: string;
  readonly compact?: CompactFigures;
};

function moduleData(m: NewModule) {
  return { ...m, perLayer: m.perLayer as unknown as Prisma.InputJsonValue, compact: m.compact as unknown as Prisma.InputJsonValue | undefined };
}

export async function createModule(db: Db, m: NewModule): Promise<void> {
  await db.module.create({ data: moduleData(m) });
}

/** A module version (continuous learning); a retry that made it already keeps the first. */
export async function ensureModule(db: Db, m: NewModule): Promise<void> {
  await db.module.upsert({ where: { id: m.id }, create: moduleData(m), update: {} });
}

/** Blob keys of modules, to release after their rows are gone. */
export function moduleBlobs(m: Pick<Module, 'masksBlob' | 'headBlob' | 'exportBlob' | 'networkBlob'>): string[] {
  return [m.masksBlob, m.headBlob, ...(m.exportBlob ? [m.exportBlob] : []), ...(m.networkBlob ? [m.networkBlob] : [])];
}
