/**
 * Job rows: the durable record of every job (BullMQ in Redis only carries it to a worker).
 * State machine: queued -> active -> completed | failed | cancelled; active -> queued on a retry.
 */
import { randomUUID } from 'node:crypto';
import { insertTogether, poolOf, rowInsert, utcNow, type InsertStatement, type Db, type Prisma, type PrismaClient, type Sql } from './db';
import { NotFoundError } from '../errors';
import { LeaseLostError } from './errors';

export { LeaseLostError };
import { PAGE_ORDER, afterCursor, readPage, type Page, type PageRequest } from './page';

export type JobRow = Prisma.JobGetPayload<object>;
export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
export const FINISHED_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];
export const UNFINISHED_STATES: readonly JobState[] = ['queued', 'active'];

export interface JobErrorInfo {
  title: string;
  detail: string;
  /** HTTP status of the problem, for failures caused by the request's input. */
  status?: number;
  type?: string;
  /** The error catalog's code (src/errors.ts): how the API turns the failure back into a problem. */
  code?: string;
  /** The engine's own code (UNSUPPORTED_LAYER, ...) for engine failures. */
  engineCode?: string;
}

export interface NewJob {
  readonly id: string;
  readonly ownerId: string | null;
  readonly type: string;
  readonly data: object;
  readonly resourceId?: string | null;
  readonly modelId?: string | null;
}

/** A new job row, queued: its INSERT, to run with the rows of what it makes (`insertTogether`). */
export function jobInsert(job: NewJob): InsertStatement {
  return rowInsert('Job', { ...job, state: 'queued', createdAt: utcNow() });
}

/** A queued job row alone (tests; requests write theirs with their resource rows: record-job.ts). */
export async function createJob(sql: Sql, job: NewJob): Promise<void> {
  await insertTogether(sql, [jobInsert(job)]);
}

export async function findJob(db: Db, id: string, ownerId: string | null): Promise<JobRow> {
  const row = await db.job.findFirst({ where: { id, ownerId } });
  if (!row) throw new NotFoundError('job', id);
  return row;
}

export async function getJob(db: Db, id: string): Promise<JobRow | null> {
  return db.job.findUnique({ where: { id } });
}

/** What a job view shows of a row (every column but the job's input, worker and lease), and its owner. */
export type JobViewRow = Pick<
  JobRow,
  | 'id'
  | 'ownerId'
  | 'type'
  | 'state'
  | 'progress'
  | 'stage'
  | 'attempts'
  | 'cancelRequested'
  | 'resourceId'
  | 'result'
  | 'error'
  | 'createdAt'
  | 'startedAt'
  | 'finishedAt'
>;

const JOB_VIEW_SELECT = `SELECT "id", "ownerId", "type", "state", "progress", "stage", "attempts", "cancelRequested", "resourceId", "result", "error",
       "createdAt" AT TIME ZONE 'UTC' AS "createdAt", "startedAt" AT TIME ZONE 'UTC' AS "startedAt",
       "finishedAt" AT TIME ZONE 'UTC' AS "finishedAt"
  FROM "Job" WHERE "id" = $1`;

/**
 * The hot read of job status (polled by every client and dashboard): one prepared statement on
 * the primary key through node-postgres, without Prisma's per-query compilation. Timestamps are
 * stored without zone in UTC (Prisma's convention), hence AT TIME ZONE 'UTC'.
 * @param ownerId the owner filter as everywhere: null matches rows without an owner
 */
export async function findJobView(db: PrismaClient, id: string, ownerId: string | null): Promise<JobViewRow> {
  const { rows } = await poolOf(db).query<JobViewRow>({
    name: 'job-view-by-owner',
    text: `${JOB_VIEW_SELECT} AND "ownerId" IS NOT DISTINCT FROM $2`,
    values: [id, ownerId],
  });
  if (!rows[0]) throw new NotFoundError('job', id);
  return rows[0];
}

/** The same read without the owner filter, for watchers whose ownership was checked when they began. */
export async function jobViewById(db: PrismaClient, id: string): Promise<JobViewRow | null> {
  const { rows } = await poolOf(db).query<JobViewRow>({ name: 'job-view-by-id', text: JOB_VIEW_SELECT, values: [id] });
  return rows[0] ?? null;
}

export interface JobFilter {
  readonly state?: JobState;
  readonly type?: string;
  readonly resourceId?: string;
}

export async function listJobs(db: Db, ownerId: string | null, filter: JobFilter, page: PageRequest): Promise<Page<JobRow>> {
  const where = { ownerId, ...filter, ...afterCursor(page.cursor) };
  return readPage(
    page,
    (take) => db.job.findMany({ where, orderBy: PAGE_ORDER, take }),
    (r) => r,
  );
}

/**
 * The job that made a resource: the truth of its state (a resource has no state of its own). Read
 * before the resource itself: a job turns completed only after its results committed, so a
 * completed state is never shown beside results read from before the commit.
 */
export async function jobOf(db: Db, resourceId: string, type: string): Promise<JobRow | null> {
  return db.job.findFirst({ where: { resourceId, type }, orderBy: { createdAt: 'desc' } });
}

/** The jobs of these types made for these resources: one query for a page of resources. */
export async function jobsOf(db: Db, resourceIds: string[], type: string): Promise<Map<string, JobRow>> {
  if (resourceIds.length === 0) return new Map();
  const rows = await db.job.findMany({ where: { resourceId: { in: resourceIds }, type }, orderBy: { createdAt: 'asc' } });
  return new Map(rows.map((r) => [r.resourceId as string, r]));
}

/** Queued or running jobs of a model (imports, evaluations, decompositions name it). */
export async function countUnfinishedJobsOfModel(db: Db, modelId: string): Promise<number> {
  return db.job.count({ where: { modelId, state: { in: [...UNFINISHED_STATES] } } });
}

/** An export of the module that is still queued or running, to join instead of starting another. */
export async function unfinishedJob(db: Db, resourceId: string, type: string): Promise<JobRow | null> {
  return db.job.findFirst({ where: { resourceId, type, state: { in: [...UNFINISHED_STATES] } } });
}

export async function deleteJob(db: Db, id: string): Promise<void> {
  await db.job.deleteMany({ where: { id } });
}

/**
 * One run's hold on a job row. Every write of the run names its lease, so a run that lost the job
 * (its queue lock lapsed while it was alive, and another worker took the job over) cannot
 * overwrite the newer run's progress or finish the job a second time: its writes throw
 * LeaseLostError instead.
 */
export interface JobLease {
  readonly jobId: string;
  readonly leaseId: string;
}

export function newLease(jobId: string): JobLease {
  return { jobId, leaseId: randomUUID() };
}

/**
 * Claims the row for a new run under `lease` (made before the claim, so the caller knows it even
 * when this call fails half-way); false when the job was cancelled or already finished. A new run
 * starts over: progress and stage are reset.
 */
export async function markActive(db: Db, lease: JobLease, workerId: string, attempt: number): Promise<boolean> {
  const { count } = await db.job.updateMany({
    where: { id: lease.jobId, state: { in: ['queued', 'active'] }, cancelRequested: false },
    data: { state: 'active', workerId, leaseId: lease.leaseId, attempts: attempt, progress: 0, stage: null, startedAt: new Date(), heartbeatAt: new Date() },
  });
  return count === 1;
}

/**
 * Inside the transaction that records a run's results: confirms the run still holds the job and
 * locks the row until the commit, so a run that lost the job records nothing (LeaseLostError
 * rolls the whole transaction back) and no takeover can slip in between.
 */
export async function confirmLease(tx: Db, lease: JobLease): Promise<void> {
  await updateLeased(lease, (where) => tx.job.update({ where, data: { heartbeatAt: new Date() }, select: { id: true } }));
}

/** `update` of the lease's row while it is active under that lease; LeaseLostError when it is not. */
async function updateLeased<T>(lease: JobLease, update: (where: { id: string; leaseId: string; state: 'active' }) => Promise<T>): Promise<T> {
  try {
    return await update({ id: lease.jobId, leaseId: lease.leaseId, state: 'active' });
  } catch (err) {
    // P2025: no row matched the where (another lease, or no longer active).
    if ((err as { code?: string }).code === 'P2025') throw new LeaseLostError(lease);
    throw err;
  }
}

/**
 * Runs `write` (a run's results) in one transaction that first confirms and locks the lease: a run
 * that lost its job records nothing.
 */
export async function recordUnderLease<R>(db: PrismaClient, lease: JobLease, write: (tx: Prisma.TransactionClient) => Promise<R>): Promise<R> {
  return db.$transaction(
    async (tx) => {
      await confirmLease(tx, lease);
      return write(tx);
    },
    // Prisma's default of 5 s failed the record of a 1000-label composition's metrics (two 1000 x
    // 1000 matrices then: 6-7 s of Prisma's JSON handling beside a worker's TF.js work).
    { timeout: RECORD_TIMEOUT_MS },
  );
}

/** How long a run's results transaction may stay open. */
const RECORD_TIMEOUT_MS = 60_000;

/** Writes progress through; returns whether a cancellation was requested meanwhile. */
export async function writeProgress(db: Db, lease: JobLease, progress: number, stage: string): Promise<boolean> {
  const row = await updateLeased(lease, (where) =>
    db.job.update({ where, data: { progress: Math.max(0, Math.min(100, Math.round(progress))), stage }, select: { cancelRequested: true } }),
  );
  return row.cancelRequested;
}

export async function markCompleted(db: Db, lease: JobLease, result: Prisma.InputJsonValue): Promise<void> {
  await updateLeased(lease, (where) => db.job.update({ where, data: { state: 'completed', progress: 100, stage: 'done', result, finishedAt: new Date() } }));
}

export async function markFailed(db: Db, lease: JobLease, error: JobErrorInfo, willRetry: boolean): Promise<void> {
  await updateLeased(lease, (where) =>
    db.job.update({
      where,
      data: willRetry ? { state: 'queued', error: { ...error, retrying: true } } : { state: 'failed', error: { ...error }, finishedAt: new Date() },
    }),
  );
}

/** The run stopped on a cancellation request. */
export async function markRunCancelled(db: Db, lease: JobLease): Promise<void> {
  await updateLeased(lease, (where) => db.job.update({ where, data: { state: 'cancelled', cancelRequested: true, finishedAt: new Date() } }));
}

/**
 * Back to queued after an outage of a backing service; it did not cost the job an attempt. The
 * row is this run's (active under its lease) or nobody's yet (queued: the outage came before the
 * claim); a row another run holds is left alone.
 */
export async function markWaiting(db: Db, lease: JobLease, error: JobErrorInfo): Promise<void> {
  await db.job.updateMany({
    where: { id: lease.jobId, OR: [{ state: 'queued' }, { state: 'active', leaseId: lease.leaseId }] },
    data: { state: 'queued', error: { ...error, retrying: true } },
  });
}

export async function markCancelled(db: Db, id: string): Promise<void> {
  await db.job.update({
    where: { id },
    data: { state: 'cancelled', cancelRequested: true, finishedAt: new Date() },
  });
}

/** A running job's sign of life (see unfinishedJobs); false once the run has lost its lease. */
export async function heartbeat(db: Db, lease: JobLease): Promise<boolean> {
  const { count } = await db.job.updateMany({ where: { id: lease.jobId, leaseId: lease.leaseId, state: 'active' }, data: { heartbeatAt: new Date() } });
  return count === 1;
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
