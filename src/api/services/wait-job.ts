/**
 * Waits for a job to finish (by its row), for requests that answer with the job's outcome when it
 * is quick and fall back to 202 + polling when it is not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, ERROR_CATALOG, type ErrorCode } from '../../errors';
import { FINISHED_STATES, getJob, type JobErrorInfo, type JobRow, type JobState } from '../../store/jobs';
import type { AppDeps } from '../deps';

export async function waitForJob(deps: AppDeps, jobId: string, timeoutMs: number): Promise<JobRow | undefined> {
  const deadline = Date.now() + timeoutMs;
  let every = 25;
  for (;;) {
    const row = await getJob(deps.db, jobId);
    if (!row || FINISHED_STATES.includes(row.state as JobState)) return row ?? undefined;
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(every, Math.max(1, deadline - Date.now())));
    every = Math.min(every * 2, 250);
  }
}

/** The AppError a failed job's recorded problem stands for: by its catalog code (unknown: internal). */
export function errorOfFailedJob(info: JobErrorInfo | null): AppError {
  const code = info?.code && Object.hasOwn(ERROR_CATALOG, info.code) ? (info.code as ErrorCode) : 'INTERNAL';
  return new AppError(code, info?.detail ?? 'the job failed');
}
