/**
 * Dataset rows, mapped once to `Dataset`; tensors live in the blob store (images NHWC uint8 or
 * float32, labels int32 LE).
 */
import { findOwnedRow, type Db, type Prisma } from './db';
import { NotFoundError } from '../errors';
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';
import { UNFINISHED_STATES } from './jobs';

export interface Dataset {
  readonly id: string;
  readonly ownerId: string | null;
  readonly name: string;
  readonly format: string;
  readonly count: number;
  /** [N, H, W, C] */
  readonly shape: number[];
  readonly dtype: string;
  readonly numClasses: number;
  readonly classCounts: number[];
  readonly classNames: string[] | null;
  readonly imagesBlob: string;
  readonly labelsBlob: string;
  readonly createdAt: Date;
}

type DatasetRow = Prisma.DatasetGetPayload<object>;

export function toDataset(row: DatasetRow): Dataset {
  return {
    id: row.id,
    ownerId: row.ownerId,
    name: row.name,
    format: row.format,
    count: row.count,
    shape: row.shape as number[],
    dtype: row.dtype,
    numClasses: row.numClasses,
    classCounts: row.classCounts as number[],
    classNames: (row.classNames as string[] | null) ?? null,
    imagesBlob: row.imagesBlob,
    labelsBlob: row.labelsBlob,
    createdAt: row.createdAt,
  };
}

export type NewDataset = Omit<Dataset, 'createdAt' | 'classNames'> & { readonly classNames?: string[] };

export async function createDataset(db: Db, d: NewDataset): Promise<Dataset> {
  return toDataset(await db.dataset.create({ data: { ...d, ...(d.classNames ? { classNames: d.classNames } : {}) } }));
}

export async function findDataset(db: Db, id: string, ownerId: string | null): Promise<Dataset> {
  const row = await findOwnedRow(db, 'Dataset', id, ownerId, (tx) => tx.dataset.findFirst({ where: { id, ownerId } }));
  if (!row) throw new NotFoundError('dataset', id);
  return toDataset(row);
}

/** For workers: a job's dataset regardless of owner (the job was authorised when it was created). */
export async function findDatasetById(db: Db, id: string): Promise<Dataset> {
  const row = await db.dataset.findUnique({ where: { id } });
  if (!row) throw new NotFoundError('dataset', id);
  return toDataset(row);
}

export async function listDatasets(db: Db, ownerId: string | null, page: PageRequest): Promise<Page<Dataset>> {
  const where = { ownerId, ...afterCursor(page.cursor) };
  return readPage(page, (take) => db.dataset.findMany({ where, orderBy: PAGE_ORDER, take }), toDataset);
}

/** What still needs a dataset: jobs that read it now, and decompositions made from it. */
export interface DatasetUse {
  readonly runningJobs: number;
  readonly decompositions: number;
}

export async function datasetUse(db: Db, id: string): Promise<DatasetUse> {
  const [evaluations, compositions, decompositions] = await Promise.all([
    db.evaluation.findMany({ where: { datasetId: id }, select: { id: true } }),
    // A composition names its datasets in its options (evaluation, continuous learning).
    db.composition.findMany({
      where: { OR: [{ options: { path: ['evalDatasetId'], equals: id } }, { options: { path: ['continuousLearning', 'datasetIds'], array_contains: [id] } }] },
      select: { id: true },
    }),
    db.decomposition.findMany({ where: { OR: [{ datasetId: id }, { evalDatasetId: id }] }, select: { id: true } }),
  ]);
  const resources = [...evaluations, ...compositions, ...decompositions].map((r) => r.id);
  const runningJobs = resources.length === 0 ? 0 : await db.job.count({ where: { resourceId: { in: resources }, state: { in: [...UNFINISHED_STATES] } } });
  return { runningJobs, decompositions: decompositions.length };
}

/** Removes the dataset with its finished evaluations and their job rows; false when it was gone. */
export async function deleteDataset(db: Db, id: string): Promise<boolean> {
  const evaluations = await db.evaluation.findMany({ where: { datasetId: id }, select: { id: true } });
  await db.job.deleteMany({ where: { resourceId: { in: evaluations.map((e) => e.id) } } });
  await db.evaluation.deleteMany({ where: { datasetId: id } });
  const { count } = await db.dataset.deleteMany({ where: { id } });
  return count === 1;
}
