/**
 * Issue 10, bug 2: two deployments (each its own database) that share a Redis and a queue prefix.
 * A worker that takes a job whose row is not in its database must leave the job alone, not fail
 * it: the owner's worker still runs it. A job nobody owns (its row deleted) is not kept for ever:
 * once older than JOB_TIMEOUT_MS it fails.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import request from 'supertest';
import { Client } from 'pg';
import { buildTestApp, type TestApp } from '../support/app';
import { startTestWorkers } from '../support/workers';
import { testConfig, TEST_DATABASE_URL } from '../support/test-env';
import { KMNIST_DIR } from '../support/fixtures';
import { waitFor } from '../support/wait';
import { untilFinished } from '../support/finished';
import { createRedis } from '../../src/jobs/queues';
import { startWorkers, type RunningWorkers } from '../../src/jobs/worker';
import { createDb, type PrismaClient } from '../../src/store/db';
import { FsBlobStore } from '../../src/store/blobs';
import { migrate } from '../../src/store/migrate';

/** The test database's name with `_b`: deployment B's own database, migrated afresh. */
async function secondDatabase(): Promise<string> {
  const url = new URL(TEST_DATABASE_URL);
  const name = `${decodeURIComponent(url.pathname.slice(1))}_b`;
  const admin = new URL(TEST_DATABASE_URL);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return url.toString();
}

interface LoggingWorker {
  readonly lines: { obj: Record<string, unknown>; msg: string }[];
  close(): Promise<void>;
}

/** A worker on `env`'s queues over the database `databaseUrl`, its log lines kept. */
function startLoggingWorker(env: Record<string, string>, databaseUrl: string): LoggingWorker {
  const config = testConfig({ ...env, DATABASE_URL: databaseUrl });
  const db: PrismaClient = createDb(databaseUrl);
  const connection = createRedis(config.redisUrl, true);
  const lines: LoggingWorker['lines'] = [];
  const running: RunningWorkers = startWorkers({
    config,
    db,
    blobs: new FsBlobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-blobs-b-'))),
    connection,
    log: (obj, msg) => void lines.push({ obj, msg }),
  });
  return {
    lines,
    close: async () => {
      await running.close();
      connection.disconnect();
      await db.$disconnect();
    },
  };
}

const seen = (w: LoggingWorker, jobId: string) => w.lines.filter((l) => l.obj.jobId === jobId);

describe('a worker and a job from another deployment', () => {
  let t: TestApp;
  let bUrl: string;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    bUrl = await secondDatabase();
  });
  beforeEach(async () => {
    t = await buildTestApp({ IMPORT_WAIT_MS: '0' });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await t.close();
  });

  it("deployment B's worker leaves A's job alone (not failed, no attempt spent); A's worker then runs it", async () => {
    const b = startLoggingWorker(t.env, bUrl);
    closers.push(() => b.close());
    const up = await request(t.app.server)
      .post('/models')
      .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
      .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
      .expect(202);
    const jobId: string = up.body.jobId;

    await waitFor(async () => (seen(b, jobId).length > 0 ? true : undefined), "B's worker to take A's job", 30_000);
    expect(seen(b, jobId).map((l) => l.msg)).toContain('job has no row in this database: left alone');
    expect(seen(b, jobId).map((l) => l.msg)).not.toContain('job failed');

    const queue = new Queue('inspect-model', { connection: createRedis(t.deps.config.redisUrl, true), prefix: t.deps.config.queuePrefix });
    closers.push(async () => {
      await queue.close();
      await queue.disconnect();
    });
    const job = await queue.getJob(jobId);
    expect(job).toBeDefined();
    expect(['delayed', 'waiting']).toContain(await job!.getState());
    expect(job!.attemptsMade).toBe(0);
    const row = await t.deps.db.job.findUniqueOrThrow({ where: { id: jobId } });
    expect(row.state).toBe('queued');

    // B stops (else it may keep winning the job in turns); A's own worker runs the job.
    await closers.shift()!();
    const a = await startTestWorkers(t);
    closers.push(() => a.close());
    const done = await untilFinished(t.app.server, `/jobs/${jobId}`, { timeoutMs: 60_000 });
    expect(done.state).toBe('completed');
    expect((await request(t.app.server).get(`/models/${up.body.id}`).expect(200)).body.status).toBe('ready');
  });

  it('a job with no row anywhere waits while young and fails once older than JOB_TIMEOUT_MS', async () => {
    const w = startLoggingWorker({ ...t.env, JOB_TIMEOUT_MS: '5000' }, TEST_DATABASE_URL);
    closers.push(() => w.close());
    const queue = new Queue('evaluate', { connection: createRedis(t.deps.config.redisUrl, true), prefix: t.deps.config.queuePrefix });
    closers.push(async () => {
      await queue.close();
      await queue.disconnect();
    });
    const young = randomUUID();
    const old = randomUUID();
    const opts = { attempts: 3, backoff: { type: 'exponential', delay: 1000 } };
    await queue.add('evaluate', { evaluationId: randomUUID() }, { ...opts, jobId: young });
    await queue.add('evaluate', { evaluationId: randomUUID() }, { ...opts, jobId: old, timestamp: Date.now() - 60_000 });

    await waitFor(async () => ((await queue.getJob(old))?.failedReason ? true : undefined), 'the old job to fail', 30_000, 100);
    const failed = (await queue.getJob(old))!;
    expect(await failed.getState()).toBe('failed');
    expect(failed.failedReason).toMatch(/no row/);

    await waitFor(async () => (seen(w, young).length > 0 ? true : undefined), 'the worker to take the young job', 30_000);
    const kept = (await queue.getJob(young))!;
    expect(['delayed', 'waiting', 'active']).toContain(await kept.getState());
    expect(kept.attemptsMade).toBe(0);
  });
});
