/**
 * P2 through the API (issue 14): `npm run bench -- --only p2-api [--rounds N]`.
 *
 * Starts the real service (`src/main.ts` under tsx, one worker child, `npm start` defaults) with a
 * scratch database (`cnn_modules_bench_p2api`, dropped before and after; BENCH_DATABASE_URL) and
 * its own Redis prefix, uploads ResNet-20 and CIFAR-10 from ../shared, decomposes it with the default
 * options (tau 0, S = 1000 on data_batch_1), composes its 10 modules, then times, round by round and interleaved,
 * `POST /evaluations` of the model and of the composition on the first 2,000 and 10,000 images of
 * test_batch. A job's time is its own (finishedAt - startedAt, as the service records it); the
 * ratio is model time / composition time (throughput of the composition as a fraction of the
 * model's; goal >= 0.6 at 2,000 and >= 0.65 at 10,000). Every composition evaluation must score
 * exactly what the model's does (tau 0: same top-1 and confusion matrix), or the bench fails.
 * The first composition evaluation of a run loads its modules (cold); the others find the worker's
 * cached runtime. Beside it, the engine-only P2 of the last `--only p2` run (bench/results/p2-tensorflow.json: the
 * same modules, S = 1000).
 * Writes bench/results/p2-api.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from './lib';
import { type BenchService, json, startBenchService, until, uploadResnetCifar } from './scratch-services';

const ROOT = path.resolve(__dirname, '..');
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules_bench_p2api';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SIZES = [2000, 10000] as const;
const GOALS: Record<number, number> = { 2000: 0.6, 10000: 0.65 };

export interface P2ApiOptions {
  readonly rounds: number;
}

interface Job {
  state: string;
  startedAt?: string;
  finishedAt?: string;
  error?: unknown;
}

const post = async (svc: BenchService, route: string, body: unknown) =>
  json(await fetch(`${svc.base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));

/** Waits for a job; returns its own run time in seconds, as recorded by the service. */
async function jobSeconds(svc: BenchService, jobId: string): Promise<number> {
  const job = (await until(`job ${jobId}`, 1_800_000, async () => {
    svc.alive();
    const j = (await json(await fetch(`${svc.base}/jobs/${jobId}`))) as unknown as Job;
    if (j.state === 'failed' || j.state === 'cancelled') throw new Error(`job ${jobId} ${j.state}: ${JSON.stringify(j.error)}`);
    return j.state === 'completed' ? j : undefined;
  })) as Job;
  return (Date.parse(job.finishedAt as string) - Date.parse(job.startedAt as string)) / 1000;
}

interface Scored {
  seconds: number;
  top1: number;
  confusion: number[][];
  count: number;
}

async function evaluation(svc: BenchService, target: { modelId: string } | { compositionId: string }, datasetId: string, limit: number): Promise<Scored> {
  const ev = await post(svc, '/evaluations', { ...target, datasetId, limit });
  const seconds = await jobSeconds(svc, ev.jobId as string);
  const view = await json(await fetch(`${svc.base}/evaluations/${ev.id}`));
  const result = view.result as { top1: number; confusion: number[][]; count: number };
  return { seconds, ...result };
}

function engineP2(): { file: string; ratio: number; when: string } | undefined {
  const file = path.join(ROOT, 'bench', 'results', 'p2-tensorflow.json');
  if (!fs.existsSync(file)) return undefined;
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { file: path.relative(ROOT, file), ratio: r.ratio, when: r.when };
}

export async function runP2Api(opts: P2ApiOptions): Promise<void> {
  const svc = await startBenchService(DATABASE_URL, REDIS_URL);
  try {
    const { model, train, test } = await uploadResnetCifar(svc);
    const dec = await post(svc, '/decompositions', { modelId: model.id, datasetId: train.id });
    const decompositionSeconds = await jobSeconds(svc, dec.jobId as string);
    const done = await json(await fetch(`${svc.base}/decompositions/${dec.id}`));
    const modules = (done.modules as { id: string }[]).map((m) => ({ moduleId: m.id }));
    const comp = await post(svc, '/compositions', { modules });
    const composeSeconds = await jobSeconds(svc, comp.jobId as string);

    const rows: Record<number, { model: number[]; composition: number[]; cold?: number }> = {};
    for (const n of SIZES) rows[n] = { model: [], composition: [] };
    for (let round = 0; round < opts.rounds; round++) {
      for (const n of SIZES) {
        const m = await evaluation(svc, { modelId: model.id as string }, test.id as string, n);
        const c = await evaluation(svc, { compositionId: comp.id as string }, test.id as string, n);
        // tau 0: the composition predicts what the model predicts, image by image.
        if (c.count !== n || m.count !== n || c.top1 !== m.top1 || JSON.stringify(c.confusion) !== JSON.stringify(m.confusion)) {
          throw new Error(`the composition's predictions differ from the model's on ${n} images: top-1 ${c.top1} vs ${m.top1}`);
        }
        if (round === 0 && n === SIZES[0]) rows[n].cold = c.seconds;
        else rows[n].composition.push(c.seconds);
        rows[n].model.push(m.seconds);
        console.log(`round ${round + 1}, ${n} images: model ${m.seconds.toFixed(2)} s, composition ${c.seconds.toFixed(2)} s (top-1 ${c.top1})`);
      }
    }
    const engine = engineP2();
    const sizes = SIZES.map((n) => {
      const model = median(rows[n].model);
      const composition = median(rows[n].composition);
      return {
        images: n,
        modelSeconds: model,
        compositionSeconds: composition,
        ratio: Math.round((model / composition) * 1000) / 1000,
        goal: GOALS[n],
        ...(rows[n].cold !== undefined ? { coldCompositionSeconds: rows[n].cold } : {}),
        rounds: rows[n],
      };
    });
    const result = {
      date: new Date().toISOString(),
      cpus: os.cpus().length,
      node: process.version,
      decompositionSeconds,
      composeSeconds,
      sizes,
      // Checked round by round above (the bench throws otherwise): top-1 and confusion equal the model's.
      predictionsEqualToModel: true,
      engineP2: engine ?? 'no bench/results/p2-*.json: run `npm run bench -- --only p2`',
    };
    console.log('\nP2 through the API (median job seconds; ratio = model / composition):');
    console.log('| images | model s | composition s | ratio | goal | cold composition s |');
    console.log('|---|---|---|---|---|---|');
    for (const s of sizes) {
      console.log(
        `| ${s.images} | ${s.modelSeconds.toFixed(2)} | ${s.compositionSeconds.toFixed(2)} | ${s.ratio} | ${s.goal} | ${s.coldCompositionSeconds?.toFixed(2) ?? ''} |`,
      );
    }
    if (engine) console.log(`engine-only P2 (${engine.file}, ${engine.when}): ${engine.ratio}`);
    const file = path.join(ROOT, 'bench', 'results', 'p2-api.json');
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(ROOT, file)}`);
  } finally {
    await svc.stop();
  }
}
