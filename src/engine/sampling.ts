/**
 * Concern and tangling samples (ALGORITHM.md section 2). Each class's inputs are shuffled once
 * with the seed; a module's concern samples are the first s of its class, its tangling samples the
 * first u of every other class. So one pass over each class's first max(s, u) inputs serves all.
 */
import { shuffled } from './random';

export interface SamplingOptions {
  readonly samplesPerClass: number;
  readonly tanglingRatio: number;
  readonly seed: number;
}

export interface SamplingPlan {
  readonly numClasses: number;
  /** Per class: its shuffled input indices (all of them, possibly filtered by the caller). */
  readonly pools: number[][];
  /** Per class c: |S_c|. */
  readonly concern: number[];
  /** Per class c: how many inputs of each other class its tangling set takes (before capping by pool size). */
  readonly tanglingPerClass: number[];
}

/** Shuffled per-class pools of `labels` (indices into the dataset). */
export function classPools(labels: ArrayLike<number>, numClasses: number, seed: number): number[][] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y >= 0 && y < numClasses) byClass[y].push(i);
  }
  // A distinct, reproducible stream per class.
  return byClass.map((idx, k) => shuffled(idx, (seed * 1_000_003 + k * 7919) >>> 0));
}

export function planSamples(pools: number[][], opts: SamplingOptions): SamplingPlan {
  const n = pools.length;
  const concern = pools.map((p) => Math.min(opts.samplesPerClass, p.length));
  const tanglingPerClass = concern.map((s) => (n > 1 ? Math.max(1, Math.floor((s * opts.tanglingRatio) / (n - 1))) : 0));
  return { numClasses: n, pools, concern, tanglingPerClass };
}

/** |U_c|: the tangling samples module c actually gets (each other class capped by its pool). */
export function tanglingCount(plan: SamplingPlan, c: number): number {
  let total = 0;
  for (let k = 0; k < plan.numClasses; k++) if (k !== c) total += Math.min(plan.tanglingPerClass[c], plan.pools[k].length);
  return total;
}

/** Per class k: the prefix lengths of its pool whose activity counts some module needs. */
export function checkpoints(plan: SamplingPlan, modules: readonly number[]): number[][] {
  return plan.pools.map((pool, k) => {
    const marks = new Set<number>();
    if (modules.includes(k)) marks.add(plan.concern[k]);
    for (const c of modules) if (c !== k) marks.add(Math.min(plan.tanglingPerClass[c], pool.length));
    marks.delete(0);
    return [...marks].sort((a, b) => a - b);
  });
}
