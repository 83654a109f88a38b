/**
 * P2 groundwork: where do modules first diverge from the base model? (bench/README.md, P2.)
 *
 * With post-activation masks a module computes exactly the model's values until the first
 * observation point where some unit it masks is active (> 0) in the model. This script decomposes
 * ResNet-20 like the P2 bench (tau 0, S samples per class of data_batch_1), runs the model on the
 * first N test images and records, per (input, module), that first divergence point d(x, m)
 * (one matMul of the [B x U] activity indicator with the [U x M] masked-unit indicator per point).
 * It then prints the distribution of d and the theoretical cost of an exact "run the base once,
 * continue each (input, module) pair only from its divergence point" scheme, in FLOPs (conv/dense
 * multiply-adds) and in the measured time of each plan step:
 *   cost per input = 1 + sum over modules of (fraction of the work after d(x, m)),
 * ratio = 1 / cost (the ideal base/composition throughput ratio, ignoring gather/bookkeeping).
 *
 *   npx tsx bench/p2-divergence.ts [--samples 300] [--test 500] [--backend auto]
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_DECOMPOSE_OPTIONS, ModelPlan, decompose } from '../src/engine';
import { toTensor } from '../src/engine/activity';
import { CIFAR_PREPROCESSING, IMAGE_SHAPE, PER_IMAGE, cifarRecords, loadResnet, memorySource, now, parseArgs, selectBackend, table, writeJson } from './lib';

function stepFlops(plan: ModelPlan): number[] {
  return plan.steps.map((s) => {
    const out = plan.shapes.get(s.output) as number[];
    const outUnits = out.reduce((a, b) => a + b, 1);
    if (s.className === 'Conv2D') {
      const [kh, kw, cin] = (s.layer.getWeights()[0].shape as number[]).slice(0, 3);
      return outUnits * kh * kw * cin;
    }
    if (s.className === 'Dense') return outUnits * (s.layer.getWeights()[0].shape[0] as number);
    return 0;
  });
}

/** Median ms of each plan step on a batch (run step by step, each timed with a readback). */
function stepTimes(plan: ModelPlan, x: tf.Tensor, reps: number): number[] {
  const times: number[][] = plan.steps.map(() => []);
  for (let r = 0; r <= reps; r++) {
    tf.tidy(() => {
      const values = new Map<string, tf.Tensor>([[plan.inputKey, x]]);
      plan.steps.forEach((step, i) => {
        const args = step.inputs.map((k) => values.get(k) as tf.Tensor);
        const t0 = now();
        const out = step.layer.apply(args.length === 1 ? args[0] : args, { training: false }) as tf.Tensor;
        out.dataSync();
        if (r > 0) times[i].push((now() - t0) * 1000);
        values.set(step.output, out);
      });
    });
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), { samples: 'number', test: 'number', backend: 'string', batch: 'number' });
  const S = (args.samples as number | undefined) ?? 300;
  const N = (args.test as number | undefined) ?? 500;
  const batch = (args.batch as number | undefined) ?? 100;
  await selectBackend((args.backend as string | undefined) ?? 'auto');
  const backend = tf.getBackend();
  const train = cifarRecords('data_batch_1.bin');
  const test = cifarRecords('test_batch.bin', N);
  const model = await loadResnet();
  const plan = new ModelPlan(model);
  const t0 = now();
  const dec = await decompose(model, memorySource(train.images), train.labels, {
    ...DEFAULT_DECOMPOSE_OPTIONS,
    preprocessing: CIFAR_PREPROCESSING,
    samplesPerClass: S,
    tau: 0,
  });
  console.log(`backend ${backend}; decomposed (S = ${S}) in ${(now() - t0).toFixed(1)} s`);
  const M = dec.modules.length;
  const P = plan.observationPoints.length;

  // Per point: masked units per module, channels masked at every position, first point any module masks.
  const maskStats = plan.observationPoints.map((p, i) => {
    const ch = p.shape[p.shape.length - 1];
    const masked = dec.modules.map((m) => p.units - m.kept[i]);
    const fullChannels = dec.modules.map((m) => {
      let n = 0;
      for (let c = 0; c < ch; c++) {
        let all = true;
        for (let u = c; u < p.units && all; u += ch) all = m.masks[i][u] === 0;
        if (all) n++;
      }
      return n;
    });
    let maskedByAll = 0;
    for (let u = 0; u < p.units; u++) if (dec.modules.every((m) => m.masks[i][u] === 0)) maskedByAll++;
    return {
      point: p.layer,
      units: p.units,
      maskedByAll,
      maskedMean: masked.reduce((a, b) => a + b, 0) / M,
      maskedMin: Math.min(...masked),
      maskedMax: Math.max(...masked),
      fullyMaskedChannelsMean: fullChannels.reduce((a, b) => a + b, 0) / M,
      channels: ch,
    };
  });

  // Two references: the model itself, and the "shared" run that multiplies in the units EVERY module
  // masks (kept = kept by some module); a module equals the shared run until a unit it masks but
  // another module keeps is active there.
  const firstDivergence = (shared: boolean): Int32Array => {
    const keptAny = plan.observationPoints.map((p, i) => {
      const k = new Uint8Array(p.units);
      if (!shared) return k.fill(1);
      dec.modules.forEach((m) => m.masks[i].forEach((v, u) => (k[u] |= v)));
      return k;
    });
    const sharedMasks = keptAny.map((k, i) =>
      shared && k.some((v) => v === 0) ? tf.tensor(Float32Array.from(k), [1, ...plan.observationPoints[i].shape]) : undefined,
    );
    const off = plan.observationPoints.map((p, i) => {
      const data = new Float32Array(p.units * M);
      dec.modules.forEach((m, j) => m.masks[i].forEach((v, u) => (data[u * M + j] = v || !keptAny[i][u] ? 0 : 1)));
      return tf.tensor2d(data, [p.units, M]);
    });
    const d = new Int32Array(N * M).fill(P);
    for (let s = 0; s < N; s += batch) {
      const b = Math.min(batch, N - s);
      const x = toTensor(plan, test.images.subarray(s * PER_IMAGE, (s + b) * PER_IMAGE), b, IMAGE_SHAPE, CIFAR_PREPROCESSING);
      const hits: tf.Tensor[] = [];
      tf.tidy(() => {
        const values = new Map<string, tf.Tensor>([[plan.inputKey, x]]);
        for (const step of plan.steps) {
          const argsT = step.inputs.map((k) => values.get(k) as tf.Tensor);
          let out = step.layer.apply(argsT.length === 1 ? argsT[0] : argsT, { training: false }) as tf.Tensor;
          if (step.observation !== undefined) {
            hits[step.observation] = tf.keep(tf.matMul(out.greater(0).cast('float32').reshape([b, -1]), off[step.observation]));
            const sm = sharedMasks[step.observation];
            if (sm) out = out.mul(sm);
          }
          values.set(step.output, out);
        }
      });
      const all = tf.stack(hits);
      const h = all.dataSync();
      all.dispose();
      hits.forEach((t) => t.dispose());
      x.dispose();
      for (let k = P - 1; k >= 0; k--) for (let i = 0; i < b; i++) for (let j = 0; j < M; j++) if (h[(k * b + i) * M + j] > 0) d[(s + i) * M + j] = k;
    }
    off.forEach((t) => t.dispose());
    sharedMasks.forEach((t) => t?.dispose());
    return d;
  };
  const dModel = firstDivergence(false);
  const dShared = firstDivergence(true);

  // Remaining-work fractions after each observation point's step (FLOPs and measured step times).
  const flops = stepFlops(plan);
  const xb = toTensor(plan, test.images.subarray(0, 100 * PER_IMAGE), Math.min(100, N), IMAGE_SHAPE, CIFAR_PREPROCESSING);
  const ms = stepTimes(plan, xb, 5);
  xb.dispose();
  const obsStep = plan.observationPoints.map((_, k) => plan.steps.findIndex((st) => st.observation === k));
  const frac = (w: number[]) => {
    const total = w.reduce((a, b) => a + b, 0);
    // Work from the divergence step on: the masked observation output itself is a multiply; the
    // steps after it all run again for the pair.
    return obsStep.map((si) => w.slice(si + 1).reduce((a, b) => a + b, 0) / total).concat([0]);
  };
  const rf = frac(flops);
  const rt = frac(ms);
  const summarize = (d: Int32Array) => {
    const hist = new Array<number>(P + 1).fill(0);
    d.forEach((k) => hist[k]++);
    const perModule = dec.modules.map((_, j) => {
      const h = new Array<number>(P + 1).fill(0);
      for (let i = 0; i < N; i++) h[d[i * M + j]]++;
      return h;
    });
    let costF = 0;
    let costT = 0;
    d.forEach((k) => {
      costF += rf[k];
      costT += rt[k];
    });
    return { histogram: hist, perModule, costFlops: 1 + costF / N, costTime: 1 + costT / N, idealRatioFlops: N / (N + costF), idealRatioTime: N / (N + costT) };
  };
  const vsModel = summarize(dModel);
  const vsShared = summarize(dShared);

  console.log(`
First divergence point d(x, m) over ${N} test images x ${M} modules: from the model, and from the shared run (units every module masks multiplied in)`);
  const cum = (h: number[], k: number) => ((100 * h.slice(0, k + 1).reduce((a, b) => a + b, 0)) / (N * M)).toFixed(1);
  console.log(
    table(
      [
        'point',
        'layer',
        'units',
        'masked (mean/module)',
        'masked by all',
        'full channels',
        'd = k (model)',
        'cum %',
        'd = k (shared)',
        'cum %',
        'work after (FLOPs)',
        'work after (time)',
      ],
      [...plan.observationPoints.map((p) => p.layer), 'never'].map((name, k) => {
        const st = maskStats[k];
        return [
          k < P ? k : '-',
          name,
          st ? st.units : '',
          st ? st.maskedMean.toFixed(1) : '',
          st ? st.maskedByAll : '',
          st ? `${st.fullyMaskedChannelsMean.toFixed(1)}/${st.channels}` : '',
          vsModel.histogram[k],
          cum(vsModel.histogram, k),
          vsShared.histogram[k],
          cum(vsShared.histogram, k),
          rf[k].toFixed(3),
          rt[k].toFixed(3),
        ];
      }),
    ),
  );
  for (const [name, r] of [
    ['model', vsModel],
    ['shared run', vsShared],
  ] as const) {
    console.log(
      `theoretical composition cost from the ${name} (reference = 1): FLOPs ${r.costFlops.toFixed(3)} -> ratio ${r.idealRatioFlops.toFixed(3)}; step times ${r.costTime.toFixed(3)} -> ratio ${r.idealRatioTime.toFixed(3)}`,
    );
  }
  console.log(`naive: ${M} passes -> ratio ${(1 / M).toFixed(3)}`);
  console.log(`step times (ms, batch 100): ${ms.map((v, i) => `${plan.steps[i].layer.name}=${v.toFixed(1)}`).join(' ')}`);
  const file = writeJson(`p2-divergence-${backend}.json`, {
    when: new Date().toISOString(),
    backend,
    samplesPerClass: S,
    testImages: N,
    modules: M,
    fromModel: vsModel,
    fromShared: vsShared,
    maskStats,
    remainingFlopsFraction: rf,
    remainingTimeFraction: rt,
    stepMs: ms,
  });
  console.log(`wrote ${file}`);
  model.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
