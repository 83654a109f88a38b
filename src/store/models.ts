/** Model rows. Ownership is part of every query, so another key's model is simply not found. */
import type { Db, Prisma } from './db';
import { NotFoundError } from '../errors';

export type ModelRow = Prisma.ModelGetPayload<object>;

export async function createModel(db: Db, data: Prisma.ModelUncheckedCreateInput): Promise<ModelRow> {
  return db.model.create({ data });
}

export async function findModel(db: Db, id: string, ownerId: string | null): Promise<ModelRow> {
  const row = await db.model.findFirst({ where: { id, ownerId } });
  if (!row) throw new NotFoundError('model', id);
  return row;
}

export async function listModels(db: Db, ownerId: string | null, limit = 100): Promise<ModelRow[]> {
  return db.model.findMany({ where: { ownerId }, orderBy: { createdAt: 'desc' }, take: limit });
}

export async function updateModel(db: Db, id: string, data: Prisma.ModelUncheckedUpdateInput): Promise<ModelRow> {
  return db.model.update({ where: { id }, data });
}

/** For workers: a job's model regardless of owner (the job was authorised when it was created). */
export async function findModelById(db: Db, id: string): Promise<ModelRow> {
  const row = await db.model.findUnique({ where: { id } });
  if (!row) throw new NotFoundError('model', id);
  return row;
}
