/**
 * The API <-> worker contract: one BullMQ queue per job type, the data each type carries (ids
 * and options only; everything large is in PostgreSQL and the blob store) and enqueue helpers.
 */
import { Queue, type JobsOptions } from 'bullmq';
import IORedis, { type RedisOptions } from 'ioredis';
import type { Config } from '../config/env';
import { ServiceUnavailableError } from '../errors';

const REDIS_CALL_TIMEOUT_MS = 5000;

export interface JobDataMap {
  'inspect-model': { modelId: string };
  evaluate: { evaluationId: string };
  decompose: { decompositionId: string };
  compose: { compositionId: string };
  'export-module': { moduleId: string };
  /** Inputs: raw pixels (float32 LE, HWC each, concatenated) in a blob, one entry per input. */
  predict: { compositionId: string; inputBlob: string; items: { height: number; width: number; channels: number }[] };
}

export type JobType = keyof JobDataMap;

/** Options a decompose job runs with when the request leaves them out (recorded with the job). */
export { DEFAULT_COMPACT_OPTIONS, DEFAULT_DECOMPOSE_OPTIONS } from '../engine/defaults';
export const JOB_TYPES: readonly JobType[] = ['inspect-model', 'evaluate', 'decompose', 'compose', 'export-module', 'predict'];

export function queueName(type: JobType): string {
  return type;
}

/**
 * A Redis connection. `blocking` ones (workers) wait out outages; the others fail fast so the API
 * can answer 503 instead of hanging while Redis is down.
 */
export function createRedis(url: string, blocking: boolean): IORedis {
  const options: RedisOptions = blocking ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 };
  const redis = new IORedis(url, {
    ...options,
    retryStrategy: (times) => Math.min(200 * times, 2000),
    lazyConnect: false,
  });
  // Errors surface through the calls that fail; without a listener ioredis logs each retry.
  redis.on('error', () => undefined);
  return redis;
}

/** Waits up to `timeoutMs` for the connection to be ready (a fresh process is still connecting). */
export function redisReady(redis: IORedis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  if (redis.status === 'end') return Promise.resolve(false);
  return new Promise((resolve) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    redis.once('ready', onReady);
  });
}

export class JobQueues {
  private readonly queues = new Map<JobType, Queue>();

  constructor(
    private readonly config: Config,
    readonly connection: IORedis,
  ) {
    for (const type of JOB_TYPES) {
      const queue = new Queue(queueName(type), { connection, prefix: config.queuePrefix });
      queue.on('error', () => undefined);
      this.queues.set(type, queue);
    }
  }

  /**
   * BullMQ waits for a connection instead of failing, so a call made while Redis is down would
   * hang the request. Fail at once when the connection is not ready, and bound every call.
   */
  private async guarded<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (!(await redisReady(this.connection, 1000))) {
      throw new ServiceUnavailableError(`Redis is unreachable (${this.connection.status}); cannot ${what}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ServiceUnavailableError(`Redis did not answer within ${REDIS_CALL_TIMEOUT_MS} ms; cannot ${what}`)),
        REDIS_CALL_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([call(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  queue(type: JobType): Queue {
    const q = this.queues.get(type);
    if (!q) throw new Error(`no queue for job type ${type}`);
    return q;
  }

  /** Adds a job whose id is the job row's id, so a duplicate enqueue collapses into one. */
  async enqueue<T extends JobType>(type: T, jobId: string, data: JobDataMap[T]): Promise<void> {
    const options: JobsOptions = {
      jobId,
      attempts: this.config.jobAttempts,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    };
    await this.guarded('enqueue the job', () => this.queue(type).add(type, data, options));
  }

  /** Where BullMQ has a job, or 'missing' when Redis no longer holds it. */
  async state(type: JobType, jobId: string): Promise<'missing' | { name: string; reason?: string }> {
    return this.guarded('read the job', async () => {
      const job = await this.queue(type).getJob(jobId);
      if (!job) return 'missing';
      return { name: await job.getState(), reason: job.failedReason };
    });
  }

  /** Removes a job that no worker holds; false when it is active (locked) or gone. */
  async removeWaiting(type: JobType, jobId: string): Promise<boolean> {
    return this.guarded('cancel the job', () => this.removeWaitingNow(type, jobId));
  }

  private async removeWaitingNow(type: JobType, jobId: string): Promise<boolean> {
    const job = await this.queue(type).getJob(jobId);
    if (!job) return false;
    const state = await job.getState();
    if (state === 'active') return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  async counts(): Promise<Record<JobType, Record<string, number>>> {
    return this.guarded('count jobs', () => this.countsNow());
  }

  private async countsNow(): Promise<Record<JobType, Record<string, number>>> {
    const out = {} as Record<JobType, Record<string, number>>;
    for (const [type, q] of this.queues) {
      out[type] = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'paused');
    }
    return out;
  }

  async close(): Promise<void> {
    // Queue.close() waits for a connection that may never come; don't let shutdown hang on it.
    const closing = Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    await Promise.race([closing, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
