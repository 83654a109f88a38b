/**
 * The full ResNet-20 run (ALGORITHM.md section 8): decompose with S samples per class from
 * CIFAR-10 data_batch_1 and evaluate the composition of all 10 modules on the test set, for
 *   - tau 0, 0.05, 0.1 with post-activation masking and margin ranking (the service's rule);
 *   - (a) pre-activation masking, tau 0 (the paper's literal rule);
 *   - (b) probability ranking: tau 0's masks and margins, modules ranked by float32
 *     P_c = 1/(1+exp(-margin)) (Math.fround), ties broken by module order (the paper's vote).
 *
 *   tsx bench/resnet-full.ts                         # S = 1000, all 10,000 test images (20-40 min)
 *   tsx bench/resnet-full.ts --test 2000             # the first 2,000 test images
 *   tsx bench/resnet-full.ts --samples 100 --test 200 --backend wasm
 *
 * Other options: --batch N (decomposition batch), --chunk N (inputs per runner.margins call),
 * --variants tau0,tau0.05,tau0.1,pre,prob (a subset; prob needs tau0), --out NAME (file name in
 * bench/results, default resnet-full.json). The JSON is rewritten after every variant, so partial
 * results survive.
 */
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import {
  DECOMPOSE_BATCH_SIZE,
  DEFAULT_DECOMPOSE_OPTIONS,
  ModelPlan,
  ModuleRunner,
  decompose,
  evaluateModules,
  maskJaccard,
  topK,
  type CompositionMetrics,
  type Decomposition,
  type LabelledBatch,
  type MaskPoint,
} from '../src/engine';
import {
  CIFAR_PREPROCESSING,
  IMAGE_SHAPE,
  PER_IMAGE,
  cifarRecords,
  loadResnet,
  machine,
  memorySource,
  now,
  parseArgs,
  pct,
  peakRssKiB,
  selectBackend,
  table,
  writeJson,
  type Records,
} from './lib';

/** A runner that also keeps every margins row and the model's top-1, for re-ranking afterwards. */
class CapturingRunner extends ModuleRunner {
  readonly margins_: Float32Array[] = [];
  readonly modelTop1: number[] = [];

  constructor(
    private readonly planRef: ModelPlan,
    modules: ConstructorParameters<typeof ModuleRunner>[1],
    maskPoint: MaskPoint,
    private readonly capture: boolean,
  ) {
    super(planRef, modules, maskPoint);
  }

  override margins(x: tf.Tensor): tf.Tensor2D {
    const t = super.margins(x);
    if (!this.capture) return t;
    this.margins_.push((t.dataSync() as Float32Array).slice());
    const top = tf.tidy(() => (this.planRef.model.predict(x) as tf.Tensor).argMax(-1).dataSync());
    top.forEach((v) => this.modelTop1.push(v));
    return t;
  }
}

async function* batches(records: Records, n: number, size = 500): AsyncIterable<LabelledBatch> {
  for (let s = 0; s < n; s += size) {
    const e = Math.min(n, s + size);
    yield { images: records.images.subarray(s * PER_IMAGE, e * PER_IMAGE), labels: records.labels.subarray(s, e) };
  }
}

/**
 * float32 P_c = 1/(1+exp(-margin)) with every operation rounded to float32, as a float32 sigmoid or
 * 2-unit softmax computes it: 1 + exp(-m) rounds to 1 once exp(-m) <= 2^-24, i.e. margin >= ~16.6.
 */
function probability32(m: number): number {
  const e = Math.fround(Math.exp(Math.fround(-m)));
  return Math.fround(1 / Math.fround(1 + e));
}

/** The same probability computed in float64 and rounded once to float32 (saturates at ~17.3). */
function probability32RoundedOnce(m: number): number {
  return Math.fround(1 / (1 + Math.exp(-m)));
}

interface ProbabilityRanking {
  semantics: string;
  top1: number;
  top5: number;
  agreement: number;
  /** Inputs where two or more modules have P_c exactly 1.0 in float32. */
  saturatedTies: number;
  /** Inputs whose top-1 differs from margin ranking. */
  changedTop1: number;
  /** Of those, how many margin ranking had right and probability ranking wrong (and vice versa). */
  lostCorrect: number;
  gainedCorrect: number;
  /** Quantiles of the winning (largest) margin per input, and how often it saturates float32 P_c. */
  topMarginQuantiles: { p10: number; p50: number; p90: number; max: number };
  topMarginAbove17: number;
  /** Inputs whose winning P_c is exactly 1.0f. */
  winnerSaturated: number;
}

function probabilityRanking(
  runner: CapturingRunner,
  labels: Int32Array,
  classes: readonly number[],
  semantics: string,
  prob: (m: number) => number,
): ProbabilityRanking {
  const m = classes.length;
  const rows = runner.margins_.flatMap((chunk) => Array.from({ length: chunk.length / m }, (_, i) => chunk.subarray(i * m, (i + 1) * m)));
  let top1 = 0;
  let top5 = 0;
  let agree = 0;
  let saturatedTies = 0;
  let changedTop1 = 0;
  let lostCorrect = 0;
  let gainedCorrect = 0;
  let winnerSaturated = 0;
  const topMargins: number[] = [];
  rows.forEach((row, i) => {
    topMargins.push(Math.max(...row));
    const y = labels[i];
    const p = Array.from(row, prob);
    const byP = topK(p, 5);
    const pTop = byP.map((j) => classes[j]);
    const mTop1 = classes[topK(row, 1)[0]];
    if (pTop[0] === y) top1++;
    if (pTop.includes(y)) top5++;
    if (pTop[0] === runner.modelTop1[i]) agree++;
    if (p.filter((v) => v === 1).length >= 2) saturatedTies++;
    if (p[byP[0]] === 1) winnerSaturated++;
    if (pTop[0] !== mTop1) {
      changedTop1++;
      if (mTop1 === y) lostCorrect++;
      if (pTop[0] === y) gainedCorrect++;
    }
  });
  const n = rows.length;
  topMargins.sort((a, b) => a - b);
  const q = (f: number) => topMargins[Math.min(n - 1, Math.floor(f * n))];
  return {
    semantics,
    top1: top1 / n,
    top5: top5 / n,
    agreement: agree / n,
    saturatedTies,
    changedTop1,
    lostCorrect,
    gainedCorrect,
    topMarginQuantiles: { p10: q(0.1), p50: q(0.5), p90: q(0.9), max: topMargins[n - 1] },
    topMarginAbove17: topMargins.filter((v) => v > 17).length,
    winnerSaturated,
  };
}

function meanKeptFraction(d: Decomposition): number {
  const total = d.observationPoints.reduce((a, p) => a + p.units, 0);
  return d.modules.reduce((a, mod) => a + mod.kept.reduce((x, y) => x + y, 0) / total, 0) / d.modules.length;
}

function sameMasks(a: Decomposition, b: Decomposition): boolean {
  return a.modules.every((m, i) => m.masks.every((mask, p) => mask.every((v, u) => v === b.modules[i].masks[p][u])));
}

interface VariantResult {
  variant: string;
  tau: number;
  maskPoint: MaskPoint;
  ranking: 'margin' | 'probability';
  count: number;
  model: { top1: number; top5: number };
  composed: { top1: number; top5: number };
  cost: { top1: number; top5: number };
  agreement: number;
  meanKeptFraction: number;
  minKeptFraction: number;
  maxKeptFraction: number;
  jaccardPairwise: number;
  meanOneVsRest: number;
  decompositionSeconds: number;
  evaluationSeconds: number;
  note?: string;
  probability?: ProbabilityRanking;
  /** The same ranking with P_c computed in float64 and rounded once to float32. */
  probabilityRoundedOnce?: ProbabilityRanking;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), {
    samples: 'number',
    test: 'number',
    backend: 'string',
    batch: 'number',
    chunk: 'number',
    variants: 'string',
    out: 'string',
  });
  const outName = (args.out as string | undefined) ?? 'resnet-full.json';
  const S = (args.samples as number | undefined) ?? 1000;
  const T = Math.min(10_000, (args.test as number | undefined) ?? 10_000);
  const batchSize = (args.batch as number | undefined) ?? DECOMPOSE_BATCH_SIZE;
  const chunk = args.chunk as number | undefined;
  const wanted = new Set(((args.variants as string | undefined) ?? 'tau0,tau0.05,tau0.1,pre,prob').split(','));
  if (wanted.has('prob')) wanted.add('tau0');
  const runtime = await selectBackend((args.backend as string | undefined) ?? 'auto');
  const backend = tf.getBackend();
  console.log(
    `backend ${backend} (${runtime.package}); samplesPerClass ${S}; test images ${T}; variants ${[...wanted].join(',')}; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  const t0 = now();
  const train = cifarRecords('data_batch_1.bin');
  const test = cifarRecords('test_batch.bin', T);
  const source = memorySource(train.images);
  const model = await loadResnet();
  const plan = new ModelPlan(model);
  const classes = Array.from({ length: 10 }, (_, i) => i);
  const base = { ...DEFAULT_DECOMPOSE_OPTIONS, preprocessing: CIFAR_PREPROCESSING, samplesPerClass: S, batchSize };
  // Warm-up (kernels of both the counting and the module pass).
  const warm = await decompose(model, source, train.labels, { ...base, samplesPerClass: 9 });
  const wr = new ModuleRunner(plan, warm.modules);
  await evaluateModules(plan, wr, batches(test, Math.min(T, 50)), {
    imageShape: IMAGE_SHAPE,
    preprocessing: CIFAR_PREPROCESSING,
    moduleClasses: classes,
    chunk,
  });
  wr.dispose();
  console.log(`setup + warm-up ${(now() - t0).toFixed(1)} s`);

  const results: VariantResult[] = [];
  const save = () =>
    writeJson(outName, {
      when: new Date().toISOString(),
      machine: machine(),
      backend,
      package: runtime.package,
      samplesPerClass: S,
      decompositionData: 'data_batch_1.bin',
      testImages: T,
      testData: 'test_batch.bin (first N, official order)',
      batchSize,
      peakRssKiB: peakRssKiB().maxRSS,
      elapsedSeconds: now() - t0,
      results,
    });

  const runVariant = async (
    variant: string,
    tau: number,
    maskPoint: MaskPoint,
    capture = false,
  ): Promise<{ d: Decomposition; runner: CapturingRunner; metrics: CompositionMetrics }> => {
    const s0 = now();
    const d = await decompose(model, source, train.labels, { ...base, tau, maskPoint });
    const decompositionSeconds = now() - s0;
    const runner = new CapturingRunner(plan, d.modules, maskPoint, capture);
    const e0 = now();
    let last = e0;
    const metrics = await evaluateModules(plan, runner, batches(test, T), {
      imageShape: IMAGE_SHAPE,
      preprocessing: CIFAR_PREPROCESSING,
      moduleClasses: d.modules.map((m) => m.classIndex),
      chunk,
      total: T,
      onProgress: (done) => {
        if (now() - last > 60) {
          last = now();
          console.log(`  ${variant}: evaluated ${done}/${T} (${(now() - e0).toFixed(0)} s)`);
        }
      },
    });
    const evaluationSeconds = now() - e0;
    const total = d.observationPoints.reduce((a, p) => a + p.units, 0);
    const fractions = d.modules.map((m) => m.kept.reduce((a, b) => a + b, 0) / total);
    results.push({
      variant,
      tau,
      maskPoint,
      ranking: 'margin',
      count: metrics.count,
      model: metrics.model,
      composed: { top1: metrics.composed.top1, top5: metrics.composed.top5 },
      cost: { top1: metrics.model.top1 - metrics.composed.top1, top5: metrics.model.top5 - metrics.composed.top5 },
      agreement: metrics.agreement,
      meanKeptFraction: meanKeptFraction(d),
      minKeptFraction: Math.min(...fractions),
      maxKeptFraction: Math.max(...fractions),
      jaccardPairwise: maskJaccard(d.modules.map((m) => m.masks)).meanPairwise,
      meanOneVsRest: metrics.oneVsRest.reduce((a, b) => a + b, 0) / metrics.oneVsRest.length,
      decompositionSeconds,
      evaluationSeconds,
    });
    console.log(
      `${variant}: composed ${pct(metrics.composed.top1)} vs model ${pct(metrics.model.top1)}, agreement ${pct(metrics.agreement)}, kept ${meanKeptFraction(d).toFixed(4)}, decompose ${decompositionSeconds.toFixed(1)} s, evaluate ${evaluationSeconds.toFixed(1)} s`,
    );
    save();
    return { d, runner, metrics };
  };

  let tau0: Decomposition | undefined;
  if (wanted.has('tau0')) {
    const r = await runVariant('tau 0', 0, 'post-activation', wanted.has('prob'));
    if (wanted.has('prob'))
      results[results.length - 1].note = 'evaluation time includes one extra model.predict per chunk (captured for the probability re-ranking)';
    tau0 = r.d;
    if (wanted.has('prob')) {
      const p = probabilityRanking(r.runner, test.labels, classes, 'float32 operations: fround(1 / fround(1 + fround(exp(fround(-m)))))', probability32);
      const once = probabilityRanking(r.runner, test.labels, classes, 'float64, rounded once: fround(1 / (1 + exp(-m)))', probability32RoundedOnce);
      const m = results[results.length - 1];
      results.push({
        ...m,
        variant: '(b) probability ranking, tau 0',
        ranking: 'probability',
        composed: { top1: p.top1, top5: p.top5 },
        cost: { top1: m.model.top1 - p.top1, top5: m.model.top5 - p.top5 },
        agreement: p.agreement,
        meanOneVsRest: m.meanOneVsRest,
        note: 'same masks and the same evaluation pass as tau 0 (its margins re-ranked in float32 probability); times are those of tau 0',
        probability: p,
        probabilityRoundedOnce: once,
      });
      console.log(
        `prob: winning margin p10/p50/p90/max ${Object.values(p.topMarginQuantiles)
          .map((v) => v.toFixed(1))
          .join('/')}, > 17 on ${p.topMarginAbove17}`,
      );
      console.log(`prob (rounded once): composed ${pct(once.top1)}; ${once.saturatedTies} ties at 1.0f`);
      console.log(
        `prob: composed ${pct(p.top1)}; winner at 1.0f on ${p.winnerSaturated}; ${p.saturatedTies} inputs with >= 2 modules at P = 1.0f; top-1 changed on ${p.changedTop1} (lost ${p.lostCorrect}, gained ${p.gainedCorrect})`,
      );
      save();
    }
    r.runner.dispose();
  }
  for (const tau of [0.05, 0.1]) {
    if (!wanted.has(`tau${tau}`)) continue;
    (await runVariant(`tau ${tau}`, tau, 'post-activation')).runner.dispose();
  }
  if (wanted.has('pre')) {
    const r = await runVariant('(a) pre-activation, tau 0', 0, 'pre-activation');
    if (tau0) results[results.length - 1].note = `masks ${sameMasks(r.d, tau0) ? 'identical to' : 'DIFFERENT from'} tau 0's`;
    r.runner.dispose();
    save();
  }
  model.dispose();

  const rss = peakRssKiB();
  console.log(`\nResNet-20 / CIFAR-10: decomposed with ${S} samples per class of data_batch_1, evaluated on the first ${T} test images (${backend})`);
  console.log(
    table(
      ['variant', 'model top1', 'model top5', 'comp top1', 'comp top5', 'cost top1', 'agreement', 'kept', 'decomp s', 'eval s'],
      results.map((r) => [
        r.variant,
        pct(r.model.top1),
        pct(r.model.top5),
        pct(r.composed.top1),
        pct(r.composed.top5),
        `${(100 * r.cost.top1).toFixed(2)} pt`,
        pct(r.agreement),
        r.meanKeptFraction.toFixed(4),
        r.ranking === 'probability' ? '(shared)' : r.decompositionSeconds.toFixed(1),
        r.ranking === 'probability' ? '(shared)' : r.evaluationSeconds.toFixed(1),
      ]),
    ),
  );
  results.filter((r) => r.note).forEach((r) => console.log(`note, ${r.variant}: ${r.note}`));
  const prob = results.find((r) => r.probability)?.probability;
  const once = results.find((r) => r.probabilityRoundedOnce)?.probabilityRoundedOnce;
  if (once)
    console.log(
      `probability ranking, P_c rounded once to float32 instead: composed top-1 ${pct(once.top1)}, top-5 ${pct(once.top5)}, ${once.saturatedTies} saturated ties`,
    );
  if (prob)
    console.log(
      `probability ranking (float32 ops): winning P_c = 1.0f on ${prob.winnerSaturated} inputs; ${prob.saturatedTies} of ${T} inputs have >= 2 modules at P_c = 1.0f; its top-1 differs from margin ranking on ${prob.changedTop1} (margin right/prob wrong ${prob.lostCorrect}, the reverse ${prob.gainedCorrect})`,
    );
  console.log(`peak RSS ${(rss.maxRSS / 1024).toFixed(1)} MiB; total ${(now() - t0).toFixed(1)} s`);
  console.log(`wrote ${save()}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
