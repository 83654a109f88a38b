/**
 * The one way a request starts long work: the resource rows and the job row are written together
 * (one statement), then the job is queued; if Redis refuses it, both are taken back so no row waits
 * for a job that will never run, and the caller's error (503) propagates.
 */
import { randomUUID } from 'node:crypto';
import { inTransaction, insertTogether, poolOf, type InsertStatement, type Prisma } from '../../store/db';
import { deleteJob, jobInsert } from '../../store/jobs';
import type { JobDataMap, JobType } from '../../jobs/queues';
import type { AppDeps } from '../deps';

export interface JobSpec<T extends JobType> {
  readonly type: T;
  readonly data: JobDataMap[T];
  readonly ownerId: string | null;
  readonly resourceId: string;
  readonly modelId?: string;
}

type Tx = Prisma.TransactionClient;

/**
 * @param rows the resource rows' INSERTs, written in one statement with the job row's: one round
 *   trip on node-postgres, not Prisma, for every job-creating request (the hot path)
 * @param undo takes the resource rows back when the queue refuses the job (rare: through Prisma)
 */
export async function recordAndEnqueue<T extends JobType>(
  deps: AppDeps,
  job: JobSpec<T>,
  rows: (jobId: string) => InsertStatement[] = () => [],
  undo: (tx: Tx) => Promise<unknown> = async () => undefined,
): Promise<string> {
  const jobId = randomUUID();
  await insertTogether(poolOf(deps.db), [
    ...rows(jobId),
    jobInsert({
      id: jobId,
      ownerId: job.ownerId,
      type: job.type,
      data: job.data,
      resourceId: job.resourceId,
      modelId: job.modelId ?? null,
    }),
  ]);
  try {
    await deps.queues.enqueue(job.type, jobId, job.data);
  } catch (err) {
    await inTransaction(deps.db, async (tx) => {
      await deleteJob(tx, jobId);
      await undo(tx);
    });
    throw err;
  }
  return jobId;
}
