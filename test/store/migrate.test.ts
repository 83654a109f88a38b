import { Client } from 'pg';
import { migrate } from '../../src/store/migrate';
import { TEST_DATABASE_URL } from '../support/test-env';

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
});
