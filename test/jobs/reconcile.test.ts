/**
 * Reconciling job rows with the queue: rows win. A row whose job Redis lost is queued again under
 * the same id, a row BullMQ gave up on is marked failed with BullMQ's reason, and young rows
 * (their request may still be enqueuing them) and finished rows are left alone.
 */
import { randomUUID } from 'node:crypto';
import { UnrecoverableError, Worker } from 'bullmq';
import { buildTestApp, type TestApp } from '../support/app';
import { createRedis } from '../../src/jobs/queues';
import { reconcileJobs } from '../../src/jobs/reconcile';
import { waitFor } from '../support/wait';

describe('reconcileJobs', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  /** A job row made `ageMs` ago; an active one last showed life `beatAgeMs` ago (default: when made). */
  async function row(state: string, ageMs: number, beatAgeMs = ageMs) {
    const id = randomUUID();
    const at = new Date(Date.now() - ageMs);
    const active = state === 'active';
    await t.deps.db.job.create({
      data: {
        id,
        type: 'evaluate',
        state,
        data: { evaluationId: randomUUID() },
        createdAt: at,
        startedAt: active ? at : null,
        heartbeatAt: active ? new Date(Date.now() - beatAgeMs) : null,
      },
    });
    return id;
  }

  it('re-queues old queued/active rows missing from Redis; leaves young, finished, cancelling and live rows alone', async () => {
    const lostQueued = await row('queued', 60_000);
    const lostActive = await row('active', 60_000);
    const young = await row('queued', 0);
    // Started long ago, but its worker is still beating: Redis lost its entry, not its worker.
    const live = await row('active', 600_000, 1000);
    const done = await row('completed', 60_000);
    const cancelling = await row('queued', 60_000);
    await t.deps.db.job.update({ where: { id: cancelling }, data: { cancelRequested: true } });

    // The database is shared by the whole test run: other files' unfinished rows may be re-queued
    // too (into this test's own queue prefix), so only this test's rows are judged.
    const ours: string[] = [lostQueued, lostActive, young, live, done, cancelling];
    const mine = (ids: string[]) => ids.filter((id) => ours.includes(id)).sort();
    const report = await reconcileJobs(t.deps.db, t.deps.queues, { graceMs: 15_000, lockMs: 10_000 });
    expect(mine(report.requeued)).toEqual([lostQueued, lostActive].sort());
    expect(mine(report.failed)).toEqual([]);
    for (const id of [lostQueued, lostActive]) expect(await t.deps.queues.state('evaluate', id)).toEqual({ name: 'waiting', reason: undefined });
    for (const id of [young, live, done, cancelling]) expect(await t.deps.queues.state('evaluate', id)).toBe('missing');

    // A second round finds them queued and does nothing.
    const again = await reconcileJobs(t.deps.db, t.deps.queues, { graceMs: 15_000, lockMs: 10_000 });
    expect([...mine(again.requeued), ...mine(again.failed)]).toEqual([]);
  });

  it('pages through every unfinished row, not only the first page', async () => {
    const lost = [await row('queued', 70_000), await row('queued', 69_000), await row('queued', 68_000), await row('active', 67_000)];
    const report = await reconcileJobs(t.deps.db, t.deps.queues, { graceMs: 15_000, lockMs: 10_000, pageSize: 2 });
    expect(report.requeued).toEqual(expect.arrayContaining(lost));
    for (const id of lost) expect(await t.deps.queues.state('evaluate', id)).not.toBe('missing');
  });

  it('marks failed a row whose job BullMQ failed without the worker recording it', async () => {
    const id = await row('active', 60_000);
    await t.deps.queues.enqueue('evaluate', id, { evaluationId: randomUUID() });
    // A bare BullMQ worker (not ours: it never touches the row) fails the job, as a stall limit would.
    const connection = createRedis(t.env.REDIS_URL, true);
    const bare = new Worker(
      'evaluate',
      async () => {
        throw new UnrecoverableError('job stalled more than allowable limit');
      },
      { connection, prefix: t.env.QUEUE_PREFIX },
    );
    try {
      await waitFor(async () => {
        const s = await t.deps.queues.state('evaluate', id);
        return s !== 'missing' && s.name === 'failed' ? true : undefined;
      }, 'BullMQ to fail the job');
    } finally {
      await bare.close();
      connection.disconnect();
    }
    const report = await reconcileJobs(t.deps.db, t.deps.queues, { graceMs: 15_000, lockMs: 10_000 });
    expect(report.failed).toContain(id);
    const after = await t.deps.db.job.findUniqueOrThrow({ where: { id } });
    expect(after.state).toBe('failed');
    expect(after.error).toMatchObject({ detail: 'job stalled more than allowable limit' });
    expect(after.finishedAt).not.toBeNull();
  });
});
