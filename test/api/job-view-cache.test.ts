/**
 * The job view cache behind GET /jobs/:id (issue 14): views come from memory while the process
 * sees every change, and never outlive a change committed by any connection: an update, a delete,
 * a TRUNCATE, a change during the read that filled it, or a LISTEN connection that went down.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { JobWatch } from '../../src/api/services/job-watch';
import { createDb, inSqlTransaction, type PrismaClient } from '../../src/store/db';
import { createJob, deleteJob } from '../../src/store/jobs';
import { JobViewCache } from '../../src/store/job-view-cache';
import { NotFoundError } from '../../src/errors';
import { TEST_DATABASE_URL } from '../support/test-env';

/** Polls `read` until `ok` holds (a notification crosses connections asynchronously). */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await sleep(10);
  }
}

describe('job view cache', () => {
  let db: PrismaClient;
  /** Another connection, as another process (a worker) would write. */
  let other: Client;
  let watch: JobWatch;
  const made: string[] = [];

  const newJob = async (ownerId: string | null = null): Promise<string> => {
    const id = randomUUID();
    await inSqlTransaction(db, (sql) => createJob(sql, { id, ownerId, type: 'evaluate', data: {}, resourceId: id }));
    made.push(id);
    return id;
  };
  /** Reads the view until it is served from memory: the LISTEN connection is up and the row held. */
  const cached = async (id: string) => {
    await eventually(
      async () => {
        const before = watch.views.hits;
        await watch.view(id, null);
        return watch.views.hits > before;
      },
      (hit) => hit,
    );
    expect(watch.views.hits).toBeGreaterThan(0);
  };

  beforeAll(async () => {
    db = createDb(TEST_DATABASE_URL);
    other = new Client({ connectionString: TEST_DATABASE_URL });
    await other.connect();
  });
  beforeEach(() => {
    watch = new JobWatch(db, TEST_DATABASE_URL);
  });
  afterEach(() => watch.close());
  afterAll(async () => {
    for (const id of made) await deleteJob(db, id).catch(() => undefined);
    await other.end();
    await db.$disconnect();
  });

  it('serves a view from memory until another connection changes the row', async () => {
    const id = await newJob();
    await cached(id);
    const misses = watch.views.misses;
    for (let i = 0; i < 20; i++) expect((await watch.view(id, null)).progress).toBe(0);
    expect(watch.views.misses).toBe(misses);

    await other.query(`UPDATE "Job" SET "progress" = 42, "stage" = 'counting' WHERE "id" = $1`, [id]);
    const after = await eventually(
      () => watch.view(id, null),
      (v) => v.progress === 42,
    );
    expect(after).toMatchObject({ progress: 42, stage: 'counting' });
    await cached(id);

    // startedAt alone (a worker taking the job over) notifies too since migration 0008.
    const startedAt = new Date('2026-01-02T03:04:05.000Z');
    await other.query(`UPDATE "Job" SET "startedAt" = $2 WHERE "id" = $1`, [id, '2026-01-02 03:04:05']);
    const started = await eventually(
      () => watch.view(id, null),
      (v) => v.startedAt?.getTime() === startedAt.getTime(),
    );
    expect(started.startedAt?.toISOString()).toBe(startedAt.toISOString());
  });

  it('forgets a deleted row: the job is then not found', async () => {
    const id = await newJob();
    await cached(id);
    await other.query(`DELETE FROM "Job" WHERE "id" = $1`, [id]);
    const gone = await eventually(
      () =>
        watch.view(id, null).then(
          () => 'found',
          (e) => e,
        ),
      (v) => v !== 'found',
    );
    expect(gone).toBeInstanceOf(NotFoundError);
  });

  it("keeps the owner filter: another key's cached job is not found", async () => {
    const id = await newJob('owner-a');
    await eventually(
      async () => {
        const before = watch.views.hits;
        await watch.view(id, 'owner-a');
        return watch.views.hits > before;
      },
      (hit) => hit,
    );
    await expect(watch.view(id, 'owner-b')).rejects.toBeInstanceOf(NotFoundError);
    await expect(watch.view(id, null)).rejects.toBeInstanceOf(NotFoundError);
    expect((await watch.view(id, 'owner-a')).id).toBe(id);
  });

  it('forgets everything on a TRUNCATE notification and when told to (a DELETE request)', async () => {
    const id = await newJob();
    await cached(id);
    expect(watch.views.size).toBeGreaterThan(0);
    // What the TRUNCATE trigger sends; truncating the shared test table would take other rows.
    await other.query(`SELECT pg_notify('job_changed', '*')`);
    await eventually(
      async () => watch.views.size,
      (n) => n === 0,
    );
    expect(watch.views.size).toBe(0);
    await cached(id);
    watch.views.clear();
    expect(watch.views.size).toBe(0);
  });

  it('sees a change made while its LISTEN connection was down', async () => {
    const id = await newJob();
    await cached(id);
    const killed = await other.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN job_changed' AND pid <> pg_backend_pid()`);
    expect(killed.rowCount).toBeGreaterThan(0);
    await other.query(`UPDATE "Job" SET "progress" = 7 WHERE "id" = $1`, [id]);
    const after = await eventually(
      () => watch.view(id, null),
      (v) => v.progress === 7,
    );
    expect(after.progress).toBe(7);
  });

  it('keeps nothing a change overtook: a read in flight when the row changed is not kept', async () => {
    const cache = new JobViewCache(db);
    cache.setLive(true);
    const id = await newJob();
    const reading = cache.find(id, null);
    cache.invalidate(id);
    await reading;
    expect(cache.size).toBe(0);
    await cache.find(id, null);
    expect(cache.size).toBe(1);
    // Concurrent misses share one read.
    cache.invalidate(id);
    const reads = cache.reads;
    await Promise.all([cache.find(id, null), cache.find(id, null), cache.find(id, null)]);
    expect(cache.reads - reads).toBe(1);
    expect(cache.size).toBe(1);
  });

  it('keeps nothing while changes are not seen, and forgets all when the connection drops', async () => {
    const cache = new JobViewCache(db);
    const id = await newJob();
    await cache.find(id, null);
    expect(cache.size).toBe(0);
    cache.setLive(true);
    await cache.find(id, null);
    expect(cache.size).toBe(1);
    cache.setLive(false);
    expect(cache.size).toBe(0);
  });

  it('holds at most its size, dropping the oldest view', async () => {
    const cache = new JobViewCache(db, 2);
    cache.setLive(true);
    const ids = [await newJob(), await newJob(), await newJob()];
    for (const id of ids) await cache.find(id, null);
    expect(cache.size).toBe(2);
    const misses = cache.misses;
    await cache.find(ids[2], null);
    expect(cache.misses).toBe(misses);
    await cache.find(ids[0], null);
    expect(cache.misses).toBe(misses + 1);
  });
});
