/** Job views, lists and cancellation. The job row is the record; BullMQ only carries the work. */
import { ConflictError } from '../../errors';
import * as jobsRepo from '../../store/jobs';
import type { PageRequest } from '../../store/page';
import type { JobType } from '../../jobs/queues';
import type { JobViewT } from '../schemas/jobs';
import type { AppDeps } from '../deps';

export function jobView(row: jobsRepo.JobViewRow): JobViewT {
  return {
    id: row.id,
    type: row.type,
    state: row.state as JobViewT['state'],
    progress: row.progress,
    ...(row.stage ? { stage: row.stage } : {}),
    attempts: row.attempts,
    cancelRequested: row.cancelRequested,
    ...(row.resourceId ? { resourceId: row.resourceId } : {}),
    ...(row.result !== null ? { result: row.result } : {}),
    ...(row.error !== null ? { error: row.error as JobViewT['error'] } : {}),
    createdAt: row.createdAt.toISOString(),
    ...(row.startedAt ? { startedAt: row.startedAt.toISOString() } : {}),
    ...(row.finishedAt ? { finishedAt: row.finishedAt.toISOString() } : {}),
  };
}

/**
 * What a resource shows of the job that makes it: the one mapper from job row to resource status
 * (a resource has no state of its own) and, when it failed, the job's problem.
 */
export function jobFacts(job: jobsRepo.JobRow | null | undefined, finishedAt: Date | null): { status: string; error?: { title: string; detail: string } } {
  // Every resource commits with its job row and loses it only with itself; should one be missing,
  // the recorded results are the only sign of the outcome.
  if (!job) return { status: finishedAt ? 'completed' : 'queued' };
  return { status: job.state, ...(job.state === 'failed' && job.error ? { error: job.error as { title: string; detail: string } } : {}) };
}

export async function getJob(deps: AppDeps, id: string, ownerId: string | null): Promise<JobViewT> {
  return jobView(await deps.jobWatch.view(id, ownerId));
}

export async function listJobs(
  deps: AppDeps,
  ownerId: string | null,
  filter: jobsRepo.JobFilter,
  page: PageRequest,
): Promise<{ items: JobViewT[]; nextCursor?: string }> {
  const p = await jobsRepo.listJobs(deps.db, ownerId, filter, page);
  return { ...p, items: p.items.map(jobView) };
}

/** 409 naming what still runs, for deletes of resources that jobs are working on. */
export function refuseWhileRunning(what: string, running: jobsRepo.JobRow[]): void {
  if (running.length === 0) return;
  const shown = running
    .slice(0, 3)
    .map((j) => `${j.type} job ${j.id} (${j.state})`)
    .join(', ');
  throw new ConflictError(`${what} is in use by ${running.length} unfinished job(s): ${shown}; wait for them or cancel them with DELETE /jobs/<id>`);
}

/**
 * Cancels a queued job at once; an active one is asked to stop at its next progress report.
 * @returns the job and whether it is already cancelled.
 */
export async function cancelJob(deps: AppDeps, id: string, ownerId: string | null): Promise<{ job: JobViewT; done: boolean }> {
  const row = await jobsRepo.findJob(deps.db, id, ownerId);
  if (jobsRepo.FINISHED_STATES.includes(row.state as jobsRepo.JobState)) {
    throw new ConflictError(`job ${id} is already ${row.state}`);
  }
  await jobsRepo.requestCancel(deps.db, id);
  // Not removable means a worker holds it: it stops at its next progress report, and a worker
  // that has yet to claim the row refuses it (cancelRequested).
  if (await deps.queues.removeWaiting(row.type as JobType, id)) await jobsRepo.markCancelled(deps.db, id);
  const after = await jobsRepo.findJob(deps.db, id, ownerId);
  return { job: jobView(after), done: after.state === 'cancelled' };
}
