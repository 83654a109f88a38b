/**
 * The first real job end to end: upload a model over HTTP, a worker in a separate process inspects
 * it, and GET /jobs/:id shows queued -> active (with progress) -> completed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { SHARED } from '../support/test-env';
import { spawnWorker, type ChildWorker } from '../support/worker-process';
import { waitFor } from '../support/wait';
import { untilFinished } from '../support/finished';

const KMNIST = path.join(SHARED, 'fixtures', 'fse-kmnist1', 'kmnist.h5');
const RESNET_KERAS = path.join(SHARED, 'fixtures', 'resnet20-cifar10', 'model.keras');

describe('model upload -> inspect-model job in a worker process', () => {
  let t: TestApp;
  const workers: ChildWorker[] = [];

  beforeEach(async () => {
    // Each progress report pauses 400 ms in the worker so every state can be observed.
    t = await buildTestApp({ JOB_TEST_DELAY_MS: '400' });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill('SIGKILL')));
    await t.close();
  });

  it('goes queued -> active -> completed with progress, and records format, size and checksum', async () => {
    const up = await request(t.app.server)
      .post('/models')
      .field('name', 'kmnist')
      .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
      .attach('file', KMNIST)
      .expect(202);
    expect(up.headers.location).toBe(`/models/${up.body.id}`);
    expect(up.body).toMatchObject({ name: 'kmnist', format: 'h5', status: 'pending', preprocessing: { scale: 1 / 65025 } });
    const jobId: string = up.body.jobId;

    const queued = await request(t.app.server).get(`/jobs/${jobId}`).expect(200);
    expect(queued.body).toMatchObject({ id: jobId, type: 'inspect-model', state: 'queued', progress: 0 });

    workers.push(spawnWorker(t.env));
    const seen: { state: string; progress: number; stage?: string }[] = [];
    const done = await untilFinished(t.app.server, `/jobs/${jobId}`, {
      timeoutMs: 60_000,
      everyMs: 40,
      onPoll: (body) => void seen.push({ state: body.state, progress: body.progress, stage: body.stage }),
    });

    expect(done.state).toBe('completed');
    expect(done.progress).toBe(100);
    const active = seen.filter((s) => s.state === 'active');
    expect(active.length).toBeGreaterThan(0);
    expect(active.some((s) => s.progress > 0 && s.progress < 100 && s.stage)).toBe(true);
    // Progress never goes backwards.
    const progress = seen.map((s) => s.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(done.startedAt).toBeDefined();
    expect(done.finishedAt).toBeDefined();

    const sha256 = createHash('sha256').update(fs.readFileSync(KMNIST)).digest('hex');
    expect(done.result).toEqual({
      modelId: up.body.id,
      format: 'h5',
      sizeBytes: fs.statSync(KMNIST).size,
      sha256,
      inputShape: [28, 28, 1],
      numClasses: 10,
      params: 784 * 49 + 49 + 49 * 10 + 10,
    });
    const model = await request(t.app.server).get(`/models/${up.body.id}`).expect(200);
    expect(model.body).toMatchObject({ status: 'ready', format: 'h5', sha256, sizeBytes: fs.statSync(KMNIST).size, numClasses: 10 });
    expect(model.body.layers.map((l: { type: string }) => l.type)).toEqual(['Flatten', 'Dense', 'Dense']);
  });

  it('tells a Keras 3 .keras zip from its entries', async () => {
    const up = await request(t.app.server).post('/models').attach('file', RESNET_KERAS).expect(202);
    expect(up.body.format).toBe('zip');
    workers.push(spawnWorker({ ...t.env, JOB_TEST_DELAY_MS: '0' }));
    const done = await waitFor(async () => {
      const r = await request(t.app.server).get(`/jobs/${up.body.jobId}`);
      return r.body.state === 'completed' || r.body.state === 'failed' ? r.body : undefined;
    }, 'the job to finish');
    expect(done.state).toBe('completed');
    expect(done.result.format).toBe('keras');
    const model = await request(t.app.server).get(`/models/${up.body.id}`).expect(200);
    expect(model.body.format).toBe('keras');
  });

  it('a job on a killed worker is picked up by another worker and completes once', async () => {
    // A short lock so the killed worker's job is taken over quickly.
    const slow = { ...t.env, JOB_TEST_DELAY_MS: '1500', JOB_LOCK_MS: '2000' };
    const a = spawnWorker(slow);
    workers.push(a);
    const up = await request(t.app.server).post('/models').attach('file', KMNIST).expect(202);
    const jobId: string = up.body.jobId;

    const claimed = await waitFor(async () => {
      const row = await t.deps.db.job.findUnique({ where: { id: jobId } });
      return row?.state === 'active' ? row : undefined;
    }, 'worker A to take the job');
    expect(claimed.workerId).toContain(`:${a.proc.pid}:`);
    await a.kill('SIGKILL');
    expect(a.proc.signalCode).toBe('SIGKILL');

    const b = spawnWorker(slow);
    workers.push(b);
    const done = await waitFor(
      async () => {
        const row = await t.deps.db.job.findUnique({ where: { id: jobId } });
        return row && ['completed', 'failed'].includes(row.state) ? row : undefined;
      },
      'worker B to finish the job',
      90_000,
    );
    expect(done.state).toBe('completed');
    expect(done.workerId).toContain(`:${b.proc.pid}:`);
    expect(await t.deps.db.job.count({ where: { resourceId: up.body.id } })).toBe(1);
    const model = await t.deps.db.model.findUniqueOrThrow({ where: { id: up.body.id } });
    expect(model.status).toBe('ready');
  });
});
