/**
 * Model rows, mapped once to `Model` (JSON columns and the preprocessing text parsed here, nowhere
 * else). Ownership is part of every query, so another key's model is simply not found.
 */
import { findOwnedRow, rowInsert, utcNow, type Db, type InsertStatement, type Prisma } from './db';
import { NotFoundError } from '../errors';
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';

/** input = (pixel * scale - mean[c]) / std[c] per channel. */
export interface Preprocessing {
  readonly scale: number;
  readonly mean?: number[];
  readonly std?: number[];
}

export interface LayerSummary {
  readonly name: string;
  readonly type: string;
  readonly outputShape: (number | null)[];
}

export interface Model {
  readonly id: string;
  readonly ownerId: string | null;
  readonly name: string;
  readonly format: string;
  /** pending until its import job records it, then ready (a failed import removes the row). */
  readonly status: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly sourceBlob: string;
  readonly canonicalBlob: string | null;
  readonly inputShape: number[] | null;
  readonly numClasses: number | null;
  readonly params: number | null;
  readonly layers: LayerSummary[] | null;
  readonly preprocessing: Preprocessing;
  readonly classNames: string[] | null;
  readonly createdAt: Date;
}

type ModelRow = Prisma.ModelGetPayload<object>;

export function toModel(row: ModelRow): Model {
  return {
    id: row.id,
    ownerId: row.ownerId,
    name: row.name,
    format: row.format,
    status: row.status,
    sizeBytes: Number(row.sizeBytes),
    sha256: row.sha256,
    sourceBlob: row.sourceBlob,
    canonicalBlob: row.canonicalBlob,
    inputShape: (row.inputShape as number[] | null) ?? null,
    numClasses: row.numClasses,
    params: row.params,
    layers: (row.layers as LayerSummary[] | null) ?? null,
    preprocessing: JSON.parse(row.preprocessing) as Preprocessing,
    classNames: (row.classNames as string[] | null) ?? null,
    createdAt: row.createdAt,
  };
}

export interface NewModel {
  readonly id: string;
  readonly ownerId: string | null;
  readonly name: string;
  readonly format: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly sourceBlob: string;
  readonly preprocessing: Preprocessing;
  readonly classNames?: string[];
}

/** A new model's row, pending, and its INSERT (run with its import job's: `insertTogether`). */
export function modelInsert(m: NewModel): { model: Model; insert: InsertStatement } {
  const createdAt = utcNow();
  const row: ModelRow = {
    ...m,
    status: 'pending',
    sizeBytes: BigInt(m.sizeBytes),
    canonicalBlob: null,
    inputShape: null,
    numClasses: null,
    params: null,
    layers: null,
    // JSON text: Prisma's Json writes drop the 17th significant digit of doubles (schema.prisma).
    preprocessing: JSON.stringify(m.preprocessing),
    classNames: m.classNames ?? null,
    outputActivation: null,
    inspection: null,
    createdAt: new Date(createdAt),
  };
  return { model: toModel(row), insert: rowInsert('Model', { ...row, createdAt }) };
}

export async function findModel(db: Db, id: string, ownerId: string | null): Promise<Model> {
  const row = await findOwnedRow(db, 'Model', id, ownerId, (tx) => tx.model.findFirst({ where: { id, ownerId } }));
  if (!row) throw new NotFoundError('model', id);
  return toModel(row);
}

/** For workers: a job's model regardless of owner (the job was authorised when it was created). */
export async function findModelById(db: Db, id: string): Promise<Model> {
  const row = await db.model.findUnique({ where: { id } });
  if (!row) throw new NotFoundError('model', id);
  return toModel(row);
}

export async function listModels(db: Db, ownerId: string | null, page: PageRequest): Promise<Page<Model>> {
  const where = { ownerId, ...afterCursor(page.cursor) };
  return readPage(page, (take) => db.model.findMany({ where, orderBy: PAGE_ORDER, take }), toModel);
}

export interface ModelInspection {
  readonly format: string;
  readonly canonicalBlob: string;
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly params: number;
  readonly layers: LayerSummary[];
  readonly classNames: string[];
  readonly outputActivation: string;
  readonly details: Prisma.InputJsonValue;
}

/** What the import job found: the model is ready. */
export async function markModelReady(db: Db, id: string, i: ModelInspection): Promise<void> {
  await db.model.update({
    where: { id },
    data: {
      status: 'ready',
      format: i.format,
      canonicalBlob: i.canonicalBlob,
      inputShape: i.inputShape,
      numClasses: i.numClasses,
      params: i.params,
      layers: i.layers as unknown as Prisma.InputJsonValue,
      classNames: i.classNames,
      outputActivation: i.outputActivation,
      inspection: i.details,
    },
  });
}

export async function countDecompositionsOfModel(db: Db, modelId: string): Promise<number> {
  return db.decomposition.count({ where: { modelId } });
}

/**
 * Removes the model row with the finished evaluations that describe only it, and their job rows
 * (unless `keepJobs`: a failed import keeps its job, the record of why); false when it was gone.
 */
export async function deleteModel(db: Db, id: string, { keepJobs = false } = {}): Promise<boolean> {
  const evaluations = await db.evaluation.findMany({ where: { modelId: id }, select: { id: true } });
  if (!keepJobs) await db.job.deleteMany({ where: { OR: [{ resourceId: { in: [id, ...evaluations.map((e) => e.id)] } }, { modelId: id }] } });
  await db.evaluation.deleteMany({ where: { modelId: id } });
  const { count } = await db.model.deleteMany({ where: { id } });
  return count === 1;
}
