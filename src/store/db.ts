/**
 * The one PrismaClient of a process, over node-postgres (the driver-adapter engine keeps Prisma
 * free of downloaded binaries). Repository functions take `Db` so they run inside or outside a
 * transaction alike.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type PoolClient } from 'pg';
import { PrismaClient, Prisma } from './generated/client';

export type Db = PrismaClient | Prisma.TransactionClient;
export { PrismaClient, Prisma };

const pools = new WeakMap<PrismaClient, Pool>();

export function createDb(databaseUrl: string): PrismaClient {
  // A refused connection fails at once; the timeout only bounds a black-holed host (and must
  // outlast an event loop busy with TF.js work when API and worker share a process).
  const pool = new Pool({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, max: 10 });
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
      watchers.delete(client);
      const release = client.release.bind(client);
      client.release = () => undefined;
      release(new Error('connection lost while checked out'));
    };
    watchers.set(client, lost);
    client.once('end', lost);
  });
  pool.on('release', (_err, client) => {
    const lost = watchers.get(client);
    if (lost) client.removeListener('end', lost);
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
