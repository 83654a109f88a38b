/** Builds the real app against the test services and closes everything after the test. */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app';
import { closeAppDeps, createAppDeps, type AppDeps } from '../../src/api/deps';
import { testConfig, testEnv } from './test-env';

export interface TestApp {
  readonly app: FastifyInstance;
  readonly deps: AppDeps;
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

export async function buildTestApp(overrides: Record<string, string> = {}): Promise<TestApp> {
  const env = testEnv(overrides);
  const deps = createAppDeps(testConfig(env));
  const app = await buildApp(deps, { logger: process.env.TEST_LOG ? { level: 'error', file: process.env.TEST_LOG } : false });
  await app.ready();
  return {
    app,
    deps,
    env,
    close: async () => {
      await app.close();
      await closeAppDeps(deps);
    },
  };
}
