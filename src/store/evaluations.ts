/** Evaluation rows: a model or a composition scored on a dataset. Its state is its job's. */
import { rowInsert, utcNow, type Db, type InsertStatement, type Prisma } from './db';
import { NotFoundError } from '../errors';
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';

export interface EvaluationResult {
  readonly count: number;
  readonly top1: number;
  readonly top5: number;
  readonly perClass: number[];
  /** Absent from results recorded before it was kept. */
  readonly classCounts?: number[];
  readonly confusion: number[][];
  /** For compositions: the labels the per-class figures and confusion rows follow. */
  readonly labels?: string[];
  readonly baseline?: { readonly top1: number; readonly top5: number };
}

export interface Evaluation {
  readonly id: string;
  readonly ownerId: string | null;
  readonly modelId: string | null;
  readonly compositionId: string | null;
  readonly datasetId: string;
  readonly limit: number | null;
  /** Dataset class name -> composition label, for compositions. */
  readonly labelMapping: Record<string, string> | null;
  /** Compositions: also score the restricted-model baseline (one more forward pass of the model). */
  readonly baseline: boolean;
  readonly jobId: string | null;
  readonly result: EvaluationResult | null;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

type EvaluationRow = Prisma.EvaluationGetPayload<object>;

function toEvaluation(row: EvaluationRow): Evaluation {
  return {
    id: row.id,
    ownerId: row.ownerId,
    modelId: row.modelId,
    compositionId: row.compositionId,
    datasetId: row.datasetId,
    limit: row.limit,
    labelMapping: (row.labelMapping as Record<string, string> | null) ?? null,
    baseline: row.baseline,
    jobId: row.jobId,
    result: (row.result as EvaluationResult | null) ?? null,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
  };
}

export type NewEvaluation = Pick<Evaluation, 'id' | 'ownerId' | 'modelId' | 'compositionId' | 'datasetId' | 'limit' | 'labelMapping' | 'baseline' | 'jobId'>;

export function evaluationInsert(e: NewEvaluation): InsertStatement {
  return rowInsert('Evaluation', { ...e, createdAt: utcNow() });
}

export async function findEvaluation(db: Db, id: string, ownerId: string | null): Promise<Evaluation> {
  const row = await db.evaluation.findFirst({ where: { id, ownerId } });
  if (!row) throw new NotFoundError('evaluation', id);
  return toEvaluation(row);
}

export async function findEvaluationById(db: Db, id: string): Promise<Evaluation> {
  const row = await db.evaluation.findUnique({ where: { id } });
  if (!row) throw new NotFoundError('evaluation', id);
  return toEvaluation(row);
}

export interface EvaluationFilter {
  readonly modelId?: string;
  readonly compositionId?: string;
  readonly datasetId?: string;
}

export async function listEvaluations(db: Db, ownerId: string | null, filter: EvaluationFilter, page: PageRequest): Promise<Page<Evaluation>> {
  const where = { ownerId, ...filter, ...afterCursor(page.cursor) };
  return readPage(page, (take) => db.evaluation.findMany({ where, orderBy: PAGE_ORDER, take }), toEvaluation);
}

export async function recordEvaluationResult(db: Db, id: string, result: EvaluationResult): Promise<void> {
  await db.evaluation.update({ where: { id }, data: { result: result as unknown as Prisma.InputJsonValue, finishedAt: new Date() } });
}

/** Removes evaluations with their job rows. */
export async function deleteEvaluations(db: Db, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.job.deleteMany({ where: { resourceId: { in: ids } } });
  await db.evaluation.deleteMany({ where: { id: { in: ids } } });
}
