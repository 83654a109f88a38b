/**
 * The writes a job-creating request makes run on node-postgres (record-job.ts): one transaction
 * commits all its rows or none, and its rows read back as Prisma and the status read see them.
 */
import { randomUUID } from 'node:crypto';
import { createDb, inSqlTransaction, inTransaction, insertTogether, poolOf, type PrismaClient } from '../../src/store/db';
import { findDataset } from '../../src/store/datasets';
import { findModel } from '../../src/store/models';
import { NotFoundError } from '../../src/errors';
import { createJob, deleteJob, getJob, jobInsert, jobViewById } from '../../src/store/jobs';
import { evaluationInsert, findEvaluationById } from '../../src/store/evaluations';
import { modelInsert } from '../../src/store/models';
import { TEST_DATABASE_URL } from '../support/test-env';

describe('SQL writes (inSqlTransaction, insertTogether)', () => {
  let db: PrismaClient;
  /** A dataset row with no owner, for rows that refer to one. */
  const createDataset = (id: string) =>
    db.dataset.create({
      data: {
        id,
        ownerId: null,
        name: 'd',
        format: 'npz',
        count: 3,
        shape: [3, 32, 32, 3],
        dtype: 'uint8',
        numClasses: 2,
        classCounts: [1, 2],
        imagesBlob: 'e',
        labelsBlob: 'f',
      },
    });
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

  it('reads a model and a dataset on the pool exactly as Prisma reads them', async () => {
    const [modelId, datasetId] = [randomUUID(), randomUUID()];
    const createdAt = new Date('2026-03-04T05:06:07.891Z');
    await db.model.create({
      data: {
        id: modelId,
        ownerId: 'owner-a',
        name: 'm',
        format: 'keras-h5',
        status: 'ready',
        // Past 2^53: a bigint, not a number that lost digits.
        sizeBytes: 9_007_199_254_740_993n,
        sha256: 'ab',
        sourceBlob: 'cd',
        inputShape: [32, 32, 3],
        numClasses: 10,
        layers: [{ name: 'conv', params: { a: null } }],
        preprocessing: JSON.stringify({ scale: 1 / 65025 }),
        createdAt,
      },
    });
    await createDataset(datasetId);
    try {
      // Outside a transaction the read is the pool's; inside one it is Prisma's.
      const viaPool = await findModel(db, modelId, 'owner-a');
      const viaPrisma = await inTransaction(db, (tx) => findModel(tx, modelId, 'owner-a'));
      expect(viaPool).toEqual(viaPrisma);
      expect(viaPool.createdAt.toISOString()).toBe(createdAt.toISOString());
      expect(viaPool.sizeBytes).toBe(viaPrisma.sizeBytes);
      expect(await findDataset(db, datasetId, null)).toEqual(await inTransaction(db, (tx) => findDataset(tx, datasetId, null)));
      // The owner filter: another owner's row, or an owned row asked for without one, is not found.
      await expect(findModel(db, modelId, 'owner-b')).rejects.toBeInstanceOf(NotFoundError);
      await expect(findModel(db, modelId, null)).rejects.toBeInstanceOf(NotFoundError);
      await expect(findDataset(db, datasetId, 'owner-a')).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      await db.model.delete({ where: { id: modelId } });
      await db.dataset.delete({ where: { id: datasetId } });
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

  it('writes a resource, what it refers to and its job in one statement, all or none', async () => {
    const [modelId, evaluationId, jobId, datasetId] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await createDataset(datasetId);
    const { model, insert } = modelInsert({
      id: modelId,
      ownerId: 'owner-a',
      name: 'm',
      format: 'h5',
      sizeBytes: 12_345,
      sha256: 'ab',
      sourceBlob: 'ab',
      preprocessing: { scale: 1 / 65025, mean: [0.485, 0.456, 0.406] },
      classNames: ['cat', 'dog'],
    });
    const evaluation = {
      id: evaluationId,
      ownerId: 'owner-a',
      modelId,
      compositionId: null,
      datasetId,
      limit: 7,
      labelMapping: { cat: 'kitten' },
      baseline: false,
      jobId,
    };
    const job = { id: jobId, ownerId: 'owner-a', type: 'evaluate', data: { evaluationId }, resourceId: evaluationId, modelId };
    try {
      // Refused as a whole: the job's key exists already, so neither the model nor the evaluation lands.
      await createJob(poolOf(db), { ...job, data: {}, modelId: null });
      await expect(insertTogether(poolOf(db), [evaluationInsert(evaluation), insert, jobInsert(job)])).rejects.toThrow(/duplicate key/);
      expect(await db.model.findUnique({ where: { id: modelId } })).toBeNull();
      expect(await db.evaluation.findUnique({ where: { id: evaluationId } })).toBeNull();
      await deleteJob(db, jobId);

      // The evaluation comes first and refers to the model and the job after it: keys are checked
      // at the end of the statement. Each statement's parameters land in its own columns.
      await insertTogether(poolOf(db), [evaluationInsert(evaluation), insert, jobInsert(job)]);
      expect(await findModel(db, modelId, 'owner-a')).toEqual(model);
      expect(await findEvaluationById(db, evaluationId)).toMatchObject({ ...evaluation, finishedAt: null });
      expect(await getJob(db, jobId)).toMatchObject({ ...job, state: 'queued' });
    } finally {
      await deleteJob(db, jobId).catch(() => undefined);
      await db.evaluation.deleteMany({ where: { id: evaluationId } });
      await db.model.deleteMany({ where: { id: modelId } });
      await db.dataset.delete({ where: { id: datasetId } });
    }
  });
});
