/**
 * Redis stopped and restarted under a stream of requests, with a real worker process: the API
 * answers nothing 5xx but 503 while Redis is away, /ready recovers without a restart, the worker
 * survives, and every job the API accepted completes, whether Redis kept its data (append-only
 * file, as compose runs it) or lost it (the job rows in PostgreSQL are the record and the workers
 * queue missing jobs again).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { uploadKmnist } from '../support/kmnist';
import { startPrivateRedis, type PrivateRedis } from '../support/redis-server';
import { spawnWorker, type ChildWorker } from '../support/worker-process';
import { evaluationStream } from '../support/request-stream';
import { waitFor } from '../support/wait';

describe('Redis outage', () => {
  let redis: PrivateRedis | undefined;
  let t: TestApp | undefined;
  const workers: ChildWorker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill('SIGKILL')));
    await t?.close();
    await redis?.destroy();
    t = undefined;
    redis = undefined;
  });

  async function setUp(persistent: boolean, workerEnv: Record<string, string> = {}) {
    redis = await startPrivateRedis(persistent);
    t = await buildTestApp({ REDIS_URL: redis.url, IMPORT_WAIT_MS: '60000' });
    const env = { ...t.env, ...workerEnv };
    const startWorker = () => {
      const w = spawnWorker(env);
      workers.push(w);
      return w;
    };
    const worker = startWorker();
    return { app: t, redis, worker, startWorker, ...(await uploadKmnist(t.app.server)) };
  }

  async function evaluationsDone(app: TestApp, ids: string[]) {
    return waitFor(
      async () => {
        const evaluations = await app.deps.db.evaluation.findMany({ where: { id: { in: ids } } });
        const jobs = await app.deps.db.job.findMany({ where: { id: { in: evaluations.map((e) => e.jobId ?? '') } } });
        const rows = evaluations.map((e) => ({ ...e, job: jobs.find((j) => j.id === e.jobId) }));
        return rows.length === ids.length && rows.every((r) => r.job && ['completed', 'failed', 'cancelled'].includes(r.job.state)) ? rows : undefined;
      },
      'every accepted evaluation to finish',
      180_000,
      250,
    );
  }

  it('stopped and restarted (append-only file): only 503s, /ready recovers, queued and running jobs complete', async () => {
    // Each progress report pauses, so jobs are still running or queued when Redis goes away.
    const s = await setUp(true, { JOB_TEST_DELAY_MS: '300' });
    const api = request(s.app.app.server);
    const stream = await evaluationStream(api, s.modelId, s.datasetId);
    const { sent, accepted } = stream;

    await sleep(1000);
    await s.redis.stop();
    const down = await waitFor(async () => ((await api.get('/ready')).status === 503 ? true : undefined), '/ready to notice the outage', 10_000, 100);
    expect(down).toBe(true);
    await sleep(3000);
    const duringOutage = sent.length;
    await s.redis.start();
    await waitFor(async () => ((await api.get('/ready')).status === 200 ? true : undefined), '/ready to recover', 30_000, 100);
    await sleep(1500);
    await stream.stop();

    const statuses = sent.map((r) => r.status);
    expect(statuses.filter((c) => c >= 500 && c !== 503)).toEqual([]);
    expect(sent.some((r) => r.what === 'evaluate' && r.status === 503)).toBe(true);
    expect(sent.slice(duringOutage).some((r) => r.what === 'evaluate' && r.status === 202)).toBe(true);
    // A refused request left no row behind: one evaluation row per 202.
    expect(await s.app.deps.db.evaluation.count({ where: { modelId: s.modelId } })).toBe(accepted.length);

    const rows = await evaluationsDone(
      s.app,
      accepted.map((a) => a.id),
    );
    expect(rows.map((r) => r.job?.state)).toEqual(accepted.map(() => 'completed'));
    expect(s.worker.proc.exitCode).toBeNull();
    expect(s.worker.proc.signalCode).toBeNull();
    console.log(
      `Redis outage (AOF): ${sent.length} requests, ${statuses.filter((c) => c === 503).length} answered 503, ` +
        `${accepted.length} evaluations accepted and completed`,
    );
  }, 300_000);

  it('restarted empty (no persistence): workers queue the lost jobs again from their rows and they complete', async () => {
    const s = await setUp(false, { RECONCILE_INTERVAL_MS: '500', RECONCILE_GRACE_MS: '1000' });
    const api = request(s.app.app.server);
    // No worker while the jobs wait, so they are only in Redis's memory when it goes.
    await s.worker.kill('SIGTERM');
    const ids: string[] = [];
    const jobIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await api.post('/evaluations').send({ modelId: s.modelId, datasetId: s.datasetId, limit: 200 }).expect(202);
      ids.push(res.body.id);
      jobIds.push(res.body.jobId);
    }
    await s.redis.stop();
    await s.redis.start();
    await waitFor(async () => ((await api.get('/ready')).status === 200 ? true : undefined), '/ready to recover', 30_000, 100);
    for (const id of jobIds) expect(await s.app.deps.queues.state('evaluate', id)).toBe('missing');

    s.startWorker();
    const rows = await evaluationsDone(s.app, ids);
    expect(rows.map((r) => r.job?.state)).toEqual(['completed', 'completed']);
    for (const r of rows) expect((r.result as { count: number }).count).toBe(200);
  }, 300_000);
});
