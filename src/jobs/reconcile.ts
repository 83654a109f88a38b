/**
 * Job rows in PostgreSQL are the record; Redis only carries jobs to workers. When the two
 * disagree (Redis restarted without persistence, or BullMQ gave up on a job whose worker kept
 * dying), the rows win: a job missing from the queue is queued again under its own id, and a job
 * BullMQ failed without the worker recording it is marked failed with BullMQ's reason.
 */
import type { Db } from '../store/db';
import * as jobsRepo from '../store/jobs';
import { JOB_TYPES, type JobDataMap, type JobQueues, type JobType } from './queues';

export interface ReconcileOptions {
  /** Rows younger than this may still be being enqueued by their request. */
  readonly graceMs: number;
  /** Active rows are judged once their worker has shown no life for several lock periods. */
  readonly lockMs: number;
  readonly now?: number;
  readonly pageSize?: number;
}

export interface ReconcileReport {
  readonly requeued: string[];
  readonly failed: string[];
}

export async function reconcileJobs(db: Db, queues: JobQueues, options: ReconcileOptions): Promise<ReconcileReport> {
  const now = options.now ?? Date.now();
  const queuedBefore = new Date(now - options.graceMs);
  const activeBefore = new Date(now - Math.max(options.graceMs, 3 * options.lockMs));
  const requeued: string[] = [];
  const failed: string[] = [];
  // Page by page, so a backlog of queued jobs does not hide the newer rows behind it.
  const pageSize = options.pageSize ?? 500;
  let afterId: string | undefined;
  for (;;) {
    const page = await jobsRepo.unfinishedJobs(db, queuedBefore, activeBefore, pageSize, afterId);
    await reconcilePage(page, db, queues, requeued, failed);
    if (page.length < pageSize) break;
    afterId = page[page.length - 1].id;
  }
  return { requeued, failed };
}

async function reconcilePage(
  rows: Awaited<ReturnType<typeof jobsRepo.unfinishedJobs>>,
  db: Db,
  queues: JobQueues,
  requeued: string[],
  failed: string[],
): Promise<void> {
  for (const row of rows) {
    if (!(JOB_TYPES as readonly string[]).includes(row.type)) continue;
    const type = row.type as JobType;
    const state = await queues.state(type, row.id);
    if (state === 'missing') {
      await queues.enqueue(type, row.id, row.data as unknown as JobDataMap[JobType]);
      requeued.push(row.id);
    } else if (state.name === 'failed') {
      await jobsRepo.markAbandoned(db, row.id, { title: 'Job failed', detail: state.reason || 'the queue gave up on the job' });
      failed.push(row.id);
    }
  }
}
