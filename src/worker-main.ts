/** `npm run worker`: a worker process alone; run as many as the hosts allow. Also what `npm start` forks per worker. */
import pino from 'pino';
import { loadConfig } from './config/env';
import { initTfjsRuntime } from './config/tfjs-runtime';
import { onShutdown } from './shutdown';
import { setProcessNiceness, setSessionGroupNiceness } from './worker-niceness';
import { startWorkerProcess } from './worker-process';

async function main(): Promise<void> {
  // A child of `npm start` (WORKER_MODE=process): when the parent is gone, close as on SIGTERM
  // (before the worker is up, SIGTERM's default ends the process at once).
  if (process.send) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  const config = loadConfig();
  const log = pino({ level: config.logLevel });
  // Before TF.js makes its thread pools, which inherit this thread's niceness: on a host shared
  // with the API, request handling then gets the cores first and the worker takes what is left.
  try {
    const threads = setProcessNiceness(config.workerNice);
    const sessionGroup = setSessionGroupNiceness(config.workerNice);
    log.info({ workerNice: config.workerNice, threads, sessionGroup }, 'worker priority set');
  } catch (err) {
    log.warn({ err: (err as Error).message, workerNice: config.workerNice }, 'could not lower the worker priority');
  }
  const runtime = initTfjsRuntime(config.tfjsBackend);
  const rt = await runtime;
  log.info({ backend: rt.backend, package: rt.package, skipped: rt.skipped }, 'TF.js runtime selected');
  const worker = await startWorkerProcess(config, runtime, log);
  onShutdown(
    () => worker.close(),
    (m) => log.info(m),
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
