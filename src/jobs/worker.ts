/**
 * Runs jobs: one BullMQ Worker per job type, each handing its jobs to the type's processor.
 * The job row is kept in step (active, progress, completed/failed/cancelled). Bad input and defects
 * fail once (UnrecoverableError); transient failures (I/O, a database time-out) are retried with
 * backoff up to JOB_ATTEMPTS times. A
 * worker that dies holding a job loses its lock, and another worker picks the job up.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import type { Config } from '../config/env';
import { isServiceUnavailable } from '../errors';
import { JobCancelledError, JobTimeoutError, NoRowError, isFinal, jobErrorInfo } from './errors';
import type { PrismaClient } from '../store/db';
import type { BlobStore } from '../store/blobs';
import * as jobsRepo from '../store/jobs';
import type { JobContext } from './context';
import { PROCESSORS } from './processors';
import { JOB_TYPES, JobQueues, queueName, type JobDataMap, type JobType } from './queues';
import { reconcileJobs } from './reconcile';
import { PinScope } from './pinned-cache';

export interface WorkerDeps {
  readonly config: Config;
  readonly db: PrismaClient;
  readonly blobs: BlobStore;
  /** A blocking connection (maxRetriesPerRequest: null), owned by the caller. */
  readonly connection: IORedis;
  readonly log?: (obj: Record<string, unknown>, msg: string) => void;
}

export interface RunningWorkers {
  readonly id: string;
  close(): Promise<void>;
}

export function startWorkers(deps: WorkerDeps, types: readonly JobType[] = JOB_TYPES): RunningWorkers {
  const id = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const log = deps.log ?? (() => undefined);
  const workers: Worker[] = [];
  const outage = new OutageLog(log);
  for (const type of types) {
    const worker = new Worker(queueName(type), (job: Job, token?: string) => runJobThroughOutages(deps, outage, id, type, job, token), {
      connection: deps.connection,
      prefix: deps.config.queuePrefix,
      concurrency: deps.config.workerConcurrency,
      lockDuration: deps.config.jobLockMs,
      stalledInterval: deps.config.jobLockMs,
      // A job survives several crashed workers before it is failed as "stalled too often".
      maxStalledCount: 5,
    });
    worker.on('error', (err) => log({ err: err.message, type }, 'worker error'));
    worker.on('failed', (job, err) => log({ jobId: job?.id, type, err: err.message }, 'job failed'));
    worker.on('completed', (job) => log({ jobId: job.id, type }, 'job completed'));
    workers.push(worker);
  }
  const reconciler = deps.config.reconcileIntervalMs > 0 ? startReconciler(deps, log) : { stop: async () => undefined };
  return {
    id,
    // Graceful: waits for the current jobs to finish, so no job is left half-done.
    close: async () => {
      await reconciler.stop();
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}

/** How often a worker sweeps what killed uploads left in the blob store, and how old that must be. */
const SWEEP_EVERY_MS = 3600_000;
const UNFINISHED_UPLOAD_AGE_MS = 24 * 3600_000;

/**
 * Reconciles job rows with the queue at start, after every reconnect and then periodically; and
 * hourly removes what uploads killed a day or more ago left in the blob store.
 */
function startReconciler(deps: WorkerDeps, log: (obj: Record<string, unknown>, msg: string) => void): { stop(): Promise<void> } {
  const queues = new JobQueues(deps.config, deps.connection);
  let running: Promise<void> | undefined;
  let sweptAt = 0;
  const sweep = async (): Promise<void> => {
    if (Date.now() - sweptAt < SWEEP_EVERY_MS) return;
    sweptAt = Date.now();
    const removed = await deps.blobs.sweepUnfinished(new Date(Date.now() - UNFINISHED_UPLOAD_AGE_MS));
    if (removed > 0) log({ removed }, 'unfinished uploads swept from the blob store');
  };
  const run = (): void => {
    if (running) return;
    running = reconcileJobs(deps.db, queues, { graceMs: deps.config.reconcileGraceMs, lockMs: deps.config.jobLockMs })
      .then(async (r) => {
        if (r.requeued.length > 0 || r.failed.length > 0) log({ requeued: r.requeued, failed: r.failed }, 'job rows reconciled with the queue');
        await sweep();
      })
      // An outage of either store: the next round tries again.
      .catch((err: unknown) => log({ err: err instanceof Error ? err.message : String(err) }, 'job reconciliation skipped'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, deps.config.reconcileIntervalMs);
  timer.unref();
  deps.connection.on('ready', run);
  run();
  return {
    stop: async () => {
      clearInterval(timer);
      deps.connection.off('ready', run);
      await running;
      await queues.close();
    },
  };
}

/** How long a job waits before it runs again after PostgreSQL or Redis was unreachable. */
const OUTAGE_RETRY_MS = 5000;

/**
 * During an outage every job the worker fetches fails the same way and waits again: one log line
 * when it starts and one when a job gets through again, not one per job and retry.
 */
class OutageLog {
  private since: number | undefined;

  constructor(private readonly log: (obj: Record<string, unknown>, msg: string) => void) {}

  waiting(jobId: string, detail: string): void {
    if (this.since !== undefined) return;
    this.since = Date.now();
    this.log({ jobId, err: detail }, 'backing service unreachable: jobs wait for it without spending attempts');
  }

  through(): void {
    if (this.since === undefined) return;
    this.log({ outageMs: Date.now() - this.since }, 'backing services answer again');
    this.since = undefined;
  }
}

/**
 * An outage of PostgreSQL or Redis is not the job's fault: instead of spending one of its
 * attempts (a few seconds of backoff would exhaust them), the job goes back to the delayed set
 * without counting an attempt and runs again once the outage is over. A job older than
 * JOB_TIMEOUT_MS takes the normal path, so an error that only looks like an outage cannot keep a
 * job waiting forever.
 */
async function runJobThroughOutages(
  deps: WorkerDeps,
  outage: OutageLog,
  workerId: string,
  type: JobType,
  job: Job,
  token: string | undefined,
): Promise<unknown> {
  const lease = jobsRepo.newLease(job.id as string);
  try {
    const result = await runJob(deps, lease, workerId, type, job);
    outage.through();
    return result;
  } catch (err) {
    if (err instanceof jobsRepo.LeaseLostError) {
      // Another run holds the job now (this one's lock lapsed); it records the outcome. Nothing
      // is recorded here, and BullMQ refuses this run's stale lock whatever it is told.
      deps.log?.({ jobId: job.id, type }, 'job taken over by another run: this run stops without recording');
      return undefined;
    }
    if (err instanceof NoRowError) return leaveAlone(deps, job, token, err);
    if (!token || err instanceof UnrecoverableError || !isServiceUnavailable(err)) throw err;
    if (Date.now() - job.timestamp > deps.config.jobTimeoutMs) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    outage.waiting(job.id as string, detail);
    await jobsRepo.markWaiting(deps.db, lease, { title: 'Waiting for a backing service', detail }).catch(() => undefined);
    await job.moveToDelayed(Date.now() + OUTAGE_RETRY_MS, token);
    throw new DelayedError();
  }
}

/**
 * A job whose row is not in this worker's database most likely belongs to another deployment that
 * shares the Redis and the queue prefix (issue 10): failing it would fail the owner's request. It
 * goes back to the delayed set without spending an attempt, for a worker of its own deployment to
 * take; the wait grows with the job's age (1 s to 1 min). A job nobody owns (its row was deleted,
 * or its deployment is gone) would then circle for ever: once older than JOB_TIMEOUT_MS — by when
 * its owner would have failed it as timed out anyway — it fails for good (BullMQ keeps it, failed,
 * as removeOnFail says; an owner that still has an unfinished row marks it failed on reconciling).
 */
async function leaveAlone(deps: WorkerDeps, job: Job, token: string | undefined, err: NoRowError): Promise<never> {
  const age = Date.now() - job.timestamp;
  if (!token || age > deps.config.jobTimeoutMs) {
    deps.log?.({ jobId: job.id, ageMs: age }, 'job has no row in this database and is older than JOB_TIMEOUT_MS: failed');
    throw new UnrecoverableError(`${err.message} (another deployment's job, or its row was deleted) for longer than JOB_TIMEOUT_MS`);
  }
  const delay = Math.min(60_000, Math.max(1000, Math.round(age / 10)));
  deps.log?.({ jobId: job.id, queue: job.queueName, ageMs: age, retryInMs: delay }, 'job has no row in this database: left alone');
  await job.moveToDelayed(Date.now() + delay, token);
  throw new DelayedError();
}

async function runJob(deps: WorkerDeps, lease: jobsRepo.JobLease, workerId: string, type: JobType, job: Job): Promise<unknown> {
  const jobId = job.id as string;
  const attempt = job.attemptsMade + 1;
  if (!(await jobsRepo.markActive(deps.db, lease, workerId, attempt))) {
    const current = await jobsRepo.getJob(deps.db, jobId);
    if (current?.cancelRequested && current.state !== 'cancelled') await jobsRepo.markCancelled(deps.db, jobId);
    if (!current) throw new NoRowError(jobId);
    throw new UnrecoverableError(`job is ${current.state}`);
  }

  const started = Date.now();
  const pins = new PinScope();
  // Independent of progress reports, which can be minutes apart; the reconciler reads it.
  const beat = setInterval(() => void jobsRepo.heartbeat(deps.db, lease).catch(() => undefined), Math.max(500, deps.config.jobLockMs / 2));
  beat.unref();
  const ctx: JobContext<JobType> = {
    jobId,
    pins,
    data: job.data as JobDataMap[JobType],
    db: deps.db,
    blobs: deps.blobs,
    config: deps.config,
    // Also where a run that lost its lease finds out and stops (the row first, then BullMQ's copy).
    progress: async (percent, stage) => {
      const cancelled = await jobsRepo.writeProgress(deps.db, lease, percent, stage);
      await job.updateProgress({ percent, stage });
      if (cancelled) throw new JobCancelledError(jobId);
      if (Date.now() - started > deps.config.jobTimeoutMs) throw new JobTimeoutError(deps.config.jobTimeoutMs);
      if (deps.config.jobTestDelayMs > 0) await sleep(deps.config.jobTestDelayMs);
    },
    record: (write) => jobsRepo.recordUnderLease(deps.db, lease, write),
  };

  try {
    const processor = PROCESSORS[type] as (c: JobContext<JobType>) => Promise<unknown>;
    const result = await processor(ctx);
    await jobsRepo.markCompleted(deps.db, lease, result as never);
    return result;
  } catch (err) {
    if (err instanceof jobsRepo.LeaseLostError) throw err;
    if (err instanceof JobCancelledError) {
      await jobsRepo.markRunCancelled(deps.db, lease);
      throw new UnrecoverableError(err.message);
    }
    // Recorded by runJobThroughOutages (the database may be the thing that is down).
    if (isServiceUnavailable(err)) throw err;
    const unrecoverable = isFinal(err) || err instanceof UnrecoverableError;
    const willRetry = !unrecoverable && attempt < (job.opts.attempts ?? 1);
    const info = jobErrorInfo(err);
    await jobsRepo.markFailed(deps.db, lease, info, willRetry);
    throw unrecoverable ? new UnrecoverableError(info.detail) : err;
  } finally {
    clearInterval(beat);
    pins.release();
  }
}
