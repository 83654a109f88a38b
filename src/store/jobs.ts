/**
 * Job rows: the durable record of every job (BullMQ in Redis only carries it to a worker).
 * State machine: queued -> active -> completed | failed | cancelled; active -> queued on a retry.
 */
import type { Db, Prisma } from './db';
import { NotFoundError } from '../errors';

export type JobRow = Prisma.JobGetPayload<object>;
export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
export const FINISHED_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface JobErrorInfo {
  title: string;
  detail: string;
  /** HTTP status of the problem, for failures caused by the request's input. */
  status?: number;
  type?: string;
  code?: string;
}

export async function createJob(db: Db, data: Prisma.JobUncheckedCreateInput): Promise<JobRow> {
  return db.job.create({ data });
}

export async function findJob(db: Db, id: string, ownerId: string | null): Promise<JobRow> {
  const row = await db.job.findFirst({ where: { id, ownerId } });
  if (!row) throw new NotFoundError('job', id);
  return row;
}

export async function getJob(db: Db, id: string): Promise<JobRow | null> {
  return db.job.findUnique({ where: { id } });
}

/** Claims the row for a worker; returns null when it was cancelled or already finished. */
export async function markActive(db: Db, id: string, workerId: string, attempt: number): Promise<JobRow | null> {
  const { count } = await db.job.updateMany({
    where: { id, state: { in: ['queued', 'active'] }, cancelRequested: false },
    data: { state: 'active', workerId, attempts: attempt, startedAt: new Date(), heartbeatAt: new Date() },
  });
  return count === 1 ? getJob(db, id) : null;
}

/** Writes progress through; returns whether a cancellation was requested meanwhile. */
export async function writeProgress(db: Db, id: string, progress: number, stage: string): Promise<boolean> {
  const row = await db.job.update({
    where: { id },
    data: { progress: Math.max(0, Math.min(100, Math.round(progress))), stage },
    select: { cancelRequested: true },
  });
  return row.cancelRequested;
}

export async function markCompleted(db: Db, id: string, result: Prisma.InputJsonValue): Promise<void> {
  await db.job.update({
    where: { id },
    data: { state: 'completed', progress: 100, stage: 'done', result, finishedAt: new Date() },
  });
}

export async function markFailed(db: Db, id: string, error: JobErrorInfo, willRetry: boolean): Promise<void> {
  await db.job.update({
    where: { id },
    data: willRetry
      ? { state: 'queued', error: { ...error, retrying: true } }
      : { state: 'failed', error: { ...error }, finishedAt: new Date() },
  });
}

/** Back to queued after an outage of a backing service; it did not cost the job an attempt. */
export async function markWaiting(db: Db, id: string, error: JobErrorInfo): Promise<void> {
  await db.job.updateMany({ where: { id, state: { in: ['queued', 'active'] } }, data: { state: 'queued', error: { ...error, retrying: true } } });
}

export async function markCancelled(db: Db, id: string): Promise<void> {
  await db.job.update({
    where: { id },
    data: { state: 'cancelled', cancelRequested: true, finishedAt: new Date() },
  });
}

/** A running job's sign of life (see unfinishedJobs). */
export async function heartbeat(db: Db, id: string): Promise<void> {
  await db.job.updateMany({ where: { id, state: 'active' }, data: { heartbeatAt: new Date() } });
}

/**
 * Jobs that should be in the queue: queued rows made before `queuedBefore` and active rows whose
 * worker last showed life before `activeBefore` (younger ones may still be on their way in, or
 * held by a live worker).
 */
export async function unfinishedJobs(
  db: Db,
  queuedBefore: Date,
  activeBefore: Date,
  take = 500,
  afterId?: string,
): Promise<Pick<JobRow, 'id' | 'type' | 'state' | 'data'>[]> {
  return db.job.findMany({
    ...(afterId ? { cursor: { id: afterId }, skip: 1 } : {}),
    where: {
      cancelRequested: false,
      OR: [
        { state: 'queued', createdAt: { lt: queuedBefore } },
        { state: 'active', heartbeatAt: { lt: activeBefore } },
        { state: 'active', heartbeatAt: null, startedAt: { lt: activeBefore } },
      ],
    },
    select: { id: true, type: true, state: true, data: true },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    take,
  });
}

/** Fails a row the queue gave up on, unless it finished meanwhile. */
export async function markAbandoned(db: Db, id: string, error: JobErrorInfo): Promise<void> {
  await db.job.updateMany({
    where: { id, state: { in: ['queued', 'active'] } },
    data: { state: 'failed', error: { ...error }, finishedAt: new Date() },
  });
}

export async function requestCancel(db: Db, id: string): Promise<void> {
  await db.job.update({ where: { id }, data: { cancelRequested: true } });
}

export async function countJobsByState(db: Db): Promise<{ type: string; state: string; count: number }[]> {
  const rows = await db.job.groupBy({ by: ['type', 'state'], _count: { _all: true } });
  return rows.map((r) => ({ type: r.type, state: r.state, count: r._count._all }));
}
