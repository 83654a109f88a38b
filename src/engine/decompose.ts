/**
 * Decomposition (ALGORITHM.md sections 2-4): concern identification + tangling identification by
 * shared per-class activity counts, then the 2-unit head of each module (with MC-BLN when asked).
 */
import * as tf from '@tensorflow/tfjs';
import { countClass, everActiveClasses, toTensor, unitValues, type Counts, type SampleSource } from './activity';
import { backtrackMasks } from './backtrack';
import { countKept } from './mask-count';
import { EngineError } from './errors';
import { ModelPlan, type ObservationPoint } from './graph';
import { moduleHead, type ModuleHead } from './head';
import type { MaskPoint } from './modules';
import { decomposeBatchSize } from './defaults';
export { DEFAULT_DECOMPOSE_OPTIONS, DECOMPOSE_BATCH_SIZE } from './defaults';
import { predictBatched } from './evaluate';
import type { PhaseClock } from './phase-clock';
import type { PreprocessingSpec } from './preprocess';
import { checkpoints, classPools, planSamples, tanglingCount, type SamplingPlan } from './sampling';

export interface DecomposeOptions {
  readonly samplesPerClass: number;
  readonly tanglingRatio: number;
  readonly tau: number;
  readonly maskPoint: MaskPoint;
  readonly backtrack: 'none' | 'last-layer' | 'input';
  readonly delta: number;
  readonly confidentOnly: boolean;
  readonly seed: number;
  /** Classes to make modules for (default: all). */
  readonly classes?: readonly number[];
  /** Inputs per forward pass (default decomposeBatchSize): engine tuning, not a user option. */
  readonly batchSize?: number;
  /** Times every counting batch's phases and the masking (benches: it waits for each forward pass). */
  readonly clock?: PhaseClock;
  readonly preprocessing: PreprocessingSpec;
}

export interface DecomposedModule {
  readonly classIndex: number;
  /** Per observation point, per unit: 1 kept, 0 masked. */
  readonly masks: Uint8Array[];
  readonly head: ModuleHead;
  readonly concernSamples: number;
  readonly tanglingSamples: number;
  /** Kept units per observation point. */
  readonly kept: number[];
}

export interface Decomposition {
  readonly observationPoints: readonly ObservationPoint[];
  readonly modules: DecomposedModule[];
  /** Distinct inputs that went through the model (the cost unit of the decomposition). */
  readonly inputsRun: number;
}

export type DecomposeProgress = (stage: 'sampling' | 'observing' | 'masking', fraction: number) => Promise<void> | void;

/**
 * @param labels the label of every input `source` can read
 * @throws EngineError when the model cannot be decomposed or the data has no input of a class
 */
export async function decompose(
  model: tf.LayersModel,
  source: SampleSource,
  labels: ArrayLike<number>,
  options: DecomposeOptions,
  onProgress?: DecomposeProgress,
): Promise<Decomposition> {
  const plan = new ModelPlan(model);
  const numClasses = plan.headWeights().classes;
  const classes = options.classes ?? Array.from({ length: numClasses }, (_, i) => i);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= numClasses)
      throw new EngineError('LABEL_OUT_OF_RANGE', `class ${c} is not one of the model's ${numClasses} classes`);
  }
  const batchSize = options.batchSize ?? decomposeBatchSize(plan.observedUnits);
  await onProgress?.('sampling', 0);
  let pools = classPools(labels, numClasses, options.seed);
  if (options.confidentOnly) pools = await correctOnly(plan, source, pools, options, batchSize);
  for (const c of classes) {
    if (pools[c].length === 0) throw new EngineError('LABEL_OUT_OF_RANGE', `the dataset has no usable input of class ${c}`);
  }
  const sampling = planSamples(pools, options);
  const marks = checkpoints(sampling, classes);
  const total = marks.reduce((s, m) => s + (m.length ? m[m.length - 1] : 0), 0);

  let done = 0;
  const countOptions = {
    preprocessing: options.preprocessing,
    batchSize,
    ...(options.clock ? { clock: options.clock } : {}),
    onBatch: async (n: number) => {
      done += n;
      await onProgress?.('observing', done / total);
    },
  };
  let counts: Map<number, Counts>[];
  if (options.tau === 0) {
    // tau = 0 only asks whether a unit was ever active: the cheaper bitsets, every class in one stream.
    counts = await everActiveClasses(
      plan,
      source,
      pools.map((pool, k) => ({ pool, marks: marks[k] })),
      countOptions,
    );
  } else {
    counts = [];
    for (let k = 0; k < numClasses; k++) counts[k] = marks[k].length ? await countClass(plan, source, pools[k], marks[k], countOptions) : new Map();
  }

  await onProgress?.('masking', 0);
  options.clock?.start();
  const head = plan.headWeights();
  const totals = new Map<number, { sum: Int32Array[]; included: Set<number> }>();
  const modules = classes.map((c) => {
    const found = moduleMasks(plan, sampling, counts, c, options.tau, totals);
    const mHead = moduleHead(head, c, options.backtrack === 'none' ? undefined : options.delta);
    const masks = options.backtrack === 'none' ? found.masks : backtrackMasks(plan, found.masks, mHead.removedFeatures, options.backtrack);
    const tangling = found.tangling;
    return {
      classIndex: c,
      masks,
      head: mHead,
      concernSamples: sampling.concern[c],
      tanglingSamples: tangling,
      kept: masks.map(countKept),
    };
  });
  options.clock?.endMasking();
  return { observationPoints: plan.observationPoints, modules, inputsRun: total };
}

/**
 * A unit is kept when active on more than tau of the module's concern + tangling samples.
 * Module c's tangling activity is the sum over classes k != c of class k's counts after u_c inputs.
 * Summing those per module costs classes^2 x units (1000 classes: billions of additions), so the
 * sum over every class is made once per distinct u (`totals`) and class c's own part subtracted
 * where it was included (it is when class c also recorded a count after u inputs).
 */
function moduleMasks(
  plan: ModelPlan,
  sampling: SamplingPlan,
  counts: Map<number, Counts>[],
  c: number,
  tau: number,
  totals: Map<number, { sum: Int32Array[]; included: Set<number> }>,
): { masks: Uint8Array[]; tangling: number } {
  const u = sampling.tanglingPerClass[c];
  const widest = Math.max(0, ...plan.observationPoints.map((p) => p.units));
  const [scratchA, scratchB] = [new Int32Array(widest), new Int32Array(widest)];
  let total = totals.get(u);
  if (!total) {
    const sum = plan.observationPoints.map((p) => new Int32Array(p.units));
    const included = new Set<number>();
    for (let k = 0; k < sampling.numClasses; k++) {
      const part = counts[k].get(Math.min(u, sampling.pools[k].length));
      if (!part || Math.min(u, sampling.pools[k].length) === 0) continue;
      included.add(k);
      part.forEach((p, i) => {
        const s = sum[i];
        const v = unitValues(p, scratchA);
        for (let j = 0; j < s.length; j++) s[j] += v[j];
      });
    }
    total = { sum, included };
    totals.set(u, total);
  }
  const concern = counts[c].get(sampling.concern[c]) as Counts;
  const own = total.included.has(c) ? (counts[c].get(Math.min(u, sampling.pools[c].length)) as Counts) : undefined;
  const tangling = tanglingCount(sampling, c);
  const threshold = tau * (sampling.concern[c] + tangling);
  const masks = plan.observationPoints.map((p, i) => {
    const m = new Uint8Array(p.units);
    const con = unitValues(concern[i], scratchA);
    const sum = total.sum[i];
    const mine = own ? unitValues(own[i], scratchB) : undefined;
    // Active on concern + tangling samples: the concern counts, plus every class's tangling
    // counts, less this class's own share of those. Counts are integers, so "> threshold" is
    // "> floor(threshold)", i.e. the sign bit of floor(threshold) - active: branch-free, as a
    // branch per unit mispredicts on activity data (masking 100 ResNet-18 modules: 6.4 s -> 5.0 s).
    const floor = Math.floor(threshold);
    if (mine) for (let j = 0; j < m.length; j++) m[j] = (floor - (con[j] + sum[j] - mine[j])) >>> 31;
    else for (let j = 0; j < m.length; j++) m[j] = (floor - (con[j] + sum[j])) >>> 31;
    return m;
  });
  return { masks, tangling };
}

/** Keeps, per class, the inputs the model classifies correctly (in pool order). */
async function correctOnly(plan: ModelPlan, source: SampleSource, pools: number[][], options: DecomposeOptions, batchSize: number): Promise<number[][]> {
  const out: number[][] = [];
  for (let k = 0; k < pools.length; k++) {
    const keep: number[] = [];
    const want = options.samplesPerClass;
    for (let s = 0; s < pools[k].length && keep.length < want; s += batchSize) {
      const idx = pools[k].slice(s, s + batchSize);
      const x = toTensor(plan, await source.read(idx), idx.length, source.imageShape, options.preprocessing);
      const pred = tf.tidy(() => predictBatched(plan.model, x).argMax(-1).dataSync());
      x.dispose();
      idx.forEach((i, j) => {
        if (pred[j] === k) keep.push(i);
      });
    }
    out.push(keep);
  }
  return out;
}
