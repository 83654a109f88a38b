/** An in-process worker on the test app's queues (for tests that are about results, not processes). */
import { initTfjsRuntime } from '../../src/config/tfjs-runtime';
import { createRedis } from '../../src/jobs/queues';
import { startWorkers } from '../../src/jobs/worker';
import { FsBlobStore } from '../../src/store/blobs';
import { buildTestApp, type TestApp } from './app';
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

/**
 * The real app with an in-process worker for the tests of the enclosing describe block: built in
 * a beforeAll (declared first, so the block's own beforeAll can use it) and closed in an afterAll.
 * The returned object is filled in when the beforeAll has run.
 */
export function appWithWorkers(overrides: Record<string, string> = {}): TestApp {
  const holder = {} as TestApp;
  let workers: { close(): Promise<void> } | undefined;
  beforeAll(async () => {
    Object.assign(holder, await buildTestApp(overrides));
    workers = await startTestWorkers(holder);
  });
  afterAll(async () => {
    // The app closes even when the workers' close fails: a listener left open keeps jest alive.
    try {
      await workers?.close();
    } finally {
      await holder.close?.();
    }
  });
  return holder;
}
