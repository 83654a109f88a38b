/**
 * PostgreSQL (a private cluster on its own port) stopped and restarted under a stream of requests,
 * with a real worker process running jobs: the API answers nothing 5xx but 503 while the database
 * is away, /ready names it and recovers without a restart, the worker survives, and every job the
 * API accepted completes (an outage does not spend the job's attempts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { dbPoolStats } from '../../src/store/db';
import { migrate } from '../../src/store/migrate';
import { buildTestApp, type TestApp } from '../support/app';
import { uploadKmnist } from '../support/kmnist';
import { startPrivatePostgres, type PrivatePostgres } from '../support/postgres-server';
import { spawnWorker, type ChildWorker } from '../support/worker-process';
import { evaluationStream } from '../support/request-stream';
import { waitFor } from '../support/wait';

describe('PostgreSQL outage', () => {
  let pg: PrivatePostgres;
  let t: TestApp;
  let worker: ChildWorker;
  beforeAll(async () => {
    pg = await startPrivatePostgres();
    const url = pg.url('cnn_modules_outage');
    await migrate(url);
    t = await buildTestApp({ DATABASE_URL: url, IMPORT_WAIT_MS: '60000' });
    // Each progress report pauses, so jobs are still running or queued when the database goes.
    worker = spawnWorker({ ...t.env, JOB_TEST_DELAY_MS: '300' });
  });
  afterAll(async () => {
    await worker?.kill('SIGKILL');
    await t?.close();
    pg?.destroy();
  });

  it('stopped and restarted: only 503s, /ready recovers, the worker survives, accepted jobs complete', async () => {
    const api = request(t.app.server);
    const { modelId, datasetId } = await uploadKmnist(t.app.server);
    const stream = await evaluationStream(api, modelId, datasetId);
    const { sent, accepted } = stream;

    await sleep(1000);
    pg.stop();
    const down = await waitFor(
      async () => {
        const r = await api.get('/ready');
        return r.status === 503 ? r.body : undefined;
      },
      '/ready to notice the outage',
      10_000,
      100,
    );
    expect(down.checks).toEqual({ postgres: 'down', redis: 'up' });
    // Longer than the retry backoff of a failing job (1 s + 2 s): attempts alone would not outlast it.
    await sleep(6000);
    const outageEnd = sent.length;
    pg.start();
    await waitFor(async () => ((await api.get('/ready')).status === 200 ? true : undefined), '/ready to recover', 30_000, 100);
    await sleep(1500);
    await stream.stop();

    const statuses = sent.map((r) => r.status);
    expect(statuses.filter((c) => c >= 500 && c !== 503)).toEqual([]);
    expect(sent.some((r) => r.what === 'models' && r.status === 503)).toBe(true);
    expect(sent.some((r) => r.what === 'evaluate' && r.status === 503)).toBe(true);
    expect(sent.slice(outageEnd).some((r) => r.what === 'models' && r.status === 200)).toBe(true);
    // No pool client stayed lent out to a transaction the outage cut (the API would run dry).
    expect(dbPoolStats(t.deps.db).checkedOut).toBe(0);
    // A refused request left no row behind: one evaluation row per 202.
    expect(await t.deps.db.evaluation.count({ where: { modelId } })).toBe(accepted.length);

    const jobs = await waitFor(
      async () => {
        const rows = await t.deps.db.job.findMany({ where: { id: { in: accepted.map((a) => a.jobId) } } });
        return rows.length === accepted.length && rows.every((r) => ['completed', 'failed', 'cancelled'].includes(r.state)) ? rows : undefined;
      },
      'every accepted evaluation to finish',
      180_000,
      250,
    );
    expect(jobs.map((j) => j.state)).toEqual(accepted.map(() => 'completed'));
    // Jobs caught by the outage waited it out without spending an attempt.
    // Logged once for the outage, not once per job and retry.
    const log = worker.output();
    expect(log.match(/backing service unreachable: jobs wait/g)).toHaveLength(1);
    expect(log).toContain('backing services answer again');
    // A job that spent an attempt: what the worker logged of it, so that a failure explains itself.
    const retried = jobs.filter((j) => j.attempts !== 1).map((j) => j.id);
    if (retried.length)
      console.log(
        `retried jobs ${retried.join(', ')}:\n${log
          .split('\n')
          .filter((l) => retried.some((id) => l.includes(id)))
          .join('\n')}`,
      );
    expect(jobs.map((j) => j.attempts)).toEqual(accepted.map(() => 1));
    const evaluations = await t.deps.db.evaluation.findMany({ where: { id: { in: accepted.map((a) => a.id) } } });
    for (const e of evaluations) expect((e.result as { count: number }).count).toBe(500);
    expect(worker.proc.exitCode).toBeNull();
    expect(worker.proc.signalCode).toBeNull();
    console.log(
      `PostgreSQL outage: ${sent.length} requests, ${statuses.filter((c) => c === 503).length} answered 503, ` +
        `${accepted.length} evaluations accepted and completed, each in one attempt`,
    );
  }, 300_000);
});
