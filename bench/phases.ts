/**
 * Where a decomposition's time goes, batch by batch (issue 14): `npm run bench -- --only phases
 * [--backend auto|tensorflow|wasm|cpu] [--samples S] [--tau T] [--batch B]`.
 *
 * Decomposes ResNet-20 on CIFAR-10 data_batch_1 with the engine's PhaseClock and prints, over the
 * counting batches, the median and total time of each phase: data (read + preprocess), forward
 * (the pass with its per-point reductions, waited for), counting (readback and folding into
 * bitsets or counts); then the masking (once). `auto` takes tfjs-node-gpu when it is installed,
 * so a GPU worker's machine runs the same command and reads the same table. Writes
 * bench/results/phases-<backend>[-tau<T>].json.
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_DECOMPOSE_OPTIONS, PhaseClock, decompose, type BatchTimes } from '../src/engine';
import type { TfjsRuntime } from '../src/config/tfjs-runtime';
import { CIFAR_PREPROCESSING, cifarRecords, loadResnet, machine, median, memorySource, table, writeJson } from './lib';

export interface PhasesOptions {
  readonly samples: number;
  readonly tau: number;
  readonly batch?: number;
}

const PHASES = ['data', 'forward', 'counting'] as const;

export async function runPhases(opts: PhasesOptions, runtime: TfjsRuntime): Promise<void> {
  const backend = tf.getBackend();
  const train = cifarRecords('data_batch_1.bin');
  const source = memorySource(train.images);
  const model = await loadResnet();
  const options = {
    ...DEFAULT_DECOMPOSE_OPTIONS,
    preprocessing: CIFAR_PREPROCESSING,
    samplesPerClass: opts.samples,
    tau: opts.tau,
    ...(opts.batch !== undefined ? { batchSize: opts.batch } : {}),
  };
  // A warm-up run: kernels, allocator and (on a GPU) autotuning settle before the timed one.
  await decompose(model, source, train.labels, { ...options, samplesPerClass: 9 });
  const clock = new PhaseClock();
  const t0 = performance.now();
  const result = await decompose(model, source, train.labels, { ...options, clock });
  const wall = performance.now() - t0;

  const batches = clock.batches;
  const total = (p: (typeof PHASES)[number]) => batches.reduce((a, b) => a + b[p], 0);
  const full = batches.filter((b) => b.inputs === Math.max(...batches.map((x) => x.inputs)));
  const perInput = (b: BatchTimes, p: (typeof PHASES)[number]) => (b[p] / b.inputs) * 1000;
  const rows = PHASES.map((p) => [
    p,
    median(full.map((b) => b[p])).toFixed(2),
    median(batches.map((b) => perInput(b, p))).toFixed(1),
    (total(p) / 1000).toFixed(2),
    `${((100 * total(p)) / wall).toFixed(1)} %`,
  ]);
  rows.push(['masking (once)', '', '', (clock.masking / 1000).toFixed(2), `${((100 * clock.masking) / wall).toFixed(1)} %`]);
  const timed = PHASES.reduce((a, p) => a + total(p), 0) + clock.masking;
  rows.push(['other (sampling, heads, progress)', '', '', ((wall - timed) / 1000).toFixed(2), `${((100 * (wall - timed)) / wall).toFixed(1)} %`]);
  console.log(
    `\nbackend ${backend} (${runtime.package} ${runtime.version}); ResNet-20, S = ${opts.samples}, tau ${opts.tau}; ` +
      `${batches.length} batches (${full.length} of ${full[0]?.inputs ?? 0} inputs), ${result.inputsRun} inputs, ${(wall / 1000).toFixed(2)} s`,
  );
  console.log(table(['phase', 'median ms per full batch', 'median us per input', 'total s', 'share of the run'], rows));
  const file = writeJson(`phases-${backend}${opts.tau !== 0 ? `-tau${opts.tau}` : ''}.json`, {
    benchmark: 'phases',
    when: new Date().toISOString(),
    machine: machine(),
    backend,
    package: runtime.package,
    version: runtime.version,
    samplesPerClass: opts.samples,
    tau: opts.tau,
    inputsRun: result.inputsRun,
    wallSeconds: wall / 1000,
    totalsSeconds: Object.fromEntries(PHASES.map((p) => [p, total(p) / 1000])),
    maskingSeconds: clock.masking / 1000,
    batches,
  });
  console.log(`wrote ${file}`);
}
