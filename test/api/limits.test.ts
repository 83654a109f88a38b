/** Resource limits: model parameters, dataset size and job time, each with a clear error and nothing kept. */
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { KMNIST_DIR } from '../support/fixtures';
import { idxFiles } from '../support/datasets';
import { snapshot } from '../support/store-audit';
import { startTestWorkers } from '../support/workers';

async function withApp(env: Record<string, string>, fn: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await buildTestApp({ IMPORT_WAIT_MS: '60000', ...env });
  const workers = await startTestWorkers(t);
  try {
    await fn(t);
  } finally {
    await workers.close();
    await t.close();
  }
}

// Unique bytes: the test database is shared, and a blob another row refers to is rightly kept.
const kmnist = () => Buffer.concat([require('node:fs').readFileSync(path.join(KMNIST_DIR, 'kmnist.h5')), Buffer.from(String(Math.random()))]);

describe('resource limits', () => {
  it('MAX_MODEL_PARAMS: a bigger model is 422 naming both figures, nothing kept', () =>
    withApp({ MAX_MODEL_PARAMS: '1000' }, async (t) => {
      const before = await snapshot(t);
      const res = await request(t.app.server).post('/models').attach('file', kmnist(), 'k.h5').expect(422);
      expect(res.body.detail).toMatch(/38965 parameters.*at most 1000 \(MAX_MODEL_PARAMS\)/);
      expect(await snapshot(t)).toEqual(before);
    }));

  it('MAX_DATASET_BYTES: a bigger dataset is 413, nothing kept', () =>
    withApp({ MAX_DATASET_BYTES: '2000' }, async (t) => {
      const before = await snapshot(t);
      const files = idxFiles(new Uint8Array(28 * 28 * 4), [0, 1, 2, 3], 28, 28);
      const res = await request(t.app.server).post('/datasets').attach('file', files.images, 'i.idx').attach('file', files.labels, 'l.idx');
      expect(res.status).toBe(413);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(await snapshot(t)).toEqual(before);
    }));

  it('JOB_TIMEOUT_MS: a job past it fails once with a clear error, and an import keeps nothing', () =>
    withApp({ JOB_TIMEOUT_MS: '1000', JOB_TEST_DELAY_MS: '700' }, async (t) => {
      const before = await snapshot(t);
      const res = await request(t.app.server).post('/models').attach('file', kmnist(), 'k.h5').expect(422);
      expect(res.body.detail).toMatch(/longer than 1000 ms \(JOB_TIMEOUT_MS\)/);
      expect(await snapshot(t)).toEqual(before);
    }));
});
