/**
 * Renders the OpenAPI document from the route schemas, exactly as the server serves it at
 * /docs/json. Builds the app against unreachable services: rendering needs no connection.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

/** Where `npm run openapi` writes the client types the generated-client test compiles against. */
export const CLIENT_TYPES = path.resolve(__dirname, '..', 'test', 'client', 'openapi.ts');

/** TypeScript types of the document at `yamlFile`, as openapi-typescript (the CLI clients use) writes them. */
export function renderClientTypes(yamlFile: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openapi-types-'));
  try {
    const out = path.join(dir, 'openapi.ts');
    const cli = path.resolve(__dirname, '..', 'node_modules', '.bin', 'openapi-typescript');
    execFileSync(cli, [yamlFile, '-o', out], { stdio: 'pipe' });
    return fs.readFileSync(out, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
