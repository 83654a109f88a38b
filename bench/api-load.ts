/**
 * API throughput (issue 14): `npm run bench -- --only api [--seconds 10] [--nice N]`.
 *
 * Starts the real service (`src/main.ts` under tsx, one worker child, `npm start` defaults) on
 * loopback with a scratch database (`cnn_modules_bench_api`, dropped before and after;
 * BENCH_DATABASE_URL) and its own Redis prefix, uploads ResNet-20 and CIFAR-10 (data_batch_1,
 * test_batch) from ../shared, then measures with autocannon, idle and again while a ResNet-20
 * decomposition (S = 1000, metrics on test_batch) runs; and before those, the first second of
 * the open loop after a 2 s burst and 15 s in which the service answered nothing (a burst after a
 * quiet spell):
 * - GET /jobs/:id at 50 connections, as fast as it answers (goal >= 2,000 requests/s, p99 < 20 ms);
 * - POST /evaluations offered at 200 requests/s (each a 10-image evaluation of the model: the
 *   request is what is measured, its job only queues; goal p99 < 20 ms).
 * `--nice N` sets WORKER_NICE for the run (default: the service's). Writes bench/results/api-load.json.
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { json, startBenchService, until, uploadResnetCifar } from './scratch-services';
import { openLoop, type LoadFigures } from './open-loop';

const ROOT = path.resolve(__dirname, '..');
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules_bench_api';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const QUIET_MS = 15_000;

export interface ApiLoadOptions {
  readonly seconds: number;
  readonly nice?: number;
}

function summary(r: autocannon.Result): LoadFigures {
  return {
    requestsPerSecond: Math.round(r.requests.total / r.duration),
    requests: r.requests.total,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

export async function runApiLoad(opts: ApiLoadOptions): Promise<void> {
  const svc = await startBenchService(DATABASE_URL, REDIS_URL, opts.nice !== undefined ? { WORKER_NICE: String(opts.nice) } : {});
  const base = svc.base;
  try {
    const { model, train, test } = await uploadResnetCifar(svc);

    const evaluation = {
      url: `${base}/evaluations`,
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ modelId: model.id, datasetId: test.id, limit: 10 }),
    };
    // A burst after a quiet spell: a first burst (2 s) grows the database pool, then the service
    // answers nothing for longer than pg-pool's default idle timeout (10 s), then the open loop
    // runs again; its first second is reported apart.
    await openLoop({ ...evaluation, rate: 200, seconds: 2 });
    await sleep(QUIET_MS);
    const afterQuiet = await openLoop({ ...evaluation, rate: 200, seconds: 1 });
    const measure = async (jobId: string) => {
      const jobs = summary(await autocannon({ url: `${base}/jobs/${jobId}`, connections: 50, duration: opts.seconds }));
      // autocannon's rate arrives in bursts at the top of each second (open-loop.ts); the open
      // loop spreads the same 200 requests/s evenly.
      const evaluations = summary(await autocannon({ ...evaluation, connections: 20, overallRate: 200, duration: opts.seconds }));
      const evaluationsOpenLoop = await openLoop({ ...evaluation, rate: 200, seconds: opts.seconds });
      return { jobs, evaluations, evaluationsOpenLoop };
    };
    // Idle: the finished import's job.
    const idle = await measure(model.jobId as string);
    // Let the evaluations the idle run queued drain before the decomposition starts.
    await until('the queued evaluations', 600_000, async () => {
      const page = await json(await fetch(`${base}/jobs?state=queued&limit=1`));
      return (page.items as unknown[]).length === 0 ? true : undefined;
    });
    const dec = await json(
      await fetch(`${base}/decompositions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ modelId: model.id, datasetId: train.id, evalDatasetId: test.id, options: { samplesPerClass: 1000 } }),
      }),
    );
    const jobUrl = `${base}/jobs/${dec.jobId}`;
    const state = async () => json(await fetch(jobUrl));
    const atStart = await until('the decomposition to run', 120_000, async () => {
      const j = await state();
      return j.state === 'active' && (j.progress as number) > 0 ? j : undefined;
    });
    const busy = await measure(dec.jobId as string);
    const atEnd = await state();
    const result = {
      date: new Date().toISOString(),
      cpus: os.cpus().length,
      node: process.version,
      seconds: opts.seconds,
      workerNice: opts.nice ?? 'default',
      afterQuiet,
      idle,
      decomposing: busy,
      decomposition: {
        atStart: { progress: atStart.progress, stage: atStart.stage },
        atEnd: { state: atEnd.state, progress: atEnd.progress, stage: atEnd.stage },
      },
      loadavg: os.loadavg().map((v) => Math.round(v * 100) / 100),
    };
    const rows = (['idle', 'decomposing'] as const).flatMap((phase) => {
      const r = phase === 'idle' ? idle : busy;
      return [
        `| ${phase} | GET /jobs/:id, 50 connections | ${r.jobs.requestsPerSecond} | ${r.jobs.p50} | ${r.jobs.p99} | ${r.jobs.max} | ${r.jobs.non2xx + r.jobs.errors} |`,
        `| ${phase} | POST /evaluations at 200/s (autocannon, 20 connections) | ${r.evaluations.requestsPerSecond} | ${r.evaluations.p50} | ${r.evaluations.p99} | ${r.evaluations.max} | ${r.evaluations.non2xx + r.evaluations.errors} |`,
        `| ${phase} | POST /evaluations at 200/s (open loop, evenly spaced) | ${r.evaluationsOpenLoop.requestsPerSecond} | ${r.evaluationsOpenLoop.p50} | ${r.evaluationsOpenLoop.p99} | ${r.evaluationsOpenLoop.max} | ${r.evaluationsOpenLoop.non2xx + r.evaluationsOpenLoop.errors} |`,
      ];
    });
    rows.unshift(
      `| after ${QUIET_MS / 1000} s quiet | POST /evaluations at 200/s (open loop, first second) | ${afterQuiet.requestsPerSecond} | ${afterQuiet.p50} | ${afterQuiet.p99} | ${afterQuiet.max} | ${afterQuiet.non2xx + afterQuiet.errors} |`,
    );
    console.log(`\nAPI load (WORKER_NICE ${result.workerNice}; ${opts.seconds} s per measure; decomposition ${JSON.stringify(result.decomposition)}), ms:`);
    console.log('| phase | load | req/s | p50 | p99 | max | non-2xx + errors |');
    console.log('|---|---|---|---|---|---|---|');
    for (const row of rows) console.log(row);
    const suffix = opts.nice !== undefined ? `-nice${opts.nice}` : '';
    const file = path.join(ROOT, 'bench', 'results', `api-load${suffix}.json`);
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(ROOT, file)}`);
  } finally {
    await svc.stop();
  }
}
