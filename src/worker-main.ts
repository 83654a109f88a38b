/** `npm run worker`: a worker process alone; run as many as the hosts allow. */
import pino from 'pino';
import { loadConfig } from './config/env';
import { initTfjsRuntime } from './config/tfjs-runtime';
import { onShutdown } from './shutdown';
import { startWorkerProcess } from './worker-process';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: config.logLevel });
  const runtime = initTfjsRuntime(config.tfjsBackend);
  const rt = await runtime;
  log.info({ backend: rt.backend, package: rt.package, skipped: rt.skipped }, 'TF.js runtime selected');
  const worker = await startWorkerProcess(config, runtime, log);
  onShutdown(() => worker.close(), (m) => log.info(m));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
