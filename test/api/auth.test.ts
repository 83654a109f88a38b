/** API keys: 401 without one, another key's resources are 404, CLI-made keys work, rate limit 429. */
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { KMNIST_DIR } from '../support/fixtures';
import { createApiKey } from '../../src/store/api-keys';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';

describe('access control with API_KEYS', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ API_KEYS: `${KEY_A},${KEY_B}` });
  });
  afterAll(async () => {
    // Stored keys would switch on authentication for every later test app on this database.
    await t.deps.db.apiKey.deleteMany();
    await t.close();
  });

  const as = (key: string) => ({ Authorization: `Bearer ${key}` });

  it('no key (or a wrong one) is 401 problem+json on every route but /health, /ready and /docs', async () => {
    for (const [method, url] of [
      ['get', '/models'],
      ['get', '/datasets'],
      ['post', '/evaluations'],
      ['get', '/jobs/x'],
      ['get', '/metrics'],
      ['get', '/decompositions/x'],
      ['post', '/compositions'],
    ] as const) {
      const res = await request(t.app.server)[method](url);
      expect([url, res.status]).toEqual([url, 401]);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect((await request(t.app.server).get('/models').set(as('not-a-key-at-all-xx'))).status).toBe(401);
    await request(t.app.server).get('/health').expect(200);
    await request(t.app.server).get('/ready').expect(200);
    await request(t.app.server).get('/docs/json').expect(200);
  });

  it("key B cannot read or use key A's resources (404); key A can", async () => {
    const up = await request(t.app.server).post('/models').set(as(KEY_A)).attach('file', path.join(KMNIST_DIR, 'kmnist.h5')).expect(202);
    await request(t.app.server).get(`/models/${up.body.id}`).set(as(KEY_A)).expect(200);
    await request(t.app.server).get(`/models/${up.body.id}`).set(as(KEY_B)).expect(404);
    await request(t.app.server).get(`/jobs/${up.body.jobId}`).set(as(KEY_B)).expect(404);
    await request(t.app.server).delete(`/models/${up.body.id}`).set(as(KEY_B)).expect(404);
    const listB = await request(t.app.server).get('/models').set(as(KEY_B)).expect(200);
    expect(listB.body.items.map((m: { id: string }) => m.id)).not.toContain(up.body.id);
    const listA = await request(t.app.server).get('/models').set(as(KEY_A)).expect(200);
    expect(listA.body.items.map((m: { id: string }) => m.id)).toContain(up.body.id);
    const ev = await request(t.app.server).post('/evaluations').set(as(KEY_B)).send({ modelId: up.body.id, datasetId: 'x' }).expect(404);
    expect(ev.body.detail).toMatch(/model/);
  });

  it('a key made with the CLI (stored as a hash) works', async () => {
    const { key } = await createApiKey(t.deps.db, 'test');
    const row = await t.deps.db.apiKey.findFirstOrThrow({ where: { name: 'test' } });
    expect(row.hash).not.toContain(key);
    await request(t.app.server).get('/models').set(as(key)).expect(200);
  });
});

describe('rate limiting per key', () => {
  it('answers 429 problem+json past RATE_LIMIT_PER_MINUTE', async () => {
    const t = await buildTestApp({ API_KEYS: KEY_A, RATE_LIMIT_PER_MINUTE: '5' });
    try {
      for (let i = 0; i < 5; i++) await request(t.app.server).get('/datasets').set('Authorization', `Bearer ${KEY_A}`).expect(200);
      const res = await request(t.app.server).get('/datasets').set('Authorization', `Bearer ${KEY_A}`).expect(429);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.detail).toMatch(/rate limit/);
      await request(t.app.server).get('/health').expect(200);
    } finally {
      await t.close();
    }
  });
});
