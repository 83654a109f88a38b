import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { migrate } from '../../src/store/migrate';
import { REPO_ROOT, TEST_DATABASE_URL } from '../support/test-env';

function dbUrl(name: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Tables' columns, indexes and constraints of the public schema, each as a sorted line. */
async function describeSchema(url: string): Promise<{ columns: string[]; indexes: string[]; constraints: string[] }> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const rows = async (sql: string) => (await c.query(sql)).rows.map((r) => Object.values(r).join(' | ')).sort();
    return {
      columns: await rows(
        `SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public'`,
      ),
      indexes: await rows(`SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'`),
      constraints: await rows(
        `SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace`,
      ),
    };
  } finally {
    await c.end();
  }
}

describe('migrate', () => {
  it('creates a missing database, applies every migration once, and is idempotent', async () => {
    const url = new URL(TEST_DATABASE_URL);
    const name = `cnn_migrate_${process.pid}`;
    url.pathname = `/${name}`;
    const admin = new URL(TEST_DATABASE_URL);
    admin.pathname = '/postgres';
    const c = new Client({ connectionString: admin.toString() });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      const first = await migrate(url.toString());
      expect(first.applied.length).toBeGreaterThan(0);
      const [again, concurrent] = await Promise.all([migrate(url.toString()), migrate(url.toString())]);
      expect(again.applied).toEqual([]);
      expect(concurrent.applied).toEqual([]);
      expect(again.alreadyApplied).toEqual(first.applied);
    } finally {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    }
  });

  // `prisma migrate diff` cannot compare a database with the schema while prisma.config.ts names a
  // driver adapter, so migrations are written by hand: this is what catches one that drifts.
  it('the migrations build exactly the columns, indexes and constraints of prisma/schema.prisma', async () => {
    const [migrated, fromSchema] = [`cnn_drift_m_${process.pid}`, `cnn_drift_s_${process.pid}`];
    const admin = new Client({ connectionString: dbUrl('postgres') });
    await admin.connect();
    try {
      for (const d of [migrated, fromSchema]) await admin.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
      await migrate(dbUrl(migrated));
      await admin.query(`CREATE DATABASE ${fromSchema}`);
      const sql = execFileSync(
        path.join(REPO_ROOT, 'node_modules/.bin/prisma'),
        ['migrate', 'diff', '--from-empty', '--to-schema-datamodel', 'prisma/schema.prisma', '--script'],
        { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: dbUrl(fromSchema) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const c = new Client({ connectionString: dbUrl(fromSchema) });
      await c.connect();
      await c.query(sql).finally(() => c.end());
      const [a, b] = await Promise.all([describeSchema(dbUrl(migrated)), describeSchema(dbUrl(fromSchema))]);
      expect(a.columns.length).toBeGreaterThan(50);
      expect(a).toEqual(b);
    } finally {
      for (const d of [migrated, fromSchema]) await admin.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
      await admin.end();
    }
  }, 120_000);
});
