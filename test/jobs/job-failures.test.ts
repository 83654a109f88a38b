/**
 * Failure handling with an in-process worker: bad input fails once with a clear error; a
 * transient failure is retried with backoff; a defect (a plain Error) fails once; cancellation of
 * queued and active jobs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { SHARED, testConfig } from '../support/test-env';
import { waitFor } from '../support/wait';
import { untilFinished } from '../support/finished';
import { createRedis } from '../../src/jobs/queues';
import { startWorkers, type RunningWorkers } from '../../src/jobs/worker';
import { FsBlobStore } from '../../src/store/blobs';
import { uploadKmnist } from '../support/kmnist';

function zipWithout(): string {
  // A valid zip that is neither a .keras file nor a TF.js model.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-'));
  fs.writeFileSync(path.join(dir, 'readme.txt'), `not a model ${Math.random()}`);
  require('node:child_process').execFileSync('zip', ['-q', 'x.zip', 'readme.txt'], { cwd: dir });
  return path.join(dir, 'x.zip');
}

function uniqueH5(): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(`${Math.random()}`.repeat(100))]);
}

describe('job failures, retries and cancellation', () => {
  let t: TestApp;
  let workers: RunningWorkers | undefined;
  let redis: ReturnType<typeof createRedis> | undefined;

  beforeEach(async () => {
    t = await buildTestApp({ JOB_ATTEMPTS: '3' });
  });
  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    redis?.disconnect();
    await t.close();
  });

  function start(env: Record<string, string> = {}): void {
    const config = testConfig({ ...t.env, ...env });
    redis = createRedis(config.redisUrl, true);
    workers = startWorkers({ config, db: t.deps.db, blobs: new FsBlobStore(config.blobDir), connection: redis });
  }

  const finished = (jobId: string) => untilFinished(t.app.server, `/jobs/${jobId}`, { timeoutMs: 30_000, everyMs: 50 });

  it('bad input fails once with a clear error and is not retried', async () => {
    const up = await request(t.app.server).post('/models').attach('file', zipWithout()).expect(202);
    start();
    const job = await finished(up.body.jobId);
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error).toMatchObject({ title: 'Unsupported format', status: 415, detail: expect.stringMatching(/no model.json/) });
  });

  it('a transient failure is retried with backoff, then fails after JOB_ATTEMPTS', async () => {
    const up = await request(t.app.server).post('/models').attach('file', uniqueH5(), 'x.h5').expect(202);
    // The blob vanishing is an I/O failure, not bad input: worth retrying.
    await t.deps.blobs.delete(up.body.sha256);
    const t0 = Date.now();
    start();
    const job = await finished(up.body.jobId);
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(3);
    expect(job.error.detail).toMatch(/ENOENT/);
    // Exponential backoff: 1 s then 2 s between the three attempts.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
  });

  it('a retried job that succeeds on a later attempt completes', async () => {
    const bytes = fs.readFileSync(path.join(SHARED, 'fixtures', 'fse-kmnist1', 'kmnist.h5'));
    const up = await request(t.app.server).post('/models').attach('file', bytes, 'x.h5').expect(202);
    await t.deps.blobs.delete(up.body.sha256);
    start();
    await waitFor(async () => {
      const row = await t.deps.db.job.findUnique({ where: { id: up.body.jobId } });
      return row && row.attempts >= 1 && row.state === 'queued' ? row : undefined;
    }, 'the first attempt to fail');
    await t.deps.blobs.putBuffer(bytes);
    const job = await finished(up.body.jobId);
    expect(job.state).toBe('completed');
    expect(job.attempts).toBe(2);
  });

  it('a plain Error (a defect, not a passing fault) fails once as an internal problem, not retried', async () => {
    start();
    const { modelId, datasetId } = await uploadKmnist(t.app.server, 202);
    await waitFor(async () => ((await request(t.app.server).get(`/models/${modelId}`)).body.status === 'ready' ? true : undefined), 'the import');
    // A labels blob shorter than its dataset row says: the evaluation's reader throws a plain Error.
    const ds = await t.deps.db.dataset.findUniqueOrThrow({ where: { id: datasetId } });
    fs.truncateSync(path.join(t.env.BLOB_DIR, 'sha256', ds.labelsBlob.slice(0, 2), ds.labelsBlob), 100);
    const ev = await request(t.app.server).post('/evaluations').send({ modelId, datasetId }).expect(202);
    const job = await finished(ev.body.jobId);
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error).toMatchObject({ status: 500, code: 'INTERNAL', detail: expect.stringMatching(/shorter than its dataset row/) });
    const view = await request(t.app.server).get(`/evaluations/${ev.body.id}`).expect(200);
    expect(view.body).toMatchObject({ status: 'failed', error: { detail: expect.stringMatching(/shorter/) } });
    expect(view.body.result).toBeUndefined();
  });

  it('DELETE /jobs/:id cancels a queued job at once; a second DELETE is 409', async () => {
    const up = await request(t.app.server).post('/models').attach('file', uniqueH5(), 'x.h5').expect(202);
    const res = await request(t.app.server).delete(`/jobs/${up.body.jobId}`).expect(200);
    expect(res.body.state).toBe('cancelled');
    expect(await t.deps.queues.queue('inspect-model').getJob(up.body.jobId)).toBeUndefined();
    const again = await request(t.app.server).delete(`/jobs/${up.body.jobId}`).expect(409);
    expect(again.body.detail).toMatch(/already cancelled/);
    // A worker started later never runs it.
    start();
    await new Promise((r) => setTimeout(r, 500));
    expect((await request(t.app.server).get(`/jobs/${up.body.jobId}`)).body.state).toBe('cancelled');
  });

  it('DELETE /jobs/:id stops an active job at its next progress report', async () => {
    const up = await request(t.app.server).post('/models').attach('file', uniqueH5(), 'x.h5').expect(202);
    start({ JOB_TEST_DELAY_MS: '700' });
    await waitFor(async () => {
      const row = await t.deps.db.job.findUnique({ where: { id: up.body.jobId } });
      return row?.state === 'active' ? row : undefined;
    }, 'the job to become active');
    const res = await request(t.app.server).delete(`/jobs/${up.body.jobId}`).expect(202);
    expect(res.body.cancelRequested).toBe(true);
    const job = await finished(up.body.jobId);
    expect(job.state).toBe('cancelled');
    const model = await t.deps.db.model.findUniqueOrThrow({ where: { id: up.body.id } });
    expect(model.status).toBe('pending');
    // What a user sees: the import's state, not "pending" for ever.
    expect((await request(t.app.server).get(`/models/${up.body.id}`).expect(200)).body.status).toBe('cancelled');
  });
});
