/**
 * Running many post-activation-masked modules of one model without M full passes.
 *
 * A ReLU output is >= 0, so multiplying it by a 0/1 mask changes nothing unless a masked unit is
 * active (> 0). A module therefore computes exactly the model's values, layer by layer, until the
 * first observation point where one of its masked units is active in the model: its divergence
 * point for that input. The model runs once on the batch; at each observation point one matMul of
 * the activity of the units some module masks with a [units x modules] "masked" indicator finds the
 * (input, module) pairs that diverge there. Those pairs branch off: every model tensor still needed
 * later is gathered at their input's row, the observation output gets the module's mask, and the
 * remaining steps run on the growing set of branched rows with per-row masks (gathered by module).
 * Pairs that never diverge take their margin from the model's own features.
 *
 * The result equals the naive run (input repeated once per module) up to float rounding of the
 * batched kernels: same layers, same masks, only values that are provably equal are shared.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelPlan } from './graph';

export interface DivergenceStats {
  /** (input, module) pairs run. */
  readonly pairs: number;
  /** Pairs that branched off the model, by observation point. */
  readonly divergedAt: number[];
}

interface PointMasks {
  /** [M, ...unitShape] 0/1, the module masks. */
  readonly masks: tf.Tensor;
  /** Units some module masks (flat indices), int32 [U']. */
  readonly units: tf.Tensor1D;
  /** [U' x M] 1 where the module masks that unit. */
  readonly masked: tf.Tensor2D;
}

export class DivergentRunner {
  private readonly points: (PointMasks | undefined)[];
  /** Last step index that reads each tensor key (the features: past the last step). */
  private readonly lastUse = new Map<string, number>();
  /** Cumulative divergence counts since construction (for benchmarks and tests). */
  readonly stats = { pairs: 0, divergedAt: [] as number[] };

  /**
   * @param masks per module, per observation point, per unit: 1 kept, 0 masked
   * @param d [M x F] margin weights, @param e [M] margin biases (owned by the caller)
   */
  constructor(
    private readonly plan: ModelPlan,
    masks: readonly (readonly Uint8Array[])[],
    private readonly d: tf.Tensor2D,
    private readonly e: tf.Tensor1D,
  ) {
    const m = masks.length;
    this.points = plan.observationPoints.map((p, i) => {
      const union: number[] = [];
      for (let u = 0; u < p.units; u++) if (masks.some((mm) => mm[i][u] === 0)) union.push(u);
      if (union.length === 0) return undefined;
      const all = new Float32Array(m * p.units);
      masks.forEach((mm, g) => all.set(mm[i], g * p.units));
      const ind = new Float32Array(union.length * m);
      union.forEach((u, r) => masks.forEach((mm, g) => (ind[r * m + g] = mm[i][u] ? 0 : 1)));
      return {
        masks: tf.tensor(all, [m, ...p.shape]),
        units: tf.tensor1d(union, 'int32'),
        masked: tf.tensor2d(ind, [union.length, m]),
      };
    });
    this.stats.divergedAt = plan.observationPoints.map(() => 0);
    plan.steps.forEach((s, i) => s.inputs.forEach((k) => this.lastUse.set(k, i)));
    this.lastUse.set(plan.featuresKey, Infinity);
  }

  get size(): number {
    return this.e.shape[0];
  }

  /**
   * @param x preprocessed inputs [B, ...]
   * @returns [B x M] margins, row-major
   */
  margins(x: tf.Tensor): Float32Array {
    const b = x.shape[0];
    const m = this.size;
    const steps = this.plan.steps;
    const out = new Float32Array(b * m);
    // Model rows (one per input) and branched rows (rowInput/rowModule say which pair each is).
    const base = new Map<string, tf.Tensor>();
    const branch = new Map<string, tf.Tensor>();
    let rowInput: number[] = [];
    let rowModule: number[] = [];
    const diverged = new Uint8Array(b * m);
    this.stats.pairs += b * m;
    tf.tidy(() => {
      base.set(this.plan.inputKey, x);
      const release = (map: Map<string, tf.Tensor>, i: number) => {
        for (const [k, t] of map) {
          if ((this.lastUse.get(k) ?? -1) <= i) {
            if (t !== x) t.dispose();
            map.delete(k);
          }
        }
      };
      steps.forEach((step, i) => {
        const apply = (map: Map<string, tf.Tensor>) => {
          const args = step.inputs.map((k) => map.get(k) as tf.Tensor);
          return step.layer.apply(args.length === 1 ? args[0] : args, { training: false }) as tf.Tensor;
        };
        const baseOut = apply(base);
        let branchOut = rowInput.length ? apply(branch) : undefined;
        const point = step.observation !== undefined ? this.points[step.observation] : undefined;
        base.set(step.output, baseOut);
        if (branchOut) branch.set(step.output, branchOut);
        if (point) {
          // Pairs still on the model whose masked units are active here branch off now.
          const hits = tf.tidy(() => tf.matMul(baseOut.reshape([b, -1]).gather(point.units, 1).greater(0).cast('float32'), point.masked));
          const h = hits.dataSync();
          hits.dispose();
          const newInput: number[] = [];
          const newModule: number[] = [];
          for (let r = 0; r < b; r++) {
            for (let g = 0; g < m; g++) {
              if (h[r * m + g] > 0 && !diverged[r * m + g]) {
                diverged[r * m + g] = 1;
                newInput.push(r);
                newModule.push(g);
              }
            }
          }
          const obs = step.observation as number;
          if (newInput.length) {
            this.stats.divergedAt[obs] += newInput.length;
            const idx = tf.tensor1d(newInput, 'int32');
            for (const [k, t] of base) {
              if ((this.lastUse.get(k) ?? -1) <= i) continue;
              const g = t.gather(idx);
              const prev = branch.get(k);
              branch.set(k, prev ? tf.concat([prev, g], 0) : g);
              if (prev) {
                prev.dispose();
                g.dispose();
              }
            }
            idx.dispose();
            rowInput = rowInput.concat(newInput);
            rowModule = rowModule.concat(newModule);
            branchOut = branch.get(step.output);
          }
          if (branchOut && rowInput.length) {
            const rows = tf.tensor1d(rowModule, 'int32');
            const masked = branchOut.mul(point.masks.gather(rows));
            rows.dispose();
            branchOut.dispose();
            branch.set(step.output, masked);
          }
        }
        release(base, i);
        release(branch, i);
      });
      // The margins: d . f + e per pair, computed as the naive runner does (multiply, sum, add).
      const f = base.get(this.plan.featuresKey) as tf.Tensor;
      const fromModel = tf.tidy(() => f.reshape([1, b, -1]).mul(this.d.expandDims(1)).sum(-1).add(this.e.expandDims(1)).transpose().dataSync() as Float32Array);
      out.set(fromModel);
      const bf = branch.get(this.plan.featuresKey);
      if (bf && rowInput.length) {
        const rows = tf.tensor1d(rowModule, 'int32');
        const mv = tf.tidy(() => bf.reshape([rowInput.length, -1]).mul(this.d.gather(rows)).sum(-1).add(this.e.gather(rows)).dataSync() as Float32Array);
        rows.dispose();
        rowInput.forEach((r, j) => (out[r * m + rowModule[j]] = mv[j]));
      }
      base.forEach((t) => t !== x && t.dispose());
      branch.forEach((t) => t.dispose());
    });
    return out;
  }

  dispose(): void {
    this.points.forEach((p) => {
      p?.masks.dispose();
      p?.units.dispose();
      p?.masked.dispose();
    });
  }
}
