/** `npm run create-key -- [name]`: prints a new API key; only its hash is stored. */
import { loadConfig } from './config/env';
import { createDb } from './store/db';
import { createApiKey } from './store/api-keys';
import { migrate } from './store/migrate';

async function main(): Promise<void> {
  const config = loadConfig();
  await migrate(config.databaseUrl);
  const db = createDb(config.databaseUrl);
  try {
    const { key, ownerId } = await createApiKey(db, process.argv[2]);
    console.log(key);
    console.error(`owner id ${ownerId}; the key is not stored and cannot be shown again`);
  } finally {
    await db.$disconnect();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
