/** Once per run: recreate the test database from scratch and apply every migration to it. */
import { Client } from 'pg';
import { migrate } from '../../src/store/migrate';
import { TEST_DATABASE_URL } from './test-env';

export default async function globalSetup(): Promise<void> {
  const url = new URL(TEST_DATABASE_URL);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await migrate(TEST_DATABASE_URL);
}
