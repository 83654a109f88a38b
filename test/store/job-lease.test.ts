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
    const first = await jobs.markActive(db, id, 'worker-a', 1);
    const second = await jobs.markActive(db, id, 'worker-b', 1);
    if (!first || !second) throw new Error('both runs should claim the row');
    return { id, stale: first.lease, current: second.lease };
  }

  it('refuses every write of the stale run and keeps the newer run in charge', async () => {
    const { id, stale, current } = await twoRuns();
    expect(stale.leaseId).not.toBe(current.leaseId);
    await expect(jobs.writeProgress(db, stale, 50, 'stale')).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markFailed(db, stale, { title: 't', detail: 'd' }, true)).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markRunCancelled(db, stale)).rejects.toBeInstanceOf(jobs.LeaseLostError);
    await expect(jobs.markCompleted(db, stale, { by: 'a' })).rejects.toBeInstanceOf(jobs.LeaseLostError);
    expect(await jobs.heartbeat(db, stale)).toBe(false);
    await jobs.markWaiting(db, id, stale, { title: 't', detail: 'd' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'active', workerId: 'worker-b', progress: 0, error: null });

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

  it('marks a row waiting without a lease only while it is queued', async () => {
    const id = randomUUID();
    await db.job.create({ data: { id, type: 'evaluate', data: {} } });
    await jobs.markWaiting(db, id, undefined, { title: 'Waiting for a backing service', detail: 'down' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'queued', error: { detail: 'down', retrying: true } });
    const run = await jobs.markActive(db, id, 'worker-a', 1);
    await jobs.markWaiting(db, id, undefined, { title: 'Waiting', detail: 'no lease' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'active' });
    await jobs.markWaiting(db, id, run?.lease, { title: 'Waiting', detail: 'with lease' });
    expect(await db.job.findUnique({ where: { id } })).toMatchObject({ state: 'queued', error: { detail: 'with lease' } });
  });
});
