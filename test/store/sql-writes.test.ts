/**
 * The writes a job-creating request makes run on node-postgres (record-job.ts): one transaction
 * commits all its rows or none, and its rows read back as Prisma and the status read see them.
 */
import { randomUUID } from 'node:crypto';
import { createDb, inSqlTransaction, poolOf, type PrismaClient } from '../../src/store/db';
import { createJob, deleteJob, getJob, jobViewById } from '../../src/store/jobs';
import { TEST_DATABASE_URL } from '../support/test-env';

describe('SQL writes (inSqlTransaction, insertRow)', () => {
  let db: PrismaClient;
  beforeAll(() => {
    db = createDb(TEST_DATABASE_URL);
  });
  afterAll(() => db.$disconnect());

  it('writes a job row that Prisma and the status read (node-postgres) read back the same', async () => {
    const id = randomUUID();
    try {
      const data = { evaluationId: id, scale: 1 / 65025, nested: [1, { a: null }] };
      await inSqlTransaction(db, (sql) => createJob(sql, { id, ownerId: null, type: 'evaluate', data, resourceId: id }));
      const row = await getJob(db, id);
      expect(row).toMatchObject({
        id,
        type: 'evaluate',
        state: 'queued',
        progress: 0,
        attempts: 0,
        cancelRequested: false,
        data,
        resourceId: id,
        modelId: null,
      });
      // The creation time is UTC wall time (the column has no zone): both reads agree, and it is now.
      const view = await jobViewById(db, id);
      expect(view?.createdAt.toISOString()).toBe(row?.createdAt.toISOString());
      expect(Math.abs((row?.createdAt.getTime() ?? 0) - Date.now())).toBeLessThan(10_000);
    } finally {
      await deleteJob(db, id);
    }
  });

  it('commits all rows of a transaction or none', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const job = (id: string) => ({ id, ownerId: null, type: 'evaluate', data: {} });
    await expect(
      inSqlTransaction(db, async (sql) => {
        await createJob(sql, job(a));
        await createJob(sql, job(a)); // the same key again: the transaction fails
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await getJob(db, a)).toBeNull();
    await inSqlTransaction(db, async (sql) => {
      await createJob(sql, job(a));
      await createJob(sql, job(b));
    });
    expect((await getJob(db, a))?.id).toBe(a);
    expect((await getJob(db, b))?.id).toBe(b);
    // The clients went back to the pool.
    expect(poolOf(db).totalCount - poolOf(db).idleCount).toBe(0);
    await deleteJob(db, a);
    await deleteJob(db, b);
  });
});
