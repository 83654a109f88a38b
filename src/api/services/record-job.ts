/**
 * The one way a request starts long work: the resource rows and the job row commit together, then
 * the job is queued; if Redis refuses it, both are taken back so no row waits for a job that will
 * never run, and the caller's error (503) propagates.
 */
import { randomUUID } from 'node:crypto';
import type { Prisma } from '../../store/db';
import type { JobDataMap, JobType } from '../../jobs/queues';
import type { AppDeps } from '../deps';

export interface JobSpec<T extends JobType> {
  readonly type: T;
  readonly data: JobDataMap[T];
  readonly ownerId: string | null;
  readonly resourceId: string;
  readonly modelId?: string;
}

export async function recordAndEnqueue<T extends JobType>(
  deps: AppDeps,
  job: JobSpec<T>,
  write: (tx: Prisma.TransactionClient, jobId: string) => Promise<unknown>,
  undo: (tx: Prisma.TransactionClient) => Promise<unknown>,
): Promise<string> {
  const jobId = randomUUID();
  await deps.db.$transaction(async (tx) => {
    await write(tx, jobId);
    await tx.job.create({
      data: { id: jobId, ownerId: job.ownerId, type: job.type, data: job.data as Prisma.InputJsonValue, resourceId: job.resourceId, modelId: job.modelId ?? null },
    });
  });
  try {
    await deps.queues.enqueue(job.type, jobId, job.data);
  } catch (err) {
    await deps.db.$transaction(async (tx) => {
      await tx.job.deleteMany({ where: { id: jobId } });
      await undo(tx);
    });
    throw err;
  }
  return jobId;
}
