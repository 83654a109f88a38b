/**
 * Benchmark P1: decomposition wall time of ResNet-20 on CIFAR-10 data_batch_1 divided by the time
 * of ONE plain forward pass (model.predict, same batch size, same preprocessing via toTensor) over
 * as many inputs as the decomposition ran, on the same backend in the same process. Target <= 1.3.
 *
 *   npm run bench                          # P1 with S = 300 samples per class, auto backend; then P2
 *   npm run bench -- --samples 1000        # the full run (P2 uses S = 1000 unless --samples is given)
 *   npm run bench -- --backend wasm        # tensorflow | wasm | cpu | auto
 *
 *   npm run bench -- --only compact        # compact modules: FLOPs budget vs composed accuracy (bench/compact.ts)
 *   npm run bench -- --only scale          # 10-1000 classes, RSS vs dataset size (bench/scale.ts)
 *   npm run bench -- --only api            # API throughput idle and under a decomposition (bench/api-load.ts)
 *   npm run bench -- --only p2-api         # a composition evaluated through the API vs the model (bench/p2-api.ts)
 *   npm run bench -- --only phases         # a decomposition's time per batch: data, forward, counting; masking (bench/phases.ts)
 *   npm run bench -- --only blobs          # fs vs S3 (s3rver) blob stores; API upload RSS on both (bench/blobs.ts; --sizes 1,100,1024 MiB, --upload-mb N, --cases s3:dataset,..., --trace MS)
 *
 * Other options: --batch N (default: the decomposition default, 128), --repeat N (decompose /
 * forward / counting-only rounds after a first forward, default 1; the ratio is median decomposition
 * over median forward). Besides the whole-run ratio it times, batch by batch interleaved (robust to
 * load), the per-unit counting batches (the engine's path for tau > 0) and predict on the same and
 * on plain batches.
 * Writes bench/results/p1-<backend>[-s<S>].json (the default S=300 run writes p1-<backend>.json).
 */
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { DECOMPOSE_BATCH_SIZE, DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, decompose, type SampleSource } from '../src/engine';
import { batchCounts, countClass, toTensor } from '../src/engine/activity';
import { checkpoints, classPools, planSamples } from '../src/engine/sampling';
import {
  CIFAR_PREPROCESSING,
  IMAGE_SHAPE,
  cifarRecords,
  interleave,
  loadResnet,
  machine,
  median,
  memorySource,
  now,
  parseArgs,
  peakRssKiB,
  selectBackend,
  table,
  writeJson,
  type Step,
} from './lib';
import { runApiLoad } from './api-load';
import { runP2Api } from './p2-api';
import { runPhases } from './phases';
import { blobsOptions, runBlobs } from './blobs';
import { compactOptions, runCompact } from './compact';
import { runP2 } from './p2';
import { runScale } from './scale';

const TARGET = 1.3;

interface Timed {
  wall: number;
  /** user + system CPU seconds of this process (all its threads). */
  cpu: number;
  sys: number;
}

async function timed(fn: () => Promise<unknown>): Promise<Timed> {
  const c0 = process.cpuUsage();
  const t0 = now();
  await fn();
  const wall = now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6, sys: c.system / 1e6 };
}

/** One plain forward pass over `sizes` consecutive batches from index 0: read, toTensor, predict, read back. */
async function forwardPass(model: tf.LayersModel, plan: ModelPlan, source: SampleSource, sizes: readonly number[]): Promise<void> {
  let start = 0;
  for (const b of sizes) {
    const idx = Array.from({ length: b }, (_, j) => start + j);
    const x = toTensor(plan, await source.read(idx), b, source.imageShape, CIFAR_PREPROCESSING);
    // predict's own batchSize defaults to 32; the baseline runs each batch whole, as the engine does.
    const y = model.predict(x, { batchSize: b }) as tf.Tensor;
    y.dataSync();
    y.dispose();
    x.dispose();
    start += b;
  }
}

/** A view of `source` whose input j is `idx[j]` (so forwardPass can run arbitrary index lists). */
function sourceAt(source: SampleSource, idx: readonly number[]): SampleSource {
  return { imageShape: source.imageShape, read: (js) => source.read(js.map((j) => idx[j])) };
}

function plainBatches(n: number, batch: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < n; s += batch) out.push(Math.min(batch, n - s));
  return out;
}

/**
 * The batch sizes the decomposition runs (ALGORITHM.md section 3 sharing, all classes, ratio 1):
 * class k runs its first min(S, |pool_k|) inputs, snapshotting after floor(S/9) (the tangling
 * prefix), and a batch never crosses a snapshot. Mirrors countClass + checkpoints for this case.
 */
function decompositionBatches(labels: Int32Array, classes: number, s: number, ratio: number, batch: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  labels.forEach((y) => counts[y]++);
  const concern = counts.map((c) => Math.min(s, c));
  const tangling = concern.map((c) => Math.max(1, Math.floor((c * ratio) / (classes - 1))));
  const out: number[] = [];
  for (let k = 0; k < classes; k++) {
    const marks = new Set<number>([concern[k]]);
    for (let c = 0; c < classes; c++) if (c !== k) marks.add(Math.min(tangling[c], counts[k]));
    marks.delete(0);
    let done = 0;
    for (const mark of [...marks].sort((a, b) => a - b)) {
      while (done < mark) {
        const take = Math.min(batch, mark - done);
        out.push(take);
        done += take;
      }
    }
  }
  return out;
}

/** A timing replica of decompose.ts moduleMasks (10 modules, 10 count parts each, tau 0), on synthetic counts. */
function maskingReplicaSeconds(units: number[]): number {
  const parts = Array.from({ length: 10 }, (_, k) => units.map((u) => Int32Array.from({ length: u }, (_, j) => (j * 7 + k) % 3)));
  const t0 = now();
  for (let c = 0; c < 10; c++) {
    const masks = units.map((u, i) => {
      const m = new Uint8Array(u);
      for (let x = 0; x < u; x++) {
        let active = 0;
        for (const part of parts) active += part[i][x];
        m[x] = active > 0 ? 1 : 0;
      }
      return m;
    });
    masks.map((m) => m.reduce((a, b) => a + b, 0));
  }
  return now() - t0;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), {
    samples: 'number',
    backend: 'string',
    batch: 'number',
    repeat: 'number',
    only: 'string',
    test: 'number',
    chunk: 'number',
    rounds: 'number',
    budgets: 'string',
    criteria: 'string',
    allocations: 'string',
    refit: 'string',
    ridge: 'string',
    calibration: 'string',
    rows: 'string',
    'pair-images': 'number',
    out: 'string',
    classes: 'string',
    datasets: 'string',
    'dense-bytes': 'string',
    seconds: 'number',
    nice: 'number',
    tau: 'number',
    sizes: 'string',
    'upload-mb': 'number',
    cases: 'string',
    trace: 'number',
  });
  const only = (args.only as string | undefined) ?? 'all';
  if (!['all', 'p1', 'p2', 'compact', 'scale', 'api', 'p2-api', 'phases', 'blobs'].includes(only)) {
    throw new Error('--only must be p1, p2, compact, scale, api, p2-api, phases or blobs');
  }
  // The API and blob-store benches start the service or stores they measure; they need no TF.js backend here.
  if (only === 'api')
    return runApiLoad({ seconds: (args.seconds as number | undefined) ?? 10, ...(args.nice !== undefined ? { nice: args.nice as number } : {}) });
  if (only === 'p2-api') return runP2Api({ rounds: (args.rounds as number | undefined) ?? 3 });
  if (only === 'blobs') return runBlobs(blobsOptions(args));
  const S = (args.samples as number | undefined) ?? 300;
  const batch = (args.batch as number | undefined) ?? DECOMPOSE_BATCH_SIZE;
  const repeat = (args.repeat as number | undefined) ?? 1;
  const runtime = await selectBackend((args.backend as string | undefined) ?? 'auto');
  const backend = tf.getBackend();
  const p2 = () =>
    runP2(
      // P2 composes the modules the service makes by default (samplesPerClass 1000) unless --samples says otherwise.
      {
        samples: (args.samples as number | undefined) ?? DEFAULT_DECOMPOSE_OPTIONS.samplesPerClass,
        test: (args.test as number | undefined) ?? 1000,
        chunk: (args.chunk as number | undefined) ?? 100,
        rounds: (args.rounds as number | undefined) ?? 3,
      },
      runtime.package,
    );
  if (only === 'p2') return p2();
  if (only === 'phases') {
    return runPhases({ samples: S, tau: (args.tau as number | undefined) ?? 0, ...(args.batch !== undefined ? { batch: batch } : {}) }, runtime);
  }
  if (only === 'compact') return runCompact(compactOptions(args), runtime.package);
  if (only === 'scale') {
    // "--datasets none" runs no dataset case.
    const list = (v: unknown, fallback: number[]) => (v === 'none' ? [] : typeof v === 'string' ? v.split(',').map(Number) : fallback);
    return runScale(
      {
        classes: list(args.classes, [10, 100, 200, 1000]),
        datasets: list(args.datasets, [5000, 50_000]),
        backend: (args.backend as string | undefined) ?? 'auto',
        ...(args['dense-bytes'] !== undefined ? { denseBytes: Number(args['dense-bytes']) } : {}),
      },
      runtime.package,
    );
  }
  console.log(
    `backend ${backend} (${runtime.package} ${runtime.version}); samplesPerClass ${S}; batch ${batch}; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  const train = cifarRecords('data_batch_1.bin');
  const source = memorySource(train.images);
  const model = await loadResnet();
  const plan = new ModelPlan(model);
  const options = { ...DEFAULT_DECOMPOSE_OPTIONS, preprocessing: CIFAR_PREPROCESSING, samplesPerClass: S, batchSize: batch, tau: 0 };

  const structure = decompositionBatches(train.labels, 10, S, options.tanglingRatio, batch);
  const inputs = structure.reduce((a, b) => a + b, 0);
  const plain = plainBatches(inputs, batch);

  // Warm-up once before timing: the forward path (full and small batch), then the decomposition
  // path (batchCounts at both sizes and a tiny decomposition). Peak RSS is read after the forward
  // path alone and after the decomposition, so the decomposition's own footprint shows.
  const w0 = now();
  await forwardPass(model, plan, source, [batch, 7]);
  const forwards: Timed[] = [];
  const decomps: Timed[] = [];
  forwards.push(await timed(() => forwardPass(model, plan, source, plain)));
  const rssForward = peakRssKiB().maxRSS;
  for (const b of [batch, 7]) {
    const x = toTensor(plan, await source.read(Array.from({ length: b }, (_, j) => j)), b, IMAGE_SHAPE, CIFAR_PREPROCESSING);
    batchCounts(plan, x);
    x.dispose();
  }
  await decompose(model, source, train.labels, { ...options, samplesPerClass: 9 });
  console.log(`warm-up + first forward ${(now() - w0).toFixed(1)} s`);

  // The decomposition's counting phase alone (the engine's countClass over every class's pool, as
  // decompose calls it); decomposition - counting = sampling + masks + heads.
  const pools = classPools(train.labels, 10, options.seed);
  const sampling = planSamples(pools, options);
  const marks = checkpoints(
    sampling,
    Array.from({ length: 10 }, (_, i) => i),
  );
  const countingOnly = async () => {
    // As decompose calls it: tau 0 counts "ever active" bitsets.
    for (let k = 0; k < 10; k++)
      await countClass(plan, source, pools[k], marks[k], { preprocessing: options.preprocessing, batchSize: batch, everActive: options.tau === 0 });
  };
  const counting: Timed[] = [];
  let inputsRun = 0;
  let keptFraction = 0;
  for (let r = 0; r < repeat; r++) {
    decomps.push(
      await timed(async () => {
        const result = await decompose(model, source, train.labels, options);
        inputsRun = result.inputsRun;
        const total = result.observationPoints.reduce((a, p) => a + p.units, 0);
        keptFraction = result.modules.reduce((a, m) => a + m.kept.reduce((x, y) => x + y, 0) / total, 0) / result.modules.length;
      }),
    );
    forwards.push(await timed(() => forwardPass(model, plan, source, plain)));
    counting.push(await timed(countingOnly));
  }
  const rssDecompose = peakRssKiB().maxRSS;
  if (inputsRun !== inputs) console.warn(`warning: decomposition ran ${inputsRun} inputs, the forward baseline ${inputs}`);
  const sameStructure = await timed(() => forwardPass(model, plan, source, structure));

  // Batch-level interleaving of: the engine's counting batches (read, toTensor, batchCounts,
  // accumulate: countClass's loop body) over the decomposition's exact pools and snapshots; plain
  // predict over the same indices in the same batches; plain predict in full batches (the baseline).
  const running = plan.observationPoints.map((p) => new Int32Array(p.units));
  const engineSteps: Step[] = [];
  const sameSteps: Step[] = [];
  for (let k = 0; k < 10; k++) {
    let done = 0;
    for (const mark of marks[k]) {
      while (done < mark) {
        const take = Math.min(batch, mark - done);
        const idx = pools[k].slice(done, done + take);
        engineSteps.push({
          run: async () => {
            const x = toTensor(plan, await source.read(idx), idx.length, IMAGE_SHAPE, CIFAR_PREPROCESSING);
            const c = batchCounts(plan, x);
            x.dispose();
            c.forEach((v, i) => {
              const r = running[i];
              for (let u = 0; u < v.length; u++) r[u] += v[u];
            });
          },
        });
        sameSteps.push({ run: () => forwardPass(model, plan, sourceAt(source, idx), [idx.length]) });
        done += take;
      }
    }
  }
  let start = 0;
  const plainSteps: Step[] = plain.map((b) => {
    const idx = Array.from({ length: b }, (_, j) => start + j);
    start += b;
    return { run: () => forwardPass(model, plan, sourceAt(source, idx), [b]) };
  });
  const i0 = now();
  const inter = await interleave({ engineCounting: engineSteps, forwardSameBatches: sameSteps, forwardPlain: plainSteps });
  const masking = maskingReplicaSeconds(plan.observationPoints.map((p) => p.units));
  console.log(`interleaved ${(now() - i0).toFixed(1)} s`);

  const fwdWall = median(forwards.map((t) => t.wall));
  const fwdCpu = median(forwards.map((t) => t.cpu));
  const decWall = median(decomps.map((t) => t.wall));
  const decCpu = median(decomps.map((t) => t.cpu));
  const ratio = decWall / fwdWall;
  const countWall = median(counting.map((t) => t.wall));

  const rss = peakRssKiB();
  model.dispose();

  const fmt = (s: number) => `${s.toFixed(2)} s`;
  console.log('\nBenchmark P1: decomposition / one forward pass (ResNet-20, CIFAR-10 data_batch_1)');
  console.log(
    table(
      ['measure', 'value'],
      [
        ['backend', `${backend} (${runtime.package})`],
        ['samples per class', S],
        ['inputs run (distinct)', inputsRun],
        ['batch size', batch],
        ['decomposition wall (median)', `${fmt(decWall)}  [${decomps.map((t) => t.wall.toFixed(2)).join(', ')}]`],
        ['forward pass wall (plain batches, median)', `${fmt(fwdWall)}  [${forwards.map((t) => t.wall.toFixed(2)).join(', ')}]`],
        ['forward pass wall (decomposition batch sizes)', fmt(sameStructure.wall)],
        ['RATIO decomposition / forward', `${ratio.toFixed(3)}  (target <= ${TARGET}: ${ratio <= TARGET ? 'PASS' : 'FAIL'})`],
        ['  of which counting phase (countClass x 10)', `${fmt(countWall)}  [${counting.map((t) => t.wall.toFixed(2)).join(', ')}]`],
        ['  of which the rest (sampling, masks, heads)', fmt(decWall - countWall)],
        ['ratio vs forward in decomposition batch sizes', (decWall / sameStructure.wall).toFixed(3)],
        ['INTERLEAVED (batch by batch, robust to load):', ''],
        ['  per-unit counting batches (the engine for tau > 0)', fmt(inter.engineCounting)],
        ['  forward, same batches', fmt(inter.forwardSameBatches)],
        ['  forward, plain batches', fmt(inter.forwardPlain)],
        ['  masks + kept (replica of moduleMasks)', fmt(masking)],
        ['  ratio (counting + masks) / plain forward', ((inter.engineCounting + masking) / inter.forwardPlain).toFixed(3)],
        ['  of which counting ops: engine / same batches', (inter.engineCounting / inter.forwardSameBatches).toFixed(3)],
        ['  of which batch splitting: same / plain', (inter.forwardSameBatches / inter.forwardPlain).toFixed(3)],
        ['ratio of CPU seconds', `${(decCpu / fwdCpu).toFixed(3)}  (${decCpu.toFixed(2)} / ${fwdCpu.toFixed(2)} s)`],
        ['system CPU seconds, decomposition / forward', `${median(decomps.map((t) => t.sys)).toFixed(2)} / ${median(forwards.map((t) => t.sys)).toFixed(2)} s`],
        ['forward ms / image', ((1000 * fwdWall) / inputs).toFixed(3)],
        ['mean kept fraction (tau 0)', keptFraction.toFixed(4)],
        [
          'peak RSS after forward / + decomposition',
          `${(rssForward / 1024).toFixed(1)} / ${(rssDecompose / 1024).toFixed(1)} MiB (maxRSS KiB ${rssForward} / ${rssDecompose})`,
        ],
        ['peak RSS at end', `${(rss.maxRSS / 1024).toFixed(1)} MiB (maxRSS ${rss.maxRSS} KiB, VmHWM ${rss.vmHWM ?? '?'} KiB)`],
        [
          'load average at end',
          os
            .loadavg()
            .map((l) => l.toFixed(2))
            .join(' '),
        ],
      ],
    ),
  );
  console.log(`[decomposition runs ${structure.length} batches, plain forward ${plain.length}]`);

  const suffix = S === 300 ? '' : `-s${S}`;
  const file = writeJson(`p1-${backend}${suffix}.json`, {
    benchmark: 'P1',
    when: new Date().toISOString(),
    machine: machine(),
    backend,
    package: runtime.package,
    samplesPerClass: S,
    batchSize: batch,
    inputs: inputsRun,
    decompositionSeconds: decWall,
    decompositionCpuSeconds: decCpu,
    decompositionRuns: decomps,
    forwardSeconds: fwdWall,
    forwardCpuSeconds: fwdCpu,
    forwardRuns: forwards,
    countingPhaseSeconds: countWall,
    interleaved: {
      ...inter,
      maskingReplica: masking,
      ratio: (inter.engineCounting + masking) / inter.forwardPlain,
    },
    countingRuns: counting,
    forwardSameBatchStructureSeconds: sameStructure.wall,
    decompositionBatches: structure.length,
    forwardBatches: plain.length,
    ratio,
    ratioVsSameBatchStructure: decWall / sameStructure.wall,
    cpuRatio: decCpu / fwdCpu,
    target: TARGET,
    pass: ratio <= TARGET,
    meanKeptFraction: keptFraction,
    peakRssKiB: rssDecompose,
    peakRssAfterForwardOnlyKiB: rssForward,
    peakRssAtEndKiB: rss.maxRSS,
    vmHWMAtEndKiB: rss.vmHWM,
    loadavgAtEnd: os.loadavg(),
  });
  console.log(`\nwrote ${file}`);
  if (only === 'all') await p2();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
