/**
 * `npm start`: applies pending migrations, then serves the API with WORKERS workers: child
 * processes running worker-main (WORKER_MODE=process, the default), restarted when they die, or
 * in this process (WORKER_MODE=inline). A signal closes the API first, then the workers, each
 * finishing its current job.
 */
import pino from 'pino';
import { loadConfig, ConfigError, type Config } from './config/env';
import { initTfjsRuntime } from './config/tfjs-runtime';
import { migrate } from './store/migrate';
import { buildApp } from './api/app';
import { closeAppDeps, createAppDeps } from './api/deps';
import { listen } from './api/server';
import { onShutdown } from './shutdown';
import { startWorkerChildren, startWorkerProcess, type WorkerHandle } from './worker-process';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  const log = pino({ level: config.logLevel });
  const migrations = await migrate(config.databaseUrl);
  log.info({ applied: migrations.applied }, 'database migrated');

  const runtime = initTfjsRuntime(config.tfjsBackend);
  const rt = await runtime;
  log.info({ backend: rt.backend, package: rt.package, skipped: rt.skipped }, 'TF.js runtime selected');

  const deps = createAppDeps(config, runtime);
  const app = await buildApp(deps);
  const inline: WorkerHandle[] = [];
  const children = config.workerMode === 'process' && config.workers > 0 ? startWorkerChildren(config.workers, log) : undefined;
  if (config.workerMode === 'inline') {
    for (let i = 0; i < config.workers; i++) inline.push(await startWorkerProcess(config, runtime, log));
  }

  onShutdown(
    async (signal) => {
      await app.close();
      await Promise.all([...inline.map((w) => w.close()), children?.close(signal as NodeJS.Signals)]);
      await closeAppDeps(deps);
    },
    (m) => log.info(m),
    () => children?.killNow(),
  );
  await listen(app, config.port, config.host);
  log.info(
    { workers: config.workers, workerMode: config.workerMode, pid: process.pid, docs: `http://${config.host}:${config.port}/docs` },
    'cnn-modules is up',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
