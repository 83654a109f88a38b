/** /health, /ready (503 when Redis is unreachable), /metrics, /docs and the openapi.yaml check. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import SwaggerParser from '@apidevtools/swagger-parser';
import YAML from 'yaml';
import { buildTestApp, type TestApp } from '../support/app';
import { REPO_ROOT, SHARED } from '../support/test-env';
import { CLIENT_TYPES, renderClientTypes, renderOpenApiYaml } from '../../scripts/openapi-document';

describe('operations routes against live services', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it('/health and /ready answer 200 when PostgreSQL and Redis are up', async () => {
    await request(t.app.server).get('/health').expect(200, { status: 'ok' });
    const ready = await request(t.app.server).get('/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'ready', checks: { postgres: 'up', redis: 'up' } });
  });

  it('/metrics is Prometheus text with queue depths and job counts', async () => {
    await request(t.app.server)
      .post('/models')
      .attach('file', path.join(SHARED, 'fixtures', 'fse-kmnist1', 'kmnist.h5'))
      .expect(202);
    const res = await request(t.app.server).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^queue_jobs\{queue="inspect-model",state="waiting"\} [1-9]/m);
    expect(res.text).toMatch(/^jobs\{type="inspect-model",state="queued"\} [1-9]/m);
    expect(res.text).toMatch(/^http_requests_total\{/m);
    expect(res.text).toMatch(/^db_pool_clients\{state="idle"\} [1-9]/m);
    expect(res.text).toMatch(/^db_pool_clients\{state="waiting"\} 0$/m);
    expect(res.text).toMatch(/^process_resident_memory_bytes /m);
  });

  it('serves Swagger UI at /docs and the OpenAPI document at /docs/json', async () => {
    const ui = await request(t.app.server).get('/docs/').expect(200);
    expect(ui.text).toMatch(/swagger/i);
    const doc = await request(t.app.server).get('/docs/json').expect(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/models', '/models/{id}', '/jobs/{id}', '/health', '/ready', '/metrics']));
    // A standard validator finds nothing wrong with the served document (it dereferences in place: a copy).
    await expect(SwaggerParser.validate(structuredClone(doc.body))).resolves.toBeDefined();
  });
});

describe('/ready with Redis unreachable', () => {
  it('answers 503 problem+json naming redis, and POST /models is 503 with nothing stored', async () => {
    const t = await buildTestApp({ REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const res = await request(t.app.server).get('/ready').expect(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 503, checks: { postgres: 'up', redis: 'down' } });
      expect(res.body.detail).toMatch(/redis/);

      const models = await t.deps.db.model.count();
      // Unique bytes: blobs are content-addressed and the test database is shared by the run.
      const unique = Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(4096)]);
      const up = await request(t.app.server).post('/models').attach('file', unique, 'unique.h5');
      expect(up.status).toBe(503);
      expect(up.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(await t.deps.db.model.count()).toBe(models);
      const keys = [];
      for await (const k of t.deps.blobs.keys()) keys.push(k);
      expect(keys).toEqual([]);
      await request(t.app.server).get('/health').expect(200);
    } finally {
      await t.close();
    }
  });

  it('answers 503 when PostgreSQL is unreachable', async () => {
    const t = await buildTestApp({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/nope' });
    try {
      const res = await request(t.app.server).get('/ready').expect(503);
      expect(res.body.checks).toEqual({ postgres: 'down', redis: 'up' });
      const list = await request(t.app.server).get('/models');
      expect(list.status).toBe(503);
    } finally {
      await t.close();
    }
  });
});

describe('openapi.yaml', () => {
  it('is what the route schemas generate (run `npm run openapi` after changing routes)', async () => {
    const committed = fs.readFileSync(path.join(REPO_ROOT, 'openapi.yaml'), 'utf8');
    expect(committed).toBe(await renderOpenApiYaml());
  });

  it('has the client types generated from it (test/client/openapi.ts; `npm run openapi` writes both)', () => {
    expect(fs.readFileSync(CLIENT_TYPES, 'utf8')).toBe(renderClientTypes(path.join(REPO_ROOT, 'openapi.yaml')));
  });

  it('passes a standard validator (@apidevtools/swagger-parser) with 0 errors', async () => {
    const file = path.join(REPO_ROOT, 'openapi.yaml');
    const errors = await SwaggerParser.validate(file).then(
      () => [],
      (err: { message: string; details?: unknown[] }) => err.details ?? [err.message],
    );
    expect(errors).toEqual([]);
    // OpenAPI 3.1: its schemas are JSON Schema 2020-12, as TypeBox writes them (numeric exclusiveMinimum).
    expect(YAML.parse(fs.readFileSync(file, 'utf8')).openapi).toBe('3.1.0');
  });

  it('is a valid OpenAPI 3 document whose $refs all resolve', () => {
    const doc = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'openapi.yaml'), 'utf8'));
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('cnn-modules');
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const target = ref.slice(8, -1);
      expect(target).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[target.split('/').pop()!]).toBeDefined();
    }
    for (const [p, ops] of Object.entries<Record<string, { responses: Record<string, unknown> }>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses ?? {}).length).toBeGreaterThan(0);
        if (p !== '/health' && p !== '/metrics' && !p.startsWith('/docs')) {
          expect([method, p, Object.keys(op.responses).some((s) => s.startsWith('4') || s.startsWith('5'))]).toEqual([method, p, true]);
        }
      }
    }
  });
});
