/** An in-process worker on the test app's queues (for tests that are about results, not processes). */
import { initTfjsRuntime } from '../../src/config/tfjs-runtime';
import { createRedis } from '../../src/jobs/queues';
import { startWorkers } from '../../src/jobs/worker';
import { FsBlobStore } from '../../src/store/blobs';
import type { TestApp } from './app';
import { testConfig } from './test-env';

export async function startTestWorkers(t: TestApp, env: Record<string, string> = {}): Promise<{ close(): Promise<void> }> {
  const config = testConfig({ ...t.env, ...env });
  // As worker-main does: without it TF.js would fall back to its slow pure-JS backend.
  await initTfjsRuntime(config.tfjsBackend);
  const redis = createRedis(config.redisUrl, true);
  const running = startWorkers({ config, db: t.deps.db, blobs: new FsBlobStore(config.blobDir), connection: redis });
  return {
    close: async () => {
      await running.close();
      redis.disconnect();
    },
  };
}
