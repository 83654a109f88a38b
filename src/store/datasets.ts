/** Dataset rows; tensors live in the blob store (images NHWC uint8/float32, labels int32 LE). */
import type { Db, Prisma } from './db';
import { NotFoundError } from '../errors';

export type DatasetRow = Prisma.DatasetGetPayload<object>;

export async function createDataset(db: Db, data: Prisma.DatasetUncheckedCreateInput): Promise<DatasetRow> {
  return db.dataset.create({ data });
}

export async function findDataset(db: Db, id: string, ownerId: string | null): Promise<DatasetRow> {
  const row = await db.dataset.findFirst({ where: { id, ownerId } });
  if (!row) throw new NotFoundError('dataset', id);
  return row;
}

export async function listDatasets(db: Db, ownerId: string | null, limit = 100): Promise<DatasetRow[]> {
  return db.dataset.findMany({ where: { ownerId }, orderBy: { createdAt: 'desc' }, take: limit });
}
