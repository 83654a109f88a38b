/** Everything the HTTP layer talks to, built from the configuration and closed together. */
import type IORedis from 'ioredis';
import type { Config } from '../config/env';
import type { TfjsRuntime } from '../config/tfjs-runtime';
import { createDb, type PrismaClient } from '../store/db';
import type { BlobStore } from '../store/blobs';
import { createBlobStore } from '../store/blob-stores';
import { createRedis, JobQueues } from '../jobs/queues';
import { JobWatch } from './services/job-watch';

export interface AppDeps {
  readonly config: Config;
  readonly db: PrismaClient;
  readonly blobs: BlobStore;
  readonly queues: JobQueues;
  /** Fail-fast connection (no offline queue) used by the queues and the readiness check. */
  readonly redis: IORedis;
  /** The TF.js runtime of this process, when it loaded one. */
  readonly runtime?: Promise<TfjsRuntime>;
  /** Pushed job row changes (one LISTEN connection, opened on the first watcher). */
  readonly jobWatch: JobWatch;
}

export function createAppDeps(config: Config, runtime?: Promise<TfjsRuntime>): AppDeps {
  const redis = createRedis(config.redisUrl, false);
  const db = createDb(config.databaseUrl);
  return {
    config,
    db,
    blobs: createBlobStore(config),
    queues: new JobQueues(config, redis),
    redis,
    runtime,
    jobWatch: new JobWatch(db, config.databaseUrl),
  };
}

export async function closeAppDeps(deps: AppDeps): Promise<void> {
  await deps.jobWatch.close();
  await deps.queues.close().catch(() => undefined);
  deps.redis.disconnect();
  await deps.db.$disconnect().catch(() => undefined);
  deps.blobs.close();
}
