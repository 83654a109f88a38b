/**
 * Benchmark P2: throughput of a 10-module ResNet-20 composition (margins of all modules + top-5
 * ranking, through the service's compositionMargins) divided by the model's own throughput
 * (toTensor + model.predict(x, {batchSize}) + readback) on the same backend in the same process,
 * batch by batch interleaved, median of rounds. The composition runs two ways: the engine's
 * ModuleRunner (shared model run, divergence.ts) and the naive runner (input repeated per
 * module, the paper's design: ratio ~0.1). Both must rank identically (top-1 and top-5).
 *
 *   npm run bench -- --only p2 [--test 1000] [--chunk 100] [--rounds 3] [--samples 1000] [--backend auto]
 *
 * The modules are decomposed with the service's default options (samplesPerClass 1000, tau 0)
 * unless --samples is given: fewer samples leave more units masked that test inputs activate, so
 * more (input, module) pairs leave the shared run. Writes bench/results/p2-<backend>.json for the
 * default S, p2-<backend>-s<S>.json otherwise.
 */
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, ModuleRunner, compositionMargins, decompose, rankByMargin, type ModuleGroup } from '../src/engine';
import { toTensor } from '../src/engine/activity';
import {
  CIFAR_PREPROCESSING,
  IMAGE_SHAPE,
  PER_IMAGE,
  cifarRecords,
  interleave,
  loadResnet,
  machine,
  median,
  memorySource,
  now,
  table,
  writeJson,
  type Step,
} from './lib';

export interface P2Options {
  readonly samples: number;
  readonly test: number;
  readonly chunk: number;
  readonly rounds: number;
}

export async function runP2(opts: P2Options, runtimePackage: string): Promise<void> {
  const backend = tf.getBackend();
  const { samples: S, test: N, chunk, rounds } = opts;
  console.log(
    `\nP2: backend ${backend}; decomposition S = ${S} (tau 0); ${N} test images in batches of ${chunk}; ${rounds} interleaved rounds; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const train = cifarRecords('data_batch_1.bin');
  const test = cifarRecords('test_batch.bin', N);
  const model = await loadResnet();
  const plan = new ModelPlan(model);
  const dec = await decompose(model, memorySource(train.images), train.labels, {
    ...DEFAULT_DECOMPOSE_OPTIONS,
    preprocessing: CIFAR_PREPROCESSING,
    samplesPerClass: S,
    tau: 0,
  });
  const k = dec.modules.length;
  const positions = dec.modules.map((_, j) => j);
  const shared = new ModuleRunner(plan, dec.modules);
  const naive = new ModuleRunner(plan, dec.modules, 'post-activation', { sharedRun: false });
  const group = (runner: ModuleRunner): ModuleGroup[] => [{ plan, runner, preprocessing: CIFAR_PREPROCESSING, positions }];

  const batches: { images: Uint8Array; n: number; start: number }[] = [];
  for (let s = 0; s < N; s += chunk) {
    const n = Math.min(chunk, N - s);
    batches.push({ images: test.images.subarray(s * PER_IMAGE, (s + n) * PER_IMAGE), n, start: s });
  }
  const margins = { shared: new Float32Array(N * k), naive: new Float32Array(N * k) };
  const top = { shared: [] as number[][], naive: [] as number[][] };
  const modelTop1 = new Int32Array(N);
  const modelStep = (b: (typeof batches)[number]): Step => ({
    run: async () => {
      const x = toTensor(plan, b.images, b.n, IMAGE_SHAPE, CIFAR_PREPROCESSING);
      const y = model.predict(x, { batchSize: b.n }) as tf.Tensor;
      const p = y.argMax(-1);
      modelTop1.set(p.dataSync() as Int32Array, b.start);
      [x, y, p].forEach((t) => t.dispose());
    },
  });
  const compositionStep = (name: 'shared' | 'naive', runner: ModuleRunner, b: (typeof batches)[number]): Step => ({
    run: async () => {
      const m = compositionMargins(group(runner), k, b.images, b.n, IMAGE_SHAPE);
      const ranked = rankByMargin(m, k, 5);
      margins[name].set(m, b.start * k);
      ranked.forEach((r, i) => (top[name][b.start + i] = r));
    },
  });

  // Warm-up: one batch of each (kernels, allocations).
  const w0 = now();
  for (const s of [modelStep(batches[0]), compositionStep('shared', shared, batches[0]), compositionStep('naive', naive, batches[0])]) await s.run();
  console.log(`P2 warm-up ${(now() - w0).toFixed(1)} s`);
  const st0 = shared.divergenceStats!;
  const before = { divergedAt: st0.divergedAt.slice(), rowsAt: st0.rowsAt.slice(), leftRowAt: st0.leftRowAt.slice(), pairs: st0.pairs };

  const times: Record<'model' | 'shared' | 'naive', number[]> = { model: [], shared: [], naive: [] };
  for (let r = 0; r < rounds; r++) {
    const t = await interleave({
      model: batches.map(modelStep),
      shared: batches.map((b) => compositionStep('shared', shared, b)),
      naive: batches.map((b) => compositionStep('naive', naive, b)),
    });
    (Object.keys(times) as (keyof typeof times)[]).forEach((key) => times[key].push(t[key]));
    console.log(
      `P2 round ${r + 1}: model ${t.model.toFixed(2)} s, composition (shared run) ${t.shared.toFixed(2)} s, composition (naive) ${t.naive.toFixed(2)} s`,
    );
  }
  const stats = shared.divergenceStats!;
  const perRoundOf = (now: number[], was: number[]) => now.map((c, i) => (c - was[i]) / rounds);
  const divergedAt = perRoundOf(stats.divergedAt, before.divergedAt);
  const rowsAt = perRoundOf(stats.rowsAt, before.rowsAt);
  const leftRowAt = perRoundOf(stats.leftRowAt, before.leftRowAt);
  const pairs = (stats.pairs - before.pairs) / rounds;
  const branchRows = rowsAt.reduce((a, b) => a + b, 0);

  // Predictions unchanged: the shared run ranks exactly as the naive runner (top-1 and top-5 order).
  let top1Equal = 0;
  let top5Equal = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < N; i++) {
    if (top.shared[i][0] === top.naive[i][0]) top1Equal++;
    if (top.shared[i].every((v, j) => v === top.naive[i][j])) top5Equal++;
  }
  margins.shared.forEach((v, i) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - margins.naive[i]))));
  let agreeModel = 0;
  let correctModel = 0;
  let correctComp = 0;
  for (let i = 0; i < N; i++) {
    if (top.shared[i][0] === modelTop1[i]) agreeModel++;
    if (modelTop1[i] === test.labels[i]) correctModel++;
    if (dec.modules[top.shared[i][0]].classIndex === test.labels[i]) correctComp++;
  }
  const unchanged = top1Equal === N && top5Equal === N && maxAbsDiff < 1e-4;

  const tm = median(times.model);
  const ts = median(times.shared);
  const tn = median(times.naive);
  // Each round interleaves the three batch by batch, so a round's ratio compares like with like;
  // the reported ratio is the median over rounds.
  const perRound = times.model.map((m, r) => ({ shared: m / times.shared[r], naive: m / times.naive[r] }));
  const ratio = median(perRound.map((p) => p.shared));
  const ratioNaive = median(perRound.map((p) => p.naive));
  const divergedPairs = divergedAt.reduce((a, b) => a + b, 0);
  console.log('\nBenchmark P2: composition throughput / model throughput (ResNet-20, 10 modules, CIFAR-10 test)');
  console.log(
    table(
      ['measure', 'value'],
      [
        ['backend', `${backend} (${runtimePackage})`],
        ['test images x rounds', `${N} x ${rounds} (batches of ${chunk})`],
        ['model (predict) seconds, median', `${tm.toFixed(2)}  [${times.model.map((v) => v.toFixed(2)).join(', ')}]`],
        ['composition, shared run, seconds', `${ts.toFixed(2)}  [${times.shared.map((v) => v.toFixed(2)).join(', ')}]`],
        ['composition, naive, seconds', `${tn.toFixed(2)}  [${times.naive.map((v) => v.toFixed(2)).join(', ')}]`],
        [
          'RATIO composition / model throughput (shared run)',
          `${ratio.toFixed(3)}  (median; per round ${perRound.map((p) => p.shared.toFixed(3)).join(', ')}; target >= 0.5: ${ratio >= 0.5 ? 'PASS' : 'FAIL'})`,
        ],
        ['ratio, naive runner (the paper design)', `${ratioNaive.toFixed(3)}  (median; per round ${perRound.map((p) => p.naive.toFixed(3)).join(', ')})`],
        ['speed-up shared / naive', (tn / ts).toFixed(2)],
        [
          'PREDICTIONS UNCHANGED (shared = naive)',
          `${unchanged ? 'YES' : 'NO'}: top-1 equal ${top1Equal}/${N}, top-5 order equal ${top5Equal}/${N}, max |margin diff| ${maxAbsDiff.toExponential(2)}`,
        ],
        ['(input, module) pairs branched off the model', `${divergedPairs} of ${pairs} (${((100 * divergedPairs) / pairs).toFixed(1)} %) per round`],
        [
          'rows run besides the model (shared by modules)',
          `${branchRows} per round = ${(branchRows / N).toFixed(3)} per input (by point: ${rowsAt.join(' ')})`,
        ],
        ['pairs that left a shared row later', `${leftRowAt.reduce((a, b) => a + b, 0)} per round`],
        [
          'passes (all rounds, warm-up included): shared run',
          `${shared.passStats.sharedPasses} shared + ${shared.passStats.naivePasses} naive, ${shared.passStats.stoppedPasses} stopped at the row budget; largest ${shared.passStats.maxRows} rows; ${(shared.passStats.rowsPerInput ?? 0).toFixed(3)} rows per input (moving average)`,
        ],
        ['passes (all rounds, warm-up included): naive', `${naive.passStats.naivePasses} of at most ${naive.passStats.maxRows} rows`],
        [
          'composition top-1 / model top-1 / agreement',
          `${((100 * correctComp) / N).toFixed(2)} % / ${((100 * correctModel) / N).toFixed(2)} % / ${((100 * agreeModel) / N).toFixed(2)} %`,
        ],
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
  const suffix = S === DEFAULT_DECOMPOSE_OPTIONS.samplesPerClass ? '' : `-s${S}`;
  const file = writeJson(`p2-${backend}${suffix}.json`, {
    benchmark: 'P2',
    when: new Date().toISOString(),
    machine: machine(),
    backend,
    package: runtimePackage,
    samplesPerClass: S,
    testImages: N,
    batch: chunk,
    rounds,
    modules: k,
    modelSeconds: times.model,
    sharedSeconds: times.shared,
    naiveSeconds: times.naive,
    ratio,
    ratioNaive,
    ratioOfMedianTimes: tm / ts,
    ratioPerRound: perRound,
    target: 0.5,
    pass: ratio >= 0.5,
    predictionsUnchanged: unchanged,
    top1Equal,
    top5Equal,
    maxAbsMarginDiff: maxAbsDiff,
    pairsPerRound: pairs,
    divergedPairsPerRound: divergedPairs,
    divergedAtPerRound: divergedAt,
    branchRowsPerRound: branchRows,
    rowsAtPerRound: rowsAt,
    leftRowAtPerRound: leftRowAt,
    passStats: { shared: shared.passStats, naive: naive.passStats },
    compositionTop1: correctComp / N,
    modelTop1: correctModel / N,
    agreementWithModel: agreeModel / N,
    loadavgAtEnd: os.loadavg(),
  });
  console.log(`\nwrote ${file}`);
  shared.dispose();
  naive.dispose();
  model.dispose();
  if (!unchanged) throw new Error('P2: the shared run changed predictions');
}
