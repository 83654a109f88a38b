/**
 * Benchmark "compact": compact modules (src/engine/compact) of ResNet-20 on CIFAR-10. One
 * decomposition of data_batch_1 (samplesPerClass S, tau 0) is compacted under a grid of FLOPs
 * budgets x criteria x allocations x re-fit on/off (x ridge x calibration x rows per layer), and per
 * configuration it measures on the first N test images:
 *  - achieved FLOPs and params fractions (mean over the 10 modules);
 *  - the 10-module composition's top-1/top-5 (argmax over the compact modules' margins), beside the
 *    mask modules (100 % FLOPs) and the model itself;
 *  - the compaction wall time of the 10 modules and its ratio to one plain forward pass
 *    (toTensor + model.predict + readback, batches of 128) over the distinct calibration inputs,
 *    timed right before it in the same process; also (decomposition + compaction) / that pass;
 *  - the cat+dog pair (classes 3 and 5): the 2-module compact composition's accuracy on the test
 *    images of those classes against the model restricted to {3, 5}, and the throughput of the two
 *    compact modules (one ModuleRunner per module, each its own small network) against
 *    model.predict on the same images, batch by batch interleaved.
 *
 *   npm run bench -- --only compact                          # default grid, all 10,000 test images
 *   npm run bench -- --only compact --test 2000 --budgets 0.5,0.25 --criteria energy --refit on
 *
 * Flags (lists are comma-separated): --samples S (default DEFAULT_DECOMPOSE_OPTIONS.samplesPerClass),
 * --test N, --budgets, --criteria activation-rate|energy|taylor, --allocations uniform|global,
 * --refit on|off, --ridge, --calibration, --rows (rowsPerLayer), --pair-images N (throughput
 * images, default 1000), --out NAME. Without --criteria/--allocations/--refit the default grid is
 * every criterion with re-fit plus energy without, all with the engine's default allocation; with
 * any of them, the cross product of the given lists (defaults: all criteria, the default
 * allocation, on).
 * Writes bench/results/compact-<backend>.json (or --out) after every configuration.
 */
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { DEFAULT_COMPACT_OPTIONS, DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, ModuleRunner, decompose, rankByMargin, type SampleSource } from '../src/engine';
import { toTensor } from '../src/engine/activity';
import { COMPACT_ALLOCATIONS, type CompactAllocation } from '../src/engine/compact/allocation';
import type { CompactModule } from '../src/engine/compact/compact';
import { COMPACT_CRITERIA, type CompactCriterion } from '../src/engine/compact/criteria';
import { calibrationIndices, compactModules } from '../src/engine/compact/decomposition';
import { classPools } from '../src/engine/sampling';
import { CIFAR_PREPROCESSING, IMAGE_SHAPE, cifarRecords, interleave, loadResnet, machine, memorySource, now, pct, table, writeJson, type Step } from './lib';

export interface CompactBenchOptions {
  readonly samples: number;
  readonly test: number;
  readonly budgets: readonly number[];
  /** Explicit grid (criterion x allocation x refit), from the flags or the default. */
  readonly grid: readonly { criterion: CompactCriterion; allocation: CompactAllocation; refit: boolean }[];
  readonly ridge: readonly number[];
  readonly calibration: readonly number[];
  readonly rows: readonly (number | undefined)[];
  readonly pairImages: number;
  readonly out?: string;
}

const PAIR = [3, 5] as const;
const BATCH = 128;
const EVAL_CHUNK = 500;

function list<T>(value: unknown, parse: (s: string) => T, fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(parse);
}

function oneOf<T extends string>(allowed: readonly T[], what: string): (s: string) => T {
  return (s) => {
    if (!allowed.includes(s as T)) throw new Error(`--${what}: ${s} is not one of ${allowed.join('|')}`);
    return s as T;
  };
}

function num(what: string): (s: string) => number {
  return (s) => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new Error(`--${what}: ${s} is not a number`);
    return n;
  };
}

/** The bench's options from run.ts's parsed flags. */
export function compactOptions(args: Record<string, string | number | boolean>): CompactBenchOptions {
  const explicit = args.criteria !== undefined || args.allocations !== undefined || args.refit !== undefined;
  const criteria = list(args.criteria, oneOf(COMPACT_CRITERIA, 'criteria'), COMPACT_CRITERIA);
  const allocations = list<CompactAllocation>(args.allocations, oneOf(COMPACT_ALLOCATIONS, 'allocations'), [DEFAULT_COMPACT_OPTIONS.allocation]);
  const refits = list(args.refit, oneOf(['on', 'off'] as const, 'refit'), ['on']).map((r) => r === 'on');
  const grid = explicit
    ? criteria.flatMap((criterion) => allocations.flatMap((allocation) => refits.map((refit) => ({ criterion, allocation, refit }))))
    : [
        ...COMPACT_CRITERIA.map((criterion) => ({ criterion, allocation: DEFAULT_COMPACT_OPTIONS.allocation, refit: true })),
        { criterion: 'energy' as CompactCriterion, allocation: DEFAULT_COMPACT_OPTIONS.allocation, refit: false },
      ];
  return {
    samples: (args.samples as number | undefined) ?? DEFAULT_DECOMPOSE_OPTIONS.samplesPerClass,
    test: (args.test as number | undefined) ?? 10_000,
    budgets: list(args.budgets, num('budgets'), [0.75, 0.5, 0.35, 0.25, 0.15]),
    grid,
    ridge: list(args.ridge, num('ridge'), [1e-3]),
    calibration: list(args.calibration, num('calibration'), [256]),
    rows: list(args.rows, num('rows'), [undefined as number | undefined]),
    pairImages: (args['pair-images'] as number | undefined) ?? 1000,
    out: args.out as string | undefined,
  };
}

/** Top-1 / top-5 of [n x classes] scores against labels. */
function topAccuracy(scores: Float32Array, classes: number, labels: Int32Array): { top1: number; top5: number } {
  const ranks = rankByMargin(scores, classes, 5);
  let t1 = 0;
  let t5 = 0;
  ranks.forEach((r, i) => {
    if (r[0] === labels[i]) t1++;
    if (r.includes(labels[i])) t5++;
  });
  return { top1: t1 / labels.length, top5: t5 / labels.length };
}

/** Accuracy of argmax over the pair's columns on the images of the pair's classes (ties: the first class). */
function pairAccuracy(scores: Float32Array, classes: number, labels: Int32Array, idx: readonly number[]): number {
  let ok = 0;
  for (const i of idx) {
    const a = scores[i * classes + PAIR[0]];
    const b = scores[i * classes + PAIR[1]];
    if ((a >= b ? PAIR[0] : PAIR[1]) === labels[i]) ok++;
  }
  return ok / idx.length;
}

/** Rows [s, s + n) of x, run through `fn`, collected as one [N x width] Float32Array. */
function chunked(x: tf.Tensor, width: number, fn: (part: tf.Tensor) => tf.Tensor): Float32Array {
  const n = x.shape[0];
  const out = new Float32Array(n * width);
  for (let s = 0; s < n; s += EVAL_CHUNK) {
    const m = Math.min(EVAL_CHUNK, n - s);
    const part = x.slice(s, m);
    const y = fn(part);
    out.set(y.dataSync() as Float32Array, s * width);
    tf.dispose([part, y]);
  }
  return out;
}

function predict(model: tf.LayersModel, x: tf.Tensor): tf.Tensor {
  return model.predict(x, { batchSize: x.shape[0] }) as tf.Tensor;
}

/** One plain forward pass over `idx` (read, toTensor, predict, read back) in batches of 128: the time unit. */
async function forwardSeconds(model: tf.LayersModel, plan: ModelPlan, source: SampleSource, idx: readonly number[]): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = now();
  for (let s = 0; s < idx.length; s += BATCH) {
    const part = idx.slice(s, s + BATCH);
    const x = toTensor(plan, await source.read(part), part.length, IMAGE_SHAPE, CIFAR_PREPROCESSING);
    const y = predict(model, x);
    y.dataSync();
    tf.dispose([x, y]);
  }
  return { wall: now() - t0, cpu: cpuSince(c0) };
}

/** User + system CPU seconds of this process (all its threads) since `c0`. */
function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

interface ConfigResult {
  criterion: CompactCriterion;
  allocation: CompactAllocation;
  refit: boolean;
  ridge: number;
  calibration: number;
  rowsPerLayer: number | null;
  budget: number;
  flopsFraction: number;
  flopsFractionMin: number;
  flopsFractionMax: number;
  paramsFraction: number;
  top1: number;
  top5: number;
  pairAccuracy: number;
  pairModulesImagesPerSecond: number;
  pairModelImagesPerSecond: number;
  pairThroughputRatio: number;
  /** The same with the two compact networks' predict alone (no masks, not the modules' margins). */
  pairNetworksThroughputRatio: number;
  compactionSeconds: number;
  calibrationInputs: number;
  forwardSeconds: number;
  /** Forward pass timed before and after the compaction (the ratio uses their mean). */
  forwardRuns: number[];
  compactionCpuSeconds: number;
  forwardCpuSeconds: number;
  ratio: number;
  cpuRatio: number;
  ratioWithDecomposition: number;
  /** Per module: output channels kept per Conv2D/Dense layer (order of `layers`). */
  kept: number[][];
}

export async function runCompact(opts: CompactBenchOptions, runtimePackage: string): Promise<void> {
  const t00 = now();
  const backend = tf.getBackend();
  const configs = opts.calibration.flatMap((calibration) =>
    opts.ridge.flatMap((ridge) =>
      opts.rows.flatMap((rows) => opts.grid.flatMap((g) => opts.budgets.map((budget) => ({ ...g, ridge, calibration, rows, budget })))),
    ),
  );
  console.log(
    `compact: backend ${backend} (${runtimePackage}); S = ${opts.samples}; ${opts.test} test images; ${configs.length} configurations; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const train = cifarRecords('data_batch_1.bin');
  const test = cifarRecords('test_batch.bin', opts.test);
  const source = memorySource(train.images);
  const model = await loadResnet();
  const plan = new ModelPlan(model);
  const classes = plan.headWeights().classes;
  const n = test.labels.length;
  const x = toTensor(plan, test.images, n, IMAGE_SHAPE, CIFAR_PREPROCESSING);
  const pairIdx = Array.from(test.labels.keys()).filter((i) => PAIR.includes(test.labels[i] as 3 | 5));

  // Warm-up, then the model and the mask modules.
  predict(model, x.slice(0, 8)).dispose();
  const modelScores = chunked(x, classes, (p) => predict(model, p));
  const modelAcc = topAccuracy(modelScores, classes, test.labels);
  const modelPair = pairAccuracy(modelScores, classes, test.labels, pairIdx);
  const d0 = now();
  const dec = await decompose(model, source, train.labels, { ...DEFAULT_DECOMPOSE_OPTIONS, preprocessing: CIFAR_PREPROCESSING, samplesPerClass: opts.samples });
  const decompositionSeconds = now() - d0;
  const maskRunner = new ModuleRunner(plan, dec.modules);
  const maskScores = chunked(x, classes, (p) => maskRunner.margins(p));
  const maskAcc = topAccuracy(maskScores, classes, test.labels);
  const maskPair = pairAccuracy(maskScores, classes, test.labels, pairIdx);
  console.log(
    `model top-1 ${pct(modelAcc.top1)} top-5 ${pct(modelAcc.top5)}; mask modules ${pct(maskAcc.top1)} / ${pct(maskAcc.top5)}; decomposition ${decompositionSeconds.toFixed(1)} s (${dec.inputsRun} inputs); cat/dog: model restricted ${pct(modelPair)}, mask modules ${pct(maskPair)} on ${pairIdx.length} images`,
  );

  const pools = classPools(train.labels, classes, DEFAULT_DECOMPOSE_OPTIONS.seed);
  const pairTiming = pairIdx.slice(0, opts.pairImages);
  const pairX = tf.gather(x, tf.tensor1d(pairTiming, 'int32'));
  const results: ConfigResult[] = [];
  let layerNames: string[] = [];
  const save = () =>
    writeJson(opts.out ?? `compact-${backend}.json`, {
      benchmark: 'compact',
      when: new Date().toISOString(),
      machine: machine(),
      backend,
      package: runtimePackage,
      samplesPerClass: opts.samples,
      testImages: n,
      decompositionSeconds,
      decompositionInputs: dec.inputsRun,
      model: { ...modelAcc, pairAccuracy: modelPair },
      maskModules: { ...maskAcc, pairAccuracy: maskPair, flopsFraction: 1 },
      pair: { classes: PAIR, testImages: pairIdx.length, timedImages: pairTiming.length },
      layers: layerNames,
      results,
      wallSeconds: now() - t00,
      loadavgAtEnd: os.loadavg(),
    });

  for (const c of configs) {
    const calIdx = [...new Set(Array.from({ length: classes }, (_, k) => calibrationIndices(pools, k, c.calibration)).flat())];
    const fwd0 = await forwardSeconds(model, plan, source, calIdx);
    const c0 = process.cpuUsage();
    const t0 = now();
    const { modules, calibrationInputs } = await compactModules(model, source, train.labels, dec.modules, {
      flops: c.budget,
      criterion: c.criterion,
      allocation: c.allocation,
      refit: c.refit,
      ridge: c.ridge,
      rowsPerLayer: c.rows,
      calibration: c.calibration,
      seed: DEFAULT_DECOMPOSE_OPTIONS.seed,
      preprocessing: CIFAR_PREPROCESSING,
    });
    const seconds = now() - t0;
    const cpu = cpuSince(c0);
    const fwd1 = await forwardSeconds(model, plan, source, calIdx);
    const fwd = (fwd0.wall + fwd1.wall) / 2;
    const fwdCpu = (fwd0.cpu + fwd1.cpu) / 2;
    if (calibrationInputs !== calIdx.length) console.warn(`warning: ${calibrationInputs} calibration inputs, the forward baseline ran ${calIdx.length}`);
    const runners = modules.map((m) => new ModuleRunner(new ModelPlan(m.model), [{ masks: m.masks, head: m.head }]));
    const cols = runners.map((r) => chunked(x, 1, (p) => r.margins(p)));
    const scores = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) for (let k = 0; k < classes; k++) scores[i * classes + k] = cols[k][i];
    const acc = topAccuracy(scores, classes, test.labels);
    const pairAcc = pairAccuracy(scores, classes, test.labels, pairIdx);
    const through = await pairThroughput(model, [runners[PAIR[0]], runners[PAIR[1]]], [modules[PAIR[0]].model, modules[PAIR[1]].model], pairX);
    layerNames = modules[0].layers.map((l) => l.layer);
    const frac = (m: CompactModule) => m.macs / m.modelMacs;
    const r: ConfigResult = {
      criterion: c.criterion,
      allocation: c.allocation,
      refit: c.refit,
      ridge: c.ridge,
      calibration: c.calibration,
      rowsPerLayer: c.rows ?? null,
      budget: c.budget,
      flopsFraction: mean(modules.map(frac)),
      flopsFractionMin: Math.min(...modules.map(frac)),
      flopsFractionMax: Math.max(...modules.map(frac)),
      paramsFraction: mean(modules.map((m) => m.params / m.modelParams)),
      top1: acc.top1,
      top5: acc.top5,
      pairAccuracy: pairAcc,
      pairModulesImagesPerSecond: pairTiming.length / through.modules,
      pairModelImagesPerSecond: pairTiming.length / through.model,
      pairThroughputRatio: through.model / through.modules,
      pairNetworksThroughputRatio: through.model / through.networks,
      compactionSeconds: seconds,
      calibrationInputs,
      forwardSeconds: fwd,
      forwardRuns: [fwd0.wall, fwd1.wall],
      compactionCpuSeconds: cpu,
      forwardCpuSeconds: fwdCpu,
      ratio: seconds / fwd,
      cpuRatio: cpu / fwdCpu,
      ratioWithDecomposition: (decompositionSeconds + seconds) / fwd,
      kept: modules.map((m) => m.layers.map((l) => l.kept)),
    };
    results.push(r);
    for (const m of modules) m.model.dispose();
    console.log(
      `${label(r)} budget ${r.budget}: flops ${pct(r.flopsFraction, 1)} params ${pct(r.paramsFraction, 1)} top-1 ${pct(r.top1)} top-5 ${pct(r.top5)} | cat/dog ${pct(r.pairAccuracy)} x${r.pairThroughputRatio.toFixed(2)} (networks alone x${r.pairNetworksThroughputRatio.toFixed(2)}) | ${seconds.toFixed(1)} s = ${r.ratio.toFixed(1)} x forward (${fwd0.wall.toFixed(2)}/${fwd1.wall.toFixed(2)} s, ${calibrationInputs} inputs), CPU ${r.cpuRatio.toFixed(1)} x`,
    );
    save();
  }
  tf.dispose([x, pairX]);
  maskRunner.dispose();

  console.log(`\nCompact modules (ResNet-20, ${n} CIFAR-10 test images, S = ${opts.samples}, ${backend})`);
  console.log(
    table(
      [
        'configuration',
        'budget',
        'FLOPs',
        'params',
        'top-1',
        'top-5',
        'vs model',
        'cat/dog',
        'vs restricted',
        'pair speed (nets alone)',
        'compaction',
        'ratio',
        'CPU ratio',
        '+decomp.',
      ],
      [
        ['model', '', '100%', '100%', pct(modelAcc.top1), pct(modelAcc.top5), '', pct(modelPair), '', '1.00x', '', '', '', ''],
        [
          'mask modules',
          '',
          '100%',
          '',
          pct(maskAcc.top1),
          pct(maskAcc.top5),
          pts(maskAcc.top1 - modelAcc.top1),
          pct(maskPair),
          pts(maskPair - modelPair),
          '',
          '',
          '',
          '',
          '',
        ],
        ...results.map((r) => [
          label(r),
          r.budget,
          pct(r.flopsFraction, 1),
          pct(r.paramsFraction, 1),
          pct(r.top1),
          pct(r.top5),
          pts(r.top1 - modelAcc.top1),
          pct(r.pairAccuracy),
          pts(r.pairAccuracy - modelPair),
          `${r.pairThroughputRatio.toFixed(2)}x (${r.pairNetworksThroughputRatio.toFixed(2)}x)`,
          `${r.compactionSeconds.toFixed(1)} s`,
          r.ratio.toFixed(1),
          r.cpuRatio.toFixed(1),
          r.ratioWithDecomposition.toFixed(1),
        ]),
      ],
    ),
  );
  const file = save();
  console.log(`\nwall time ${((now() - t00) / 60).toFixed(1)} min; wrote ${file}`);
}

function label(r: Pick<ConfigResult, 'criterion' | 'allocation' | 'refit' | 'ridge' | 'calibration' | 'rowsPerLayer'>): string {
  return `${r.criterion}/${r.allocation}/${r.refit ? 'refit' : 'cut'} r${r.ridge} c${r.calibration}${r.rowsPerLayer ? ` rows${r.rowsPerLayer}` : ''}`;
}

function pts(d: number): string {
  return `${d >= 0 ? '+' : ''}${(100 * d).toFixed(2)}`;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Seconds of model.predict vs the two modules' margins on the same images, batches of 100, interleaved. */
async function pairThroughput(
  model: tf.LayersModel,
  runners: ModuleRunner[],
  nets: tf.LayersModel[],
  x: tf.Tensor,
): Promise<{ model: number; modules: number; networks: number }> {
  const chunk = 100;
  const steps = (fn: (part: tf.Tensor) => void): Step[] => {
    const out: Step[] = [];
    for (let s = 0; s < x.shape[0]; s += chunk) {
      const m = Math.min(chunk, x.shape[0] - s);
      out.push({
        run: async () => {
          const part = x.slice(s, m);
          fn(part);
          part.dispose();
        },
      });
    }
    return out;
  };
  const model1 = steps((p) => {
    const y = predict(model, p);
    y.dataSync();
    y.dispose();
  });
  const modules1 = steps((p) => {
    for (const runner of runners) {
      const y = runner.margins(p);
      y.dataSync();
      y.dispose();
    }
  });
  // The compact networks alone (model.predict, no masks): how much of the modules' time the masks take.
  const nets1 = steps((p) => {
    for (const net of nets) {
      const y = predict(net, p);
      y.dataSync();
      y.dispose();
    }
  });
  // Warm-up of every path (first-call kernel setup) on one batch, then all batches timed.
  for (const seq of [model1, modules1, nets1]) await seq[0].run();
  const r = await interleave({ model: model1, modules: modules1, networks: nets1 });
  return { model: r.model, modules: r.modules, networks: r.networks };
}
