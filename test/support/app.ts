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
  // Only unexpected errors (500s) log at this level: when one happens, its stack shows in the test output.
  const app = await buildApp(deps, { logger: { level: 'error' } });
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
