/** Wires a worker to its stores: its own blocking Redis connection, PrismaClient and blob store. */
import type { Logger } from 'pino';
import type { Config } from './config/env';
import type { TfjsRuntime } from './config/tfjs-runtime';
import { createDb } from './store/db';
import { FsBlobStore } from './store/blobs';
import { createRedis } from './jobs/queues';
import { startWorkers } from './jobs/worker';

export interface WorkerHandle {
  readonly id: string;
  close(): Promise<void>;
}

export async function startWorkerProcess(config: Config, runtime: Promise<TfjsRuntime>, log: Logger): Promise<WorkerHandle> {
  await runtime;
  const connection = createRedis(config.redisUrl, true);
  const db = createDb(config.databaseUrl);
  const running = startWorkers({
    config,
    db,
    blobs: new FsBlobStore(config.blobDir),
    connection,
    log: (obj, msg) => log.info(obj, msg),
  });
  log.info({ workerId: running.id, concurrency: config.workerConcurrency }, 'worker started');
  return {
    id: running.id,
    close: async () => {
      await running.close();
      connection.disconnect();
      await db.$disconnect();
    },
  };
}
