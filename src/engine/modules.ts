/**
 * Running modules (ALGORITHM.md section 5): a module is the model with its masks multiplied in at
 * the observation points, then its 2-unit head.
 *
 * Post-activation masks (the default) run through DivergentRunner: the model runs once and each
 * (input, module) pair only computes on its own from the first point where its masks change a
 * value (divergence.ts). Pre-activation masks run the naive way, which is also kept for checks:
 * the input is repeated once per module and each slice gets its own masks by broadcasting.
 *
 * Memory: `margins` takes any batch and cuts it into passes of at most `rowBudget` rows (the naive
 * path: inputs x modules; the shared run: model rows + branched rows, sized from the rows per
 * input it observed, a pass that would exceed the budget stopping at the observation point where
 * it would). When most pairs diverge the shared run costs more than the naive one (each pair then
 * has a row of its own, plus the model's and the branching), so above `naiveAbove` x modules rows
 * per input it gives way to the naive path, measuring again now and then. Same margins either way.
 * It does not when the naive masks ([M, 1, ...] float32) would pass DENSE_MASK_BYTES: one naive
 * pass of 1000 ImageNet-size modules would hold gigabytes per layer.
 */
import * as tf from '@tensorflow/tfjs';
import { DENSE_MASK_BYTES } from './defaults';
import { DivergentRunner } from './divergence';
import { runToFeatures, type ModelPlan } from './graph';
import { marginWeights, type ModuleHead } from './head';

export type MaskPoint = 'post-activation' | 'pre-activation';

export interface ModuleRunnerOptions {
  /** false forces the naive path (benchmarks compare the two). */
  readonly sharedRun?: boolean;
  /**
   * Rows one pass may hold (default 512): inputs x modules on the naive path, model rows +
   * branched rows on the shared run. `margins` cuts its batch into passes to stay within it; a
   * pass of one input may still need M (naive) or 1 + M (shared) rows.
   */
  readonly rowBudget?: number;
  /**
   * The shared run gives way to the naive path while the rows per input it observed exceed this
   * fraction of the module count (default 0.6): with that many diverged pairs its branching costs
   * more than it saves. It is tried again every PROBE_AFTER naive inputs. A runner where even one
   * row per input is over the limit (one module) has no shared run.
   */
  readonly naiveAbove?: number;
  /**
   * Bytes of float32 mask tensors the runner may build (default DENSE_MASK_BYTES): the shared run's
   * dense divergence test within it (bitsets past it), the naive fallback only when its masks fit.
   */
  readonly denseMaskBytes?: number;
}

/** How the passes ran since construction (`margins`, and `marginsNaive`'s naive passes). */
export interface PassStats {
  sharedPasses: number;
  naivePasses: number;
  /** Shared passes stopped at the row budget (their inputs then ran in smaller passes). */
  stoppedPasses: number;
  /** Most rows one completed pass held, either path. */
  maxRows: number;
  /** Moving average of the shared run's rows per input (undefined before its first pass). */
  rowsPerInput?: number;
}

/** Naive inputs after which the shared run is measured again. */
const PROBE_AFTER = 1024;

/** What gives module margins [n x M] for a preprocessed batch: a runner, or several side by side. */
export interface MarginSource {
  margins(x: tf.Tensor): tf.Tensor2D;
}

/** Runners side by side on the same input (compact modules each run their own network): margins concatenated in order. */
export class RunnerSet implements MarginSource {
  constructor(readonly runners: readonly ModuleRunner[]) {}

  margins(x: tf.Tensor): tf.Tensor2D {
    // Not in a tidy: a runner builds its mask tensors on first use and keeps them.
    const parts = this.runners.map((r) => r.margins(x));
    const out = tf.concat(parts, 1);
    tf.dispose(parts);
    return out;
  }

  dispose(): void {
    for (const r of this.runners) r.dispose();
  }
}

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
  private readonly rowBudget: number;
  private readonly naiveAbove: number;
  private naiveSinceProbe = 0;
  /** Whether the shared run may give way to the naive path (its [M, 1, ...] masks fit the dense limit). */
  private readonly naiveFallback: boolean;
  readonly size: number;
  readonly passStats: PassStats = { sharedPasses: 0, naivePasses: 0, stoppedPasses: 0, maxRows: 0 };

  constructor(
    private readonly plan: ModelPlan,
    private readonly modules: readonly ModuleSpec[],
    private readonly maskPoint: MaskPoint = 'post-activation',
    options: ModuleRunnerOptions = {},
  ) {
    this.size = modules.length;
    this.rowBudget = Math.max(1, options.rowBudget ?? 512);
    this.naiveAbove = options.naiveAbove ?? 0.6;
    const w = modules.map((m) => marginWeights(m.head));
    this.d = tf.tensor2d(
      w.flatMap((x) => Array.from(x.d)),
      [modules.length, w[0]?.d.length ?? 0],
    );
    this.e = tf.tensor1d(w.map((x) => x.e));
    // One row per input, the least the shared run needs, may already be over the fallback limit
    // (a single module): then it would never run, and its masks are not built.
    const sharedCanPay = 1 <= this.naiveAbove * modules.length;
    const units = plan.observedUnits;
    const denseBytes = options.denseMaskBytes ?? DENSE_MASK_BYTES;
    this.naiveFallback = 4 * modules.length * units <= denseBytes;
    if (maskPoint === 'post-activation' && modules.length > 0 && options.sharedRun !== false && sharedCanPay) {
      this.divergent = new DivergentRunner(
        plan,
        modules.map((m) => m.masks),
        this.d,
        this.e,
        denseBytes,
      );
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
   * Module margins m_c(x) = z_c - z_uc for every input and module, in passes of at most the row
   * budget (any batch size is fine). Post-activation masks take the shared run unless its observed
   * rows per input make the naive path cheaper; both give the same margins.
   * @param x preprocessed inputs [B, ...]
   * @returns [B, M] margins; the caller owns the tensor.
   */
  margins(x: tf.Tensor): tf.Tensor2D {
    const divergent = this.divergent;
    if (!divergent) return this.marginsNaive(x);
    const b = x.shape[0];
    const m = this.size;
    const out = new Float32Array(b * m);
    const st = this.passStats;
    for (let s = 0; s < b; ) {
      const left = b - s;
      if (this.preferNaive()) {
        const n = Math.min(left, this.naivePerPass());
        out.set(
          withSlice(x, s, n, (part) => this.naivePass(part)),
          s * m,
        );
        this.naiveSinceProbe += n;
        s += n;
        continue;
      }
      // As many inputs as the observed rows per input fit in the budget, in passes of equal size.
      const per = Math.max(1, Math.floor(this.rowBudget / (st.rowsPerInput ?? Math.min(1 + m, 4))));
      const n = Math.ceil(left / Math.ceil(left / per));
      const r = withSlice(x, s, n, (part) => divergent.run(part, this.rowBudget));
      const perInput = r.rows / n;
      if (!r.margins) {
        // Stopped at the budget: at least this many rows per input; retry in smaller passes.
        st.stoppedPasses++;
        st.rowsPerInput = Math.max(st.rowsPerInput ?? perInput, perInput);
        continue;
      }
      st.rowsPerInput = st.rowsPerInput === undefined ? perInput : 0.75 * st.rowsPerInput + 0.25 * perInput;
      st.sharedPasses++;
      st.maxRows = Math.max(st.maxRows, r.rows);
      out.set(r.margins, s * m);
      s += n;
    }
    return tf.tensor2d(out, [b, m]);
  }

  /** Whether the next pass should run the naive way (the shared run is measured again now and then). */
  private preferNaive(): boolean {
    if (!this.naiveFallback) return false;
    const limit = this.naiveAbove * this.size;
    const r = this.passStats.rowsPerInput;
    if (r === undefined || r <= limit) return false;
    if (this.naiveSinceProbe < PROBE_AFTER) return true;
    this.naiveSinceProbe = 0;
    return false;
  }

  private naivePerPass(): number {
    return Math.max(1, Math.floor(this.rowBudget / Math.max(1, this.size)));
  }

  /** The same margins by M full passes (the input repeated once per module): the reference. */
  marginsNaive(x: tf.Tensor): tf.Tensor2D {
    const b = x.shape[0];
    const m = this.size;
    const out = new Float32Array(b * m);
    const per = this.naivePerPass();
    for (let s = 0; s < b && m > 0; s += per) {
      const n = Math.min(per, b - s);
      out.set(
        withSlice(x, s, n, (part) => this.naivePass(part)),
        s * m,
      );
    }
    return tf.tensor2d(out, [b, m]);
  }

  /** One naive pass: [B x M] margins, row-major. */
  private naivePass(x: tf.Tensor): Float32Array {
    const { post, pre } = this.naiveMasks();
    const b = x.shape[0];
    const m = this.size;
    this.passStats.naivePasses++;
    this.passStats.maxRows = Math.max(this.passStats.maxRows, b * m);
    return tf.tidy(() => {
      const repeated = tf.concat(new Array(m).fill(x), 0);
      const features = runToFeatures(this.plan, repeated, { groups: m, postMasks: post, preMasks: pre });
      const f = features.reshape([m, b, -1]);
      const margins = f.mul(this.d.expandDims(1)).sum(-1).add(this.e.expandDims(1));
      return margins.transpose().dataSync() as Float32Array;
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

/** Calls `fn` on rows [s, s + n) of `x` (a copy freed after, unless that is all of `x`). */
function withSlice<T>(x: tf.Tensor, s: number, n: number, fn: (part: tf.Tensor) => T): T {
  if (s === 0 && n === x.shape[0]) return fn(x);
  const part = x.slice(s, n);
  try {
    return fn(part);
  } finally {
    part.dispose();
  }
}
