/**
 * Compaction of a decomposition's modules: each module is cut and re-fitted on its own
 * calibration inputs, the decomposition's concern and tangling samples (ALGORITHM.md section 2):
 * the first `calibration` inputs of its class and an equal number spread over the other classes,
 * from the same seeded class pools the decomposition drew from.
 */
import type * as tf from '@tensorflow/tfjs';
import { toTensor, type SampleSource } from '../activity';
import { ModelPlan } from '../graph';
import type { ModuleSpec } from '../modules';
import type { PreprocessingSpec } from '../preprocess';
import { classPools } from '../sampling';
import { compactModule, type CompactModule, type CompactOptions } from './compact';

export interface CompactDecompositionOptions extends CompactOptions {
  /** Concern inputs per module (tangling inputs: as many, spread over the other classes). */
  readonly calibration: number;
  /** The decomposition's seed: calibration inputs are its first samples. */
  readonly seed: number;
  readonly preprocessing: PreprocessingSpec;
}

/** The calibration inputs of module `c`: concern first, then tangling, class by class. */
export function calibrationIndices(pools: readonly number[][], c: number, perClass: number): number[] {
  const n = pools.length;
  const out = pools[c].slice(0, perClass);
  const each = n > 1 ? Math.max(1, Math.ceil(perClass / (n - 1))) : 0;
  for (let k = 0; k < n; k++) if (k !== c) out.push(...pools[k].slice(0, each));
  return out;
}

/**
 * @param modules the mask modules, with their class index
 * @param onModule called after each module with how many are done
 */
export async function compactModules(
  model: tf.LayersModel,
  source: SampleSource,
  labels: ArrayLike<number>,
  modules: readonly (ModuleSpec & { readonly classIndex: number })[],
  options: CompactDecompositionOptions,
  onModule?: (done: number) => Promise<void> | void,
): Promise<{ modules: CompactModule[]; calibrationInputs: number }> {
  const plan = new ModelPlan(model);
  const pools = classPools(labels, plan.headWeights().classes, options.seed);
  const out: CompactModule[] = [];
  const distinct = new Set<number>();
  try {
    for (const m of modules) {
      const idx = calibrationIndices(pools, m.classIndex, options.calibration);
      for (const i of idx) distinct.add(i);
      const x = toTensor(plan, await source.read(idx), idx.length, source.imageShape, options.preprocessing);
      try {
        out.push(await compactModule(model, m, x, options));
      } finally {
        x.dispose();
      }
      await onModule?.(out.length);
    }
  } catch (err) {
    // The networks made so far would otherwise outlive a failed (or cancelled) job in the worker.
    for (const cm of out) cm.model.dispose();
    throw err;
  }
  return { modules: out, calibrationInputs: distinct.size };
}
