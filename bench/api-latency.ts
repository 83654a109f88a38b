/**
 * Issue 10: GET /jobs/:id latency while a decomposition runs, with the worker in the API's process
 * (WORKER_MODE=inline) and in a child process (WORKER_MODE=process, the default of `npm start`).
 *
 *   npx tsx bench/api-latency.ts                      # both modes, 20 s under load each
 *   npx tsx bench/api-latency.ts --seconds 10 --clients 4 --modes process
 *
 * Each mode starts the real entry (`node --import tsx src/main.ts`, WORKERS=1) on loopback against
 * a scratch database (dropped first) and its own Redis prefix, uploads the ResNet-20 fixture and
 * CIFAR-10 data_batch_1 (samples) and test_batch (metrics) from ../shared, measures an idle baseline,
 * starts a decomposition (samplesPerClass --samples, default 1000) and, once its job is active,
 * runs a closed loop of --clients concurrent clients (keep-alive, one request in flight each) on
 * GET /jobs/:id for --seconds or until the job finishes (at most 200,000 requests). The service is then killed with its
 * process group. Writes bench/results/api-latency.json.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { dropDatabase, json, startBenchService, until, uploadResnetCifar } from './scratch-services';

const ROOT = path.resolve(__dirname, '..');
const MAX_REQUESTS = 200_000;

type Mode = 'inline' | 'process';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const SECONDS = Number(arg('seconds', '20'));
const IDLE_SECONDS = Number(arg('idle-seconds', '5'));
const CLIENTS = Number(arg('clients', '4'));
const SAMPLES = Number(arg('samples', '1000'));
const MODES = arg('modes', 'inline,process').split(',') as Mode[];
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules_bench_latency';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Stats {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** CLIENTS closed-loop clients on GET `url` for `seconds`: each sends its next request when the last answered. */
async function closedLoop(url: string, seconds: number, stopWhenFinished = false): Promise<Stats> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const latencies: number[] = [];
  let errors = 0;
  let finished = false;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      const req = http.get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - start);
          else errors++;
          // Under load, the window ends with the job: afterwards the API would be measured idle.
          if (stopWhenFinished && /"state":"(completed|failed|cancelled)"/.test(body)) finished = true;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
    });
  const client = async () => {
    while (!finished && performance.now() < end && latencies.length + errors < MAX_REQUESTS) await one();
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    requests: latencies.length,
    errors,
    seconds: round(elapsed),
    rps: round(latencies.length / elapsed),
    p50: round(q(0.5)),
    p90: round(q(0.9)),
    p99: round(q(0.99)),
    max: round(latencies[latencies.length - 1] ?? NaN),
    mean: round(latencies.reduce((s, v) => s + v, 0) / latencies.length),
  };
}

interface ModeResult {
  mode: Mode;
  idle: Stats;
  decomposing: Stats;
  jobAtStart: { state: string; stage?: string; progress: number };
  jobAtEnd: { state: string; stage?: string; progress: number };
  loadavg: number[];
}

async function runMode(mode: Mode): Promise<ModeResult> {
  const svc = await startBenchService(DATABASE_URL, REDIS_URL, { WORKER_MODE: mode });
  const { base, alive } = svc;
  try {
    const { model, train, test } = await uploadResnetCifar(svc);

    // Idle baseline on a finished job (the import), then the same loop during the decomposition.
    const idle = await closedLoop(`${base}/jobs/${model.jobId}`, IDLE_SECONDS);
    const dec = await json(
      await fetch(`${base}/decompositions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ modelId: model.id, datasetId: train.id, evalDatasetId: test.id, options: { samplesPerClass: SAMPLES } }),
      }),
    );
    const jobUrl = `${base}/jobs/${dec.jobId}`;
    const view = async () => {
      const j = await json(await fetch(jobUrl));
      return { state: j.state as string, stage: j.stage as string | undefined, progress: j.progress as number };
    };
    const jobAtStart = await until('the decomposition to run', 120_000, async () => {
      alive();
      const j = await view();
      return j.state === 'active' && j.progress > 0 ? j : undefined;
    });
    const decomposing = await closedLoop(jobUrl, SECONDS, true);
    const jobAtEnd = await view();
    return { mode, idle, decomposing, jobAtStart, jobAtEnd, loadavg: os.loadavg().map((v) => Math.round(v * 100) / 100) };
  } finally {
    await svc.stop();
  }
}

async function main(): Promise<void> {
  const results: ModeResult[] = [];
  for (const mode of MODES) {
    console.error(`${mode}: starting`);
    const r = await runMode(mode);
    results.push(r);
    console.error(`${mode}: done (${r.decomposing.requests} requests under load)`);
  }
  await dropDatabase(DATABASE_URL);
  const rows = results.flatMap((r) =>
    (['idle', 'decomposing'] as const).map((phase) => {
      const s = r[phase];
      return `| ${r.mode} | ${phase} | ${s.p50} | ${s.p90} | ${s.p99} | ${s.max} | ${s.rps} | ${s.requests} | ${s.errors} |`;
    }),
  );
  console.log(`GET /jobs/:id, ${CLIENTS} closed-loop clients, ${IDLE_SECONDS} s idle / ${SECONDS} s during a ResNet-20 decomposition (S = ${SAMPLES}), ms`);
  console.log('| workers | phase | p50 | p90 | p99 | max | req/s | requests | errors |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
  for (const r of results) console.log(`${r.mode}: job ${JSON.stringify(r.jobAtStart)} -> ${JSON.stringify(r.jobAtEnd)}, loadavg ${r.loadavg.join(' ')}`);
  const file = path.join(ROOT, 'bench', 'results', 'api-latency.json');
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        clients: CLIENTS,
        seconds: SECONDS,
        idleSeconds: IDLE_SECONDS,
        samplesPerClass: SAMPLES,
        cpus: os.cpus().length,
        node: process.version,
        results,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
