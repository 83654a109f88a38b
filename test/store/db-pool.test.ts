/**
 * A connection lost in the middle of a transaction (PostgreSQL restarted, the backend killed) must
 * not keep its pool slot: Prisma's transaction manager releases the client only after COMMIT or
 * ROLLBACK succeed, so without our guard every such loss leaks one of the pool's clients, the pool
 * runs dry after `max` outages, and `$disconnect()` waits for ever.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { isServiceUnavailable } from '../../src/errors';
import { createDb, dbPoolStats, inSqlTransaction, poolOf, type PrismaClient } from '../../src/store/db';
import { TEST_DATABASE_URL } from '../support/test-env';

async function terminate(pid: number): Promise<void> {
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
  } finally {
    await admin.end();
  }
}

describe('database pool', () => {
  let db: PrismaClient;
  beforeEach(() => {
    db = createDb(TEST_DATABASE_URL);
  });
  // Bounded, so a leaked client fails the test instead of hanging the run.
  const close = () => Promise.race([db.$disconnect().then(() => 'closed'), sleep(10_000, undefined, { ref: false }).then(() => 'still waiting for a client')]);
  afterEach(async () => {
    await close();
  });

  it.each(['commit', 'rollback'] as const)('gives back a client whose connection died before %s', async (end) => {
    await db.$queryRaw`SELECT 1`;
    const lost = 3;
    for (let i = 0; i < lost; i++) {
      const outcome = db
        .$transaction(async (tx) => {
          const [{ pid }] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
          await terminate(pid);
          // Let the client see its socket close before the transaction ends.
          await new Promise((r) => setTimeout(r, 200));
          if (end === 'rollback') throw new Error('the caller gives up');
        })
        .then(
          () => 'committed',
          (err: Error) => err,
        );
      const err = await outcome;
      expect(err).toBeInstanceOf(Error);
      // The API answers 503 for this, not 500: the database went away under the request.
      if (end === 'commit') expect([(err as Error).message, isServiceUnavailable(err)]).toEqual([(err as Error).message, true]);
    }
    expect(dbPoolStats(db).checkedOut).toBe(0);
    // The pool still serves, and closes.
    expect(await db.$queryRaw<{ one: number }[]>`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    expect(await close()).toBe('closed');
    expect(dbPoolStats(db)).toEqual({ total: 0, idle: 0, checkedOut: 0, waiting: 0 });
  });

  it('survives the server ending a checked-out SQL client between two queries', async () => {
    // The server's FATAL arrives while no query runs: an 'error' event on the client, which would
    // crash the process unheard (jest reports it as an unhandled error).
    const outcome = await inSqlTransaction(db, async (sql) => {
      const { rows } = await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate(rows[0].pid);
      await sleep(300);
      await sql.query('SELECT 1');
    }).then(
      () => 'committed',
      (err: Error) => err,
    );
    expect(outcome).toBeInstanceOf(Error);
    expect(dbPoolStats(db).checkedOut).toBe(0);
    expect(await db.$queryRaw<{ one: number }[]>`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    expect(await close()).toBe('closed');
  });

  it('keeps idle connections past pg-pool default of 10 s, ready for the next burst', async () => {
    const pool = poolOf(db);
    await Promise.all(Array.from({ length: 4 }, () => pool.query('SELECT pg_sleep(0.05)')));
    expect(pool.totalCount).toBe(4);
    await sleep(11_000);
    // With pg-pool's default every one would have closed by now.
    expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 4, idle: 4 });
  }, 30_000);

  it('drops idle connections the server ends, before Prisma ever connected, and carries on', async () => {
    const pool = poolOf(db);
    // Three at once: three clients, idle once answered.
    const rows = await Promise.all(Array.from({ length: 3 }, () => pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)')));
    const pids = rows.map((r) => r.rows[0]!.pid);
    expect(pool.idleCount).toBe(3);
    for (const pid of new Set(pids)) await terminate(pid);
    await sleep(300);
    expect(pool.totalCount).toBe(0);
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
