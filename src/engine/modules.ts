/**
 * Running modules (ALGORITHM.md section 5): a module is the model with its masks multiplied in at
 * the observation points, then its 2-unit head.
 *
 * Post-activation masks (the default) run through DivergentRunner: the model runs once and each
 * (input, module) pair only computes on its own from the first point where its masks change a
 * value (divergence.ts). Pre-activation masks run the naive way, which is also kept for checks:
 * the input is repeated once per module and each slice gets its own masks by broadcasting.
 */
import * as tf from '@tensorflow/tfjs';
import { DivergentRunner } from './divergence';
import { runToFeatures, type ModelPlan } from './graph';
import { marginWeights, type ModuleHead } from './head';

export type MaskPoint = 'post-activation' | 'pre-activation';

export interface ModuleSpec {
  /** Per observation point, per unit: 1 kept, 0 masked. */
  readonly masks: readonly Uint8Array[];
  readonly head: ModuleHead;
}

/**
 * Mask and head tensors of a set of modules, built once and reused across batches. The specs'
 * masks are read again when the naive path first runs: they must not change after construction.
 */
export class ModuleRunner {
  /** The naive path's [M, 1, ...] masks: built on its first use (the shared run has its own). */
  private naive?: { readonly post: (tf.Tensor | undefined)[]; readonly pre: Map<string, tf.Tensor> };
  private readonly d: tf.Tensor2D;
  private readonly e: tf.Tensor1D;
  private readonly divergent?: DivergentRunner;
  readonly size: number;

  constructor(
    private readonly plan: ModelPlan,
    private readonly modules: readonly ModuleSpec[],
    private readonly maskPoint: MaskPoint = 'post-activation',
    options: { readonly sharedRun?: boolean } = {},
  ) {
    this.size = modules.length;
    const w = modules.map((m) => marginWeights(m.head));
    this.d = tf.tensor2d(w.flatMap((x) => Array.from(x.d)), [modules.length, w[0]?.d.length ?? 0]);
    this.e = tf.tensor1d(w.map((x) => x.e));
    // sharedRun: false forces the naive path (benchmarks compare the two).
    if (maskPoint === 'post-activation' && modules.length > 0 && options.sharedRun !== false) {
      this.divergent = new DivergentRunner(plan, modules.map((m) => m.masks), this.d, this.e);
    }
  }

  /** The naive path's masks, built on first use. */
  private naiveMasks(): NonNullable<ModuleRunner['naive']> {
    if (this.naive) return this.naive;
    const post: (tf.Tensor | undefined)[] = [];
    const pre = new Map<string, tf.Tensor>();
    const modules = this.modules;
    this.plan.observationPoints.forEach((p, i) => {
      // A point no module masks needs no multiply at all.
      if (modules.every((m) => m.masks[i].every((v) => v === 1))) return;
      const data = new Float32Array(modules.length * p.units);
      modules.forEach((m, g) => data.set(m.masks[i], g * p.units));
      const mask = tf.tensor(data, [modules.length, 1, ...p.shape]);
      if (this.maskPoint === 'post-activation') post[i] = mask;
      else pre.set(p.preActivationLayer, this.combine(pre.get(p.preActivationLayer), mask));
    });
    this.naive = { post, pre };
    return this.naive;
  }

  /**
   * Inputs per `margins` call that keep a call near `rows` model rows: the naive path runs
   * inputs x modules rows; the shared run ~3-4 rows per input on ResNet-20 (1 + the diverged pairs'
   * share), 1 + modules in the worst case.
   */
  inputsPerPass(rows = 256): number {
    return Math.max(1, Math.floor(rows / (this.divergent ? 4 : Math.max(1, this.size))));
  }

  /** Divergence counts of the shared-run path since construction (undefined on the naive path). */
  get divergenceStats(): DivergentRunner['stats'] | undefined {
    return this.divergent?.stats;
  }

  private combine(a: tf.Tensor | undefined, b: tf.Tensor): tf.Tensor {
    if (!a) return b;
    const c = a.mul(b);
    a.dispose();
    b.dispose();
    return c;
  }

  /**
   * Module margins m_c(x) = z_c - z_uc for every input and module.
   * @param x preprocessed inputs [B, ...]
   * @returns [B, M] margins; the caller owns the tensor.
   */
  margins(x: tf.Tensor): tf.Tensor2D {
    if (this.divergent) return tf.tensor2d(this.divergent.margins(x), [x.shape[0], this.size]);
    return this.marginsNaive(x);
  }

  /** The same margins by M full passes (the input repeated once per module): the reference. */
  marginsNaive(x: tf.Tensor): tf.Tensor2D {
    const { post, pre } = this.naiveMasks();
    return tf.tidy(() => {
      const b = x.shape[0];
      const m = this.size;
      const repeated = tf.concat(new Array(m).fill(x), 0);
      const features = runToFeatures(this.plan, repeated, { groups: m, postMasks: post, preMasks: pre });
      const f = features.reshape([m, b, -1]);
      const margins = f.mul(this.d.expandDims(1)).sum(-1).add(this.e.expandDims(1));
      return margins.transpose() as tf.Tensor2D;
    });
  }

  /** Masked activations of every module at every observation point, for checks: [M*B, ...] each. */
  observe(x: tf.Tensor, visit: (point: number, value: tf.Tensor) => void): void {
    const { post, pre } = this.naiveMasks();
    tf.tidy(() => {
      const repeated = tf.concat(new Array(this.size).fill(x), 0);
      runToFeatures(this.plan, repeated, { groups: this.size, postMasks: post, preMasks: pre, observe: visit });
    });
  }

  dispose(): void {
    this.divergent?.dispose();
    this.naive?.post.forEach((t) => t?.dispose());
    this.naive?.pre.forEach((t) => t.dispose());
    this.naive = undefined;
    this.d.dispose();
    this.e.dispose();
  }
}

/** Ranks by margin (never by the saturating probability): top-k module positions per input. */
export function rankByMargin(margins: Float32Array, modules: number, k: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < margins.length / modules; i++) {
    const row = margins.subarray(i * modules, (i + 1) * modules);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    out.push(order.slice(0, k));
  }
  return out;
}
