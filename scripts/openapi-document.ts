/**
 * Renders the OpenAPI document from the route schemas, exactly as the server serves it at
 * /docs/json. Builds the app against unreachable services: rendering needs no connection.
 */
import { buildApp } from '../src/api/app';
import { closeAppDeps, createAppDeps } from '../src/api/deps';
import { loadConfig } from '../src/config/env';

export async function renderOpenApiYaml(): Promise<string> {
  const deps = createAppDeps(
    loadConfig({
      DATABASE_URL: 'postgresql://x:x@127.0.0.1:1/x',
      REDIS_URL: 'redis://127.0.0.1:1',
      LOG_LEVEL: 'silent',
      BLOB_DIR: `${require('node:os').tmpdir()}/cnn-openapi-blobs`,
    }),
  );
  const app = await buildApp(deps, { logger: false });
  try {
    await app.ready();
    return app.swagger({ yaml: true });
  } finally {
    await app.close();
    await closeAppDeps(deps);
  }
}
