/** Everything the HTTP layer talks to, built from the configuration and closed together. */
import type IORedis from 'ioredis';
import type { Config } from '../config/env';
import type { TfjsRuntime } from '../config/tfjs-runtime';
import { createDb, type PrismaClient } from '../store/db';
import { FsBlobStore, type BlobStore } from '../store/blobs';
import { createRedis, JobQueues } from '../jobs/queues';

export interface AppDeps {
  readonly config: Config;
  readonly db: PrismaClient;
  readonly blobs: BlobStore;
  readonly queues: JobQueues;
  /** Fail-fast connection (no offline queue) used by the queues and the readiness check. */
  readonly redis: IORedis;
  /** The TF.js runtime of this process, when it loaded one. */
  readonly runtime?: Promise<TfjsRuntime>;
}

export function createAppDeps(config: Config, runtime?: Promise<TfjsRuntime>): AppDeps {
  const redis = createRedis(config.redisUrl, false);
  return {
    config,
    db: createDb(config.databaseUrl),
    blobs: new FsBlobStore(config.blobDir),
    queues: new JobQueues(config, redis),
    redis,
    runtime,
  };
}

export async function closeAppDeps(deps: AppDeps): Promise<void> {
  await deps.queues.close().catch(() => undefined);
  deps.redis.disconnect();
  await deps.db.$disconnect().catch(() => undefined);
}
