/**
 * The one PrismaClient of a process, over node-postgres (the driver-adapter engine keeps Prisma
 * free of downloaded binaries). Repository functions take `Db` so they run inside or outside a
 * transaction alike.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient, Prisma } from './generated/client';

export type Db = PrismaClient | Prisma.TransactionClient;
export { PrismaClient, Prisma };

export function createDb(databaseUrl: string): PrismaClient {
  // A refused connection fails at once; the timeout only bounds a black-holed host (and must
  // outlast an event loop busy with TF.js work when API and worker share a process).
  const adapter = new PrismaPg({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, max: 10 });
  return new PrismaClient({ adapter });
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
