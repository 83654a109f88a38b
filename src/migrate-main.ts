/** `npm run migrate`: creates the database if needed and applies pending migrations. */
import { loadConfig } from './config/env';
import { migrate } from './store/migrate';

migrate(loadConfig().databaseUrl)
  .then((r) => {
    console.log(`migrations applied: ${r.applied.length ? r.applied.join(', ') : 'none'} (already applied: ${r.alreadyApplied.length})`);
  })
  .catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
