/**
 * API throughput (issue 14): `npm run bench -- --only api [--seconds 10] [--nice N]`.
 *
 * Starts the real service (`src/main.ts` under tsx, one worker child, `npm start` defaults) on
 * loopback with a scratch database (`cnn_modules_bench_api`, dropped before and after;
 * BENCH_DATABASE_URL) and its own Redis prefix, uploads ResNet-20 and CIFAR-10 (data_batch_1,
 * test_batch) from ../shared, then measures with autocannon, idle and again while a ResNet-20
 * decomposition (S = 1000, metrics on test_batch) runs:
 * - GET /jobs/:id at 50 connections, as fast as it answers (goal >= 2,000 requests/s, p99 < 20 ms);
 * - POST /evaluations offered at 200 requests/s (each a 10-image evaluation of the model: the
 *   request is what is measured, its job only queues; goal p99 < 20 ms).
 * `--nice N` sets WORKER_NICE for the run (default: the service's). Writes bench/results/api-load.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { dropDatabase, dropRedisPrefix, freePort } from './scratch-services';

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
const RESNET = path.join(SHARED, 'fixtures', 'resnet20-cifar10', 'model.h5');
const CIFAR = path.join(SHARED, 'fixtures', 'cifar10-bin');
const PREPROCESSING = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules_bench_api';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface ApiLoadOptions {
  readonly seconds: number;
  readonly nice?: number;
}

interface Load {
  requestsPerSecond: number;
  requests: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
}

function summary(r: autocannon.Result): Load {
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

async function json(res: Response): Promise<Record<string, unknown>> {
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${res.status}: ${JSON.stringify(body)}`);
  return body;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export async function runApiLoad(opts: ApiLoadOptions): Promise<void> {
  await dropDatabase(DATABASE_URL);
  const prefix = `bench-api-${randomUUID().slice(0, 8)}`;
  const blobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-bench-api-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let service: ChildProcess | undefined;
  let out = '';
  try {
    // Its own process group, so that the service and its worker child are killed together.
    service = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts')], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        DATABASE_URL,
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        BLOB_DIR: blobDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        WORKERS: '1',
        LOG_LEVEL: 'warn',
        IMPORT_WAIT_MS: '0',
        // The load is one client: the per-key limit would answer 429s instead of measuring.
        RATE_LIMIT_PER_MINUTE: '1000000',
        ...(opts.nice !== undefined ? { WORKER_NICE: String(opts.nice) } : {}),
      },
    });
    service.stdout?.on('data', (d) => (out += d));
    service.stderr?.on('data', (d) => (out += d));
    const alive = () => {
      if (service?.exitCode !== null) throw new Error(`the service exited:\n${out}`);
    };
    await until('the service', 120_000, async () => {
      alive();
      return (await fetch(`${base}/health`).catch(() => undefined))?.ok ? true : undefined;
    });
    const form = new FormData();
    form.set('preprocessing', JSON.stringify(PREPROCESSING));
    form.set('file', new Blob([fs.readFileSync(RESNET)]), 'model.h5');
    const model = await json(await fetch(`${base}/models`, { method: 'POST', body: form }));
    const dataset = async (file: string) => {
      const f = new FormData();
      f.set('file', new Blob([fs.readFileSync(path.join(CIFAR, file))]), file);
      return json(await fetch(`${base}/datasets`, { method: 'POST', body: f }));
    };
    const train = await dataset('data_batch_1.bin');
    const test = await dataset('test_batch.bin');
    await until('the model import', 180_000, async () => {
      alive();
      const m = await json(await fetch(`${base}/models/${model.id}`));
      if (m.status === 'failed') throw new Error(`model import failed: ${JSON.stringify(m)}`);
      return m.status === 'ready' ? true : undefined;
    });

    const measure = async (jobId: string) => {
      const jobs = summary(await autocannon({ url: `${base}/jobs/${jobId}`, connections: 50, duration: opts.seconds }));
      const evaluations = summary(
        await autocannon({
          url: `${base}/evaluations`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ modelId: model.id, datasetId: test.id, limit: 10 }),
          connections: 20,
          overallRate: 200,
          duration: opts.seconds,
        }),
      );
      return { jobs, evaluations };
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
        `| ${phase} | POST /evaluations at 200/s | ${r.evaluations.requestsPerSecond} | ${r.evaluations.p50} | ${r.evaluations.p99} | ${r.evaluations.max} | ${r.evaluations.non2xx + r.evaluations.errors} |`,
      ];
    });
    console.log(`\nAPI load (WORKER_NICE ${result.workerNice}; ${opts.seconds} s per measure; decomposition ${JSON.stringify(result.decomposition)}), ms:`);
    console.log('| phase | load | req/s | p50 | p99 | max | non-2xx + errors |');
    console.log('|---|---|---|---|---|---|---|');
    for (const row of rows) console.log(row);
    const suffix = opts.nice !== undefined ? `-nice${opts.nice}` : '';
    const file = path.join(ROOT, 'bench', 'results', `api-load${suffix}.json`);
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(ROOT, file)}`);
  } finally {
    if (service?.pid !== undefined) {
      try {
        process.kill(-service.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(500);
    await dropRedisPrefix(REDIS_URL, prefix).catch(() => 0);
    await dropDatabase(DATABASE_URL).catch(() => undefined);
    fs.rmSync(blobDir, { recursive: true, force: true });
  }
}
