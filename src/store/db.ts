/**
 * The one PrismaClient of a process, over node-postgres (the driver-adapter engine keeps Prisma
 * free of downloaded binaries). Repository functions take `Db` so they run inside or outside a
 * transaction alike.
 */
import { createHash } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, types, type PoolClient } from 'pg';
import { PrismaClient, Prisma } from './generated/client';

export type Db = PrismaClient | Prisma.TransactionClient;
export { PrismaClient, Prisma };

const pools = new WeakMap<PrismaClient, Pool>();

/** How long an idle pool connection stays open. */
const POOL_IDLE_MS = 600_000;

export function createDb(databaseUrl: string): PrismaClient {
  // A refused connection fails at once; the timeout only bounds a black-holed host (and must
  // outlast an event loop busy with TF.js work when API and worker share a process).
  // Idle connections stay 10 minutes (pg-pool closes them after 10 s): a pool that had shrunk
  // opened up to `max` backends at once under the next burst, and every request of its first
  // 300 ms waited for them (bench/README.md, "A burst after a quiet spell"). They do not keep a
  // process alive (allowExitOnIdle): a script that never closes its pool still ends.
  const pool = new Pool({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, max: 10, idleTimeoutMillis: POOL_IDLE_MS, allowExitOnIdle: true });
  // An idle client whose connection ends (a PostgreSQL restart, a killed backend) is dropped by
  // the pool, which then emits 'error': unheard, that would crash the process. Prisma's adapter
  // listens only once Prisma first connects, and hot reads use this pool before that.
  pool.on('error', () => undefined);
  releaseLostClients(pool);
  // After $disconnect() the adapter would fall back to a pool of its own, without this guard: a
  // PrismaClient here is not reconnected once closed.
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(db, pool);
  return db;
}

/**
 * Prisma 6.19's transaction manager hands its client back to the pool only after COMMIT or ROLLBACK
 * succeed. When the connection dies inside a transaction (PostgreSQL restarted, backend killed),
 * both fail and the client stays checked out for good: every outage that catches a transaction
 * leaks a pool slot, the pool runs dry after `max` of them, and closing it waits for ever. A
 * client whose connection ends while checked out is released here with its error (the pool then
 * destroys it); the adapter's own later release becomes a no-op.
 */
function releaseLostClients(pool: Pool): void {
  const watchers = new WeakMap<PoolClient, () => void>();
  pool.on('acquire', (client) => {
    const lost = (): void => {
      client.removeListener('end', lost);
      client.removeListener('error', lost);
      // Later errors of the dead connection have nowhere to go but here.
      client.on('error', () => undefined);
      watchers.delete(client);
      const release = client.release.bind(client);
      client.release = () => undefined;
      release(new Error('connection lost while checked out'));
    };
    watchers.set(client, lost);
    client.once('end', lost);
    // The server ending a connection between two queries of a checked-out client (a shutdown:
    // "terminating connection due to administrator command") is an 'error' event; the pool
    // listens for those only on idle clients, so unheard it would crash the process.
    client.once('error', lost);
  });
  pool.on('release', (_err, client) => {
    const lost = watchers.get(client);
    if (lost) {
      client.removeListener('end', lost);
      client.removeListener('error', lost);
    }
    watchers.delete(client);
  });
}

/**
 * The node-postgres pool under `db`, for the few hot reads that skip Prisma: Prisma 6's query
 * compiler runs per query and took a quarter of the API's CPU under GET /jobs/:id load.
 */
export function poolOf(db: PrismaClient): Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('not a client made by createDb');
  return pool;
}

/** Clients of the process's pool: how many are open, idle, lent out, and waited for. */
export function dbPoolStats(db: PrismaClient): { total: number; idle: number; checkedOut: number; waiting: number } {
  const pool = pools.get(db);
  if (!pool) return { total: 0, idle: 0, checkedOut: 0, waiting: 0 };
  return { total: pool.totalCount, idle: pool.idleCount, checkedOut: pool.totalCount - pool.idleCount, waiting: pool.waitingCount };
}

/** Queries on node-postgres: the pool, or one client inside inSqlTransaction. */
export type Sql = Pick<Pool, 'query'>;

/**
 * Runs `fn` in one transaction on the node-postgres pool under `db`: for the writes every
 * job-creating request makes (api/services/record-job.ts). Through Prisma 6 the same two inserts
 * took 7.3 ms, here 1.6 ms (bench/README.md, "API throughput").
 */
export async function inSqlTransaction<R>(db: PrismaClient, fn: (sql: Sql) => Promise<R>): Promise<R> {
  const client = await poolOf(db).connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * An INSERT that can run alone or inside a larger statement: `text(first)` numbers its parameters
 * from `$first`, so several combine without rewriting SQL text (`insertTogether`).
 */
export interface InsertStatement {
  readonly text: (firstParam: number) => string;
  readonly values: readonly unknown[];
}

/**
 * One row of `table`: `row`'s keys are its columns. Arrays and objects go to Json columns as JSON
 * text (no column of this schema is a native array); undefined leaves the column to its default.
 * Timestamps are set here in UTC (`utcNow`): the columns are `timestamp without time zone`, and a
 * Date parameter would be written in the process's zone.
 */
export function rowInsert(table: string, row: Record<string, unknown>): InsertStatement {
  const columns = Object.keys(row).filter((c) => row[c] !== undefined);
  const values = columns.map((c) => {
    const v = row[c];
    if (typeof v === 'bigint') return v.toString();
    return v !== null && typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v) : v;
  });
  const names = columns.map((c) => `"${c}"`).join(', ');
  return { text: (first) => `INSERT INTO "${table}" (${names}) VALUES (${columns.map((_, i) => `$${first + i}`).join(', ')})`, values };
}

/**
 * Runs the inserts as one statement (`WITH w0 AS (INSERT ...), w1 AS (...) INSERT ...`): atomic
 * without BEGIN and COMMIT, in one round trip instead of n + 2. Every job-creating request writes
 * its rows this way, and on a busy database each round trip waits its turn (bench/README.md, "Where
 * POST /evaluations waits"). PostgreSQL checks foreign keys between the rows at the end of the statement, so
 * their order does not matter, and any failure leaves none of them.
 */
export async function insertTogether(sql: Sql, inserts: readonly InsertStatement[]): Promise<void> {
  if (inserts.length === 0) return;
  const parts: string[] = [];
  const values: unknown[] = [];
  for (const insert of inserts) {
    parts.push(insert.text(values.length + 1));
    values.push(...insert.values);
  }
  const last = parts.pop() as string;
  const text = parts.length === 0 ? last : `WITH ${parts.map((p, i) => `w${i} AS (${p})`).join(', ')} ${last}`;
  // Prepared under a digest of its text: PostgreSQL truncates statement names to 63 bytes.
  await sql.query({ name: `insert-${createHash('sha1').update(text).digest('hex').slice(0, 20)}`, text, values });
}

const TIMESTAMP_OID = 1114;
const INT8_OID = 20;
/**
 * Type parsers that read a row as Prisma returns it: `timestamp without time zone` holds UTC wall
 * time (node-postgres would read it in the process's zone), and BigInt columns are bigints.
 */
const AS_PRISMA = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === TIMESTAMP_OID) return (text: string) => new Date(`${text.replace(' ', 'T')}Z`);
    if (oid === INT8_OID) return (text: string) => BigInt(text);
    return types.getTypeParser(oid, format);
  }) as typeof types.getTypeParser,
};

/**
 * One row of `table` by id and owner (null matches rows without an owner), every column, as
 * Prisma's `findFirst({ where: { id, ownerId } })` returns it. Outside a transaction it is one
 * prepared statement on the pool: the lookups every job-creating request makes took 2–3 ms of
 * Prisma's CPU each and 0.3 ms here (bench/README.md, "API throughput"). Inside one (`db` a
 * transaction client) it reads through Prisma's transaction.
 */
export async function findOwnedRow<T>(
  db: Db,
  table: 'Model' | 'Dataset',
  id: string,
  ownerId: string | null,
  viaPrisma: (tx: Prisma.TransactionClient) => Promise<T | null>,
): Promise<T | null> {
  const pool = pools.get(db as PrismaClient);
  if (!pool) return viaPrisma(db as Prisma.TransactionClient);
  const { rows } = await pool.query<T & object>({
    name: `owned-${table}`,
    text: `SELECT * FROM "${table}" WHERE "id" = $1 AND "ownerId" IS NOT DISTINCT FROM $2`,
    values: [id, ownerId],
    types: AS_PRISMA,
  });
  return rows[0] ?? null;
}

/** Now as a UTC timestamp literal, for `timestamp without time zone` columns written through `Sql`. */
export function utcNow(): string {
  return new Date().toISOString();
}

/** Runs `fn` in one transaction: every write it makes through `tx` commits together or not at all. */
export function inTransaction<R>(db: PrismaClient, fn: (tx: Prisma.TransactionClient) => Promise<R>): Promise<R> {
  return db.$transaction(fn);
}

/** True when PostgreSQL answers a trivial query. */
export async function pingDb(db: PrismaClient): Promise<boolean> {
  try {
    await db.$queryRaw`SELECT 1`;
    return true;
  } catch {
    return false;
  }
}
