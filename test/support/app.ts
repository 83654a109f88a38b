/** Builds the real app against the test services and closes everything after the test. */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app';
import { closeAppDeps, createAppDeps, type AppDeps } from '../../src/api/deps';
import { checkResponses } from './response-contract';
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
  // Every response must be what openapi.yaml says; the suite fails at close with the list.
  const violations: string[] = [];
  checkResponses(app, violations);
  await app.ready();
  return {
    app,
    deps,
    env,
    close: async () => {
      await app.close();
      await closeAppDeps(deps);
      if (violations.length) {
        const distinct = [...new Set(violations)];
        throw new Error(`${distinct.length} kinds of responses broke openapi.yaml:\n${distinct.slice(0, 30).join('\n')}`);
      }
    },
  };
}
