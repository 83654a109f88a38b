/**
 * Job leases: a run that lost its job to a newer run (its queue lock lapsed while it was alive)
 * cannot write progress, fail, cancel or complete the job any more; the newer run can.
 */
import { randomUUID } from 'node:crypto';
import { createDb, type PrismaClient } from '../../src/store/db';
import * as jobs from '../../src/store/jobs';
import { TEST_DATABASE_URL } from '../support/test-env';

describe('job leases', () => {
  let db: PrismaClient;
  beforeAll(() => {
    db = createDb(TEST_DATABASE_URL);
  });
  afterAll(() => db.$disconnect());

  async function twoRuns() {
    const id = randomUUID();
    await db.job.create({ data: { id, type: 'evaluate', data: {} } });
    const stale = jobs.newLease(id);
    const current = jobs.newLease(id);
    expect(await jobs.markActive(db, stale, 'worker-a', 1)).toBe(true);
    await jobs.writeProgress(db, stale, 30, 'running');
    expect(await jobs.markActive(db, current, 'worker-b', 1)).toBe(true);
    return { id, stale, current };
  }

  it('refuses every write of the stale run and keeps the newer run in charge', async () => {
    const { id, stale, current } = await twoRuns();
    expect(stale.leaseId).not.toBe(current.leaseId);
    await expect(jobs.writeProgress(db, stale, 50, 'stale')).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markFailed(db, stale, { title: 't', detail: 'd' }, true)).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markRunCancelled(db, stale)).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markCompleted(db, stale, { by: 'a' })).rejects.toBeInstanceOf(jobs.LeaseLostError);
    expect(await jobs.heartbeat(db, stale)).toBe(false);
    await jobs.markWaiting(db, stale, { title: 't', detail: 'd' });
    // The new run started over (progress reset) and nothing of the stale run's got through.
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'active', workerId: 'worker-b', progress: 0, stage: null, error: null });

    expect(await jobs.heartbeat(db, current)).toBe(true);
    expect(await jobs.writeProgress(db, current, 40, 'running')).toBe(false);
    await jobs.markCompleted(db, current, { by: 'b' });
    // Finished: neither run can write again, the stale one least of all.
    await expect(jobs.markCompleted(db, stale, { by: 'a' })).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markCompleted(db, current, { by: 'b again' })).rejects.toBeInstanceOf(jobs.LeaseLostError);
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'completed', workerId: 'worker-b', progress: 100, result: { by: 'b' } });
  });

  it('lets the newer run retry and the stale run not requeue it', async () => {
    const { id, stale, current } = await twoRuns();
    await jobs.markFailed(db, current, { title: 'Job failed', detail: 'boom' }, true);
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'queued' });
    await expect(jobs.markFailed(db, stale, { title: 'Job failed', detail: 'stale' }, false)).rejects.toBeInstanceOf(jobs.LeaseLostError);
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'queued', error: { detail: 'boom' } });
  });

  it('marks a row waiting when it is queued or this run holds it, not when another run does', async () => {
    const id = randomUUID();
    await db.job.create({ data: { id, type: 'evaluate', data: {} } });
    // The outage came before the claim.
    await jobs.markWaiting(db, jobs.newLease(id), { title: 'Waiting for a backing service', detail: 'down' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'queued', error: { detail: 'down', retrying: true } });
    const mine = jobs.newLease(id);
    await jobs.markActive(db, mine, 'worker-a', 1);
    await jobs.markWaiting(db, jobs.newLease(id), { title: 'Waiting', detail: 'another run' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'active' });
    await jobs.markWaiting(db, mine, { title: 'Waiting', detail: 'this run' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'queued', error: { detail: 'this run' } });
  });

  it('rolls back the results a stale run tries to record', async () => {
    const { id, stale, current } = await twoRuns();
    const record = (lease: jobs.JobLease, detail: string) =>
      db.$transaction(async (tx) => {
        await jobs.confirmLease(tx, lease);
        // Stands in for a processor's result rows: written in the same transaction.
        await tx.job.update({ where: { id }, data: { error: { title: 'result', detail } } });
      });
    await expect(record(stale, 'stale')).rejects.toBeInstanceOf(jobs.LeaseLostError);
    expect((await db.job.findUniqueOrThrow({ where: { id } })).error).toBeNull();
    await record(current, 'current');
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ error: { detail: 'current' } });
  });
});
