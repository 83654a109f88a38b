/**
 * A worker killed with SIGKILL in the middle of a decomposition, three times in a row: the job is
 * taken over each time and completes exactly once, with exactly one module per class and no blob
 * that no row refers to. A worker stopped on SIGTERM finishes its job first; a worker frozen past
 * its lock loses the job to another and, resumed, records nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { CIFAR_DIR, CIFAR_PREPROCESSING, RESNET_DIR } from '../support/fixtures';
import { uploadKmnist } from '../support/kmnist';
import { spawnWorker, type ChildWorker } from '../support/worker-process';
import { waitFor } from '../support/wait';
import { untilFinished } from '../support/finished';
import { isBlobReferenced } from '../../src/store/blob-refs';

describe('crash recovery', () => {
  let t: TestApp;
  const workers: ChildWorker[] = [];
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await t.close();
  });

  it('SIGKILL mid-decomposition 3 times: completes once, N modules, no orphan blob', async () => {
    const env = { ...t.env, JOB_LOCK_MS: '2000' };
    const start = () => {
      const w = spawnWorker(env);
      workers.push(w);
      return w;
    };
    let worker = start();
    const model = await request(t.app.server)
      .post('/models')
      .field('preprocessing', JSON.stringify(CIFAR_PREPROCESSING))
      .attach('file', path.join(RESNET_DIR, 'model.h5'))
      .expect(202);
    await waitFor(async () => ((await request(t.app.server).get(`/models/${model.body.id}`)).body.status === 'ready' ? true : undefined), 'the model import');
    const ds = await request(t.app.server)
      .post('/datasets')
      .attach('file', fs.readFileSync(path.join(CIFAR_DIR, 'data_batch_1.bin')), 'data_batch_1.bin')
      .expect(201);
    const dec = await request(t.app.server)
      .post('/decompositions')
      .send({ modelId: model.body.id, datasetId: ds.body.id, options: { samplesPerClass: 400 } })
      .expect(202);
    const jobId = dec.body.jobId;

    for (let kill = 1; kill <= 3; kill++) {
      const pid = worker.proc.pid;
      await waitFor(
        async () => {
          const row = await t.deps.db.job.findUnique({ where: { id: jobId } });
          return row?.state === 'active' && row.stage === 'observing' && row.workerId?.includes(`:${pid}:`) ? row : undefined;
        },
        `worker ${kill} to be observing`,
        120_000,
        100,
      );
      await worker.kill('SIGKILL');
      worker = start();
    }
    const done = await waitFor(
      async () => {
        const row = await t.deps.db.job.findUnique({ where: { id: jobId } });
        return row && ['completed', 'failed'].includes(row.state) ? row : undefined;
      },
      'the decomposition to finish',
      300_000,
      250,
    );
    expect(done.state).toBe('completed');
    expect(done.workerId).toContain(`:${worker.proc.pid}:`);
    expect(await t.deps.db.module.count({ where: { decompositionId: dec.body.id } })).toBe(10);
    const view = await request(t.app.server).get(`/decompositions/${dec.body.id}`).expect(200);
    expect(view.body.modules.map((m: { classIndex: number }) => m.classIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const orphans = [];
    for await (const key of t.deps.blobs.keys()) if (!(await isBlobReferenced(t.deps.db, key))) orphans.push(key);
    expect(orphans).toEqual([]);
  });

  it('SIGTERM mid-evaluation: the worker finishes its job, records it, then exits 0', async () => {
    // Alone on the queue (the previous test leaves its last worker running), and each progress
    // report pauses, so this worker surely holds the job when the signal arrives.
    await Promise.all(workers.splice(0).map((w) => w.kill('SIGKILL')));
    const worker = spawnWorker({ ...t.env, JOB_TEST_DELAY_MS: '400' });
    workers.push(worker);
    // Listening from the start: a worker that dies early fails the test at once, not at its timeout.
    const exited = new Promise<number | null>((resolve) => worker.proc.once('exit', (code) => resolve(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const api = request(t.app.server);
    const { modelId, datasetId } = await uploadKmnist(t.app.server, 202);
    await waitFor(async () => ((await api.get(`/models/${modelId}`)).body.status === 'ready' ? true : undefined), 'the model import', 120_000);
    const ev = await api.post('/evaluations').send({ modelId, datasetId, limit: 2000 }).expect(202);
    const pid = worker.proc.pid;
    await waitFor(
      async () => {
        const row = await t.deps.db.job.findUnique({ where: { id: ev.body.jobId } });
        if (gone) throw new Error(`the worker exited before the job ran:\n${worker.output()}`);
        return row?.state === 'active' && row.progress > 0 && row.workerId?.includes(`:${pid}:`) ? row : undefined;
      },
      'the evaluation to be running',
      120_000,
      50,
    );

    worker.proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    const row = await t.deps.db.job.findUniqueOrThrow({ where: { id: ev.body.jobId } });
    expect(row).toMatchObject({ state: 'completed', attempts: 1 });
    expect(row.workerId).toContain(`:${pid}:`);
    expect(worker.output()).toMatch(/SIGTERM received/);
    const evaluation = await api.get(`/evaluations/${ev.body.id}`).expect(200);
    expect(evaluation.body.result.count).toBe(2000);
  }, 300_000);

  it('a worker frozen past its lock loses the job: the new run finishes it, the old one stops without recording', async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill('SIGKILL')));
    const env = { ...t.env, JOB_LOCK_MS: '2000', JOB_TEST_DELAY_MS: '300' };
    const frozen = spawnWorker(env);
    workers.push(frozen);
    const api = request(t.app.server);
    const { modelId, datasetId } = await uploadKmnist(t.app.server, 202);
    await waitFor(async () => ((await api.get(`/models/${modelId}`)).body.status === 'ready' ? true : undefined), 'the model import', 120_000);
    const ev = await api.post('/evaluations').send({ modelId, datasetId, limit: 2000 }).expect(202);
    const jobId = ev.body.jobId;
    const holder = async (pid: number | undefined) =>
      waitFor(
        async () => {
          const row = await t.deps.db.job.findUnique({ where: { id: jobId } });
          return row?.state === 'active' && row.progress > 0 && row.workerId?.includes(`:${pid}:`) ? row : undefined;
        },
        `worker ${pid} to run the evaluation`,
        120_000,
        50,
      );
    await holder(frozen.proc.pid);

    // Frozen, it cannot extend its lock: the queue hands the job to the next worker.
    frozen.proc.kill('SIGSTOP');
    const next = spawnWorker(env);
    workers.push(next);
    await holder(next.proc.pid);
    frozen.proc.kill('SIGCONT');

    await waitFor(async () => (/job taken over by another run/.test(frozen.output()) ? true : undefined), 'the resumed worker to notice', 60_000, 100);
    const done = await untilFinished(t.app.server, `/jobs/${jobId}`, { timeoutMs: 120_000 });
    expect(done.state).toBe('completed');
    const row = await t.deps.db.job.findUniqueOrThrow({ where: { id: jobId } });
    expect(row.workerId).toContain(`:${next.proc.pid}:`);
    expect((await api.get(`/evaluations/${ev.body.id}`).expect(200)).body.result.count).toBe(2000);
    // The resumed worker survived and recorded nothing: no failure, no second completion.
    expect(frozen.proc.exitCode).toBeNull();
    expect(frozen.output()).not.toMatch(new RegExp(`"jobId":"${jobId}"[^\\n]*"msg":"job (failed|completed)"`));
  }, 300_000);
});
