/**
 * Running many post-activation-masked modules of one model without M full passes.
 *
 * A ReLU output is >= 0, so multiplying it by a 0/1 mask changes nothing unless a masked unit is
 * active (> 0). A module therefore computes exactly the model's values, layer by layer, until the
 * first observation point where one of its masked units is active in the model: its divergence
 * point for that input. The model runs once on the batch; at each observation point one matMul of
 * the ReLU output with a [units x modules] "masked" indicator finds the (input, module) pairs that
 * diverge there (a sum of non-negative outputs is > 0 iff one of them is). Those pairs branch off:
 * every model tensor still needed later is gathered at their input's row, the observation output
 * gets the module's mask, and the remaining steps run on the growing set of branched rows with
 * per-row masks (gathered by module). Intermediates are freed after their last consumer.
 * Pairs that never diverge take their margin from the model's own features.
 *
 * The same rule shares branched rows between modules: pairs of one input that branch off together
 * and whose masks agree on every unit active there compute the same values, so they share one row
 * (its "owner" module's masks are applied) for as long as their masks keep agreeing with the
 * owner's on the row's active units; at the first point where one does not, it branches off that
 * row the same way. Every check is exact: a sum of non-negative ReLU outputs compared with 0, or
 * the units a module masks among a row's active units, compared in JS.
 *
 * The result equals the naive run (input repeated once per module) up to float rounding of the
 * batched kernels: same layers, same masks, only values that are provably equal are shared. (One
 * caveat: a kernel that flushes denormals to zero could miss a unit active with a denormal value;
 * its effect on a margin would be of that order.) `run` takes a row limit: rows only grow along a
 * pass, so it stops (returning no margins) at the first observation point where the model rows plus
 * the branched rows would exceed it; ModuleRunner then runs those inputs in smaller passes.
 * Units that every module masks (at tau = 0 mostly units no sample activated) are zeroed in the
 * model's rows themselves: all modules agree there, so they never make a pair diverge, and the
 * divergence test runs on the units where masks differ only (1000 modules: a small fraction).
 * The divergence test has two exact forms. Dense: per point a [U' x M] float32 indicator and one
 * matMul (a sum of non-negative outputs is > 0 iff one of them is), with the [M, ...] masks kept to
 * gather branch rows' masks. Sparse: per unit of U' a bitset of the modules masking it, ORed over a
 * row's active units in JS, and a branch row's mask built when needed. Dense costs 8 bytes per
 * module and unit, sparse 1/8: points take the dense form, smallest first, while their tensors
 * fit in DENSE_MASK_BYTES (1000 modules of a ResNet-18 at 224x224 would need 18 GB dense).
 * Only for post-activation masks: a pre-activation mask changes values whatever the sign, so those
 * modules run the naive way (modules.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { DENSE_MASK_BYTES } from './defaults';
import type { ModelPlan } from './graph';

interface PointMasks {
  /**
   * [M, ...unitShape] 0/1 float32 module masks, kept at the dense points; elsewhere a branch
   * row's mask is built from `moduleMasks` when the row needs it.
   */
  readonly masks?: tf.Tensor;
  /** Per module, per unit: 1 kept (the caller's arrays, not copied). */
  readonly moduleMasks: readonly Uint8Array[];
  readonly shape: readonly number[];
  /**
   * [1, ...unitShape] 0 at the units every module masks, else 1; undefined when there is none.
   * Every module zeroes those units, so the model's rows take this mask and no pair diverges there.
   */
  readonly common?: tf.Tensor;
  /**
   * [U' x M] 1 where the module masks that unit of `units`: the dense divergence test (one matMul),
   * kept within the dense limit and when U' > 0; otherwise the test runs on `bits` in JS.
   */
  readonly masked?: tf.Tensor2D;
  /** Units some but not every module masks (flat indices), int32 [U']: only there can masks differ. */
  readonly units: tf.Tensor1D;
  /** U', the length of `units`. */
  readonly width: number;
  /** Per unit of `units`, the modules masking it: bit g & 31 of word u * words + (g >> 5). */
  readonly bits: Uint32Array;
  readonly words: number;
}

/** A set of (input, module) pairs that compute the same values: the row's owner's. */
interface Row {
  readonly input: number;
  /** Module whose masks the row applies; -1 for the model (no mask). */
  readonly owner: number;
  /** Modules following this row (the owner included). */
  members: number[];
}

export interface DivergenceStats {
  /** (input, module) pairs run. */
  pairs: number;
  /** Pairs that left the model's rows, by observation point. */
  divergedAt: number[];
  /** Rows run besides the model's, by the observation point where they started. */
  rowsAt: number[];
  /** Pairs that left a branched row they shared with other modules, by observation point. */
  leftRowAt: number[];
  /** Passes completed, and passes stopped because their rows would exceed the row limit. */
  passes: number;
  stopped: number;
  /** Rows (model + branched) of the largest completed pass. */
  maxRows: number;
}

/** One pass of `run`: the margins, or none when the pass stopped at the row limit. */
export interface PassResult {
  /** [B x M] margins, row-major; undefined when the pass stopped. */
  readonly margins?: Float32Array;
  /** Rows the pass ran (model + branched); when stopped, the rows it would have needed at that point. */
  readonly rows: number;
}

function emptyStats(points: number): DivergenceStats {
  return {
    pairs: 0,
    divergedAt: new Array<number>(points).fill(0),
    rowsAt: new Array<number>(points).fill(0),
    leftRowAt: new Array<number>(points).fill(0),
    passes: 0,
    stopped: 0,
    maxRows: 0,
  };
}

export class DivergentRunner {
  private readonly points: (PointMasks | undefined)[];
  /** Last step index that reads each tensor key (the features: past the last step). */
  private readonly lastUse = new Map<string, number>();
  /** Cumulative counts since construction (for benchmarks and tests). */
  readonly stats: DivergenceStats;

  /**
   * @param masks per module, per observation point, per unit: 1 kept, 0 masked
   * @param d [M x F] margin weights, @param e [M] margin biases (owned by the caller)
   */
  constructor(
    private readonly plan: ModelPlan,
    masks: readonly (readonly Uint8Array[])[],
    private readonly d: tf.Tensor2D,
    private readonly e: tf.Tensor1D,
    denseBytes = DENSE_MASK_BYTES,
  ) {
    const m = masks.length;
    const words = Math.ceil(m / 32);
    // The dense points: smallest first while their tensors fit in denseBytes.
    const dense = new Set<number>();
    let used = 0;
    for (const [i, p] of [...plan.observationPoints.entries()].sort((x, y) => x[1].units - y[1].units)) {
      if (used + 8 * m * p.units > denseBytes) break;
      used += 8 * m * p.units;
      dense.add(i);
    }
    this.points = plan.observationPoints.map((p, i) => {
      const n = p.units;
      const per = masks.map((mm) => mm[i]);
      // Modules masking each unit; the units some but not all mask get a bitset row.
      const masking = new Int32Array(n);
      for (const mm of per) for (let u = 0; u < n; u++) masking[u] += 1 - mm[u];
      const partial: number[] = [];
      const common = new Float32Array(n).fill(1);
      let anyCommon = false;
      for (let u = 0; u < n; u++) {
        if (masking[u] === m) {
          common[u] = 0;
          anyCommon = true;
        } else if (masking[u] > 0) partial.push(u);
      }
      if (!anyCommon && !partial.length) return undefined;
      const bits = new Uint32Array(partial.length * words);
      per.forEach((mm, g) => {
        const bit = 1 << (g & 31);
        const w = g >> 5;
        partial.forEach((u, r) => {
          if (mm[u] === 0) bits[r * words + w] |= bit;
        });
      });
      let all: tf.Tensor | undefined;
      let masked: tf.Tensor2D | undefined;
      if (dense.has(i)) {
        const data = new Float32Array(m * n);
        per.forEach((mm, g) => data.set(mm, g * n));
        all = tf.tensor(data, [m, ...p.shape]);
        if (partial.length) {
          const z = new Float32Array(partial.length * m);
          partial.forEach((u, r) => per.forEach((mm, g) => (z[r * m + g] = 1 - mm[u])));
          masked = tf.tensor2d(z, [partial.length, m]);
        }
      }
      return {
        ...(all ? { masks: all } : {}),
        moduleMasks: per,
        shape: p.shape,
        ...(anyCommon ? { common: tf.tensor(common, [1, ...p.shape]) } : {}),
        ...(masked ? { masked } : {}),
        units: tf.tensor1d(partial, 'int32'),
        width: partial.length,
        bits,
        words,
      };
    });
    this.stats = emptyStats(plan.observationPoints.length);
    plan.steps.forEach((s, i) => s.inputs.forEach((k) => this.lastUse.set(k, i)));
    this.lastUse.set(plan.featuresKey, Infinity);
  }

  get size(): number {
    return this.e.shape[0];
  }

  /**
   * @param x preprocessed inputs [B, ...]
   * @param maxRows row limit: with B > 1, the pass stops (freeing what it made, returning no
   *   margins) at the first observation point where model rows + branched rows would exceed it
   *   (rows only grow along a pass, so a completed pass never ran more)
   */
  run(x: tf.Tensor, maxRows = Infinity): PassResult {
    const b = x.shape[0];
    const m = this.size;
    const out = new Float32Array(b * m);
    // Model rows (one per input; onModel[i * m + g]: pair still follows it) and branched rows.
    const base = new Map<string, tf.Tensor>();
    const branch = new Map<string, tf.Tensor>();
    let rows: Row[] = [];
    const onModel = new Uint8Array(b * m).fill(1);
    // This pass's counts, added to `stats` only when it completes.
    const local = emptyStats(this.plan.observationPoints.length);
    local.pairs = b * m;
    let stoppedAt = 0;
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
      for (let i = 0; i < this.plan.steps.length; i++) {
        const step = this.plan.steps[i];
        const apply = (map: Map<string, tf.Tensor>) => {
          const args = step.inputs.map((k) => map.get(k) as tf.Tensor);
          return step.layer.apply(args.length === 1 ? args[0] : args, { training: false }) as tf.Tensor;
        };
        base.set(step.output, apply(base));
        if (rows.length) branch.set(step.output, apply(branch));
        const obs = step.observation;
        const point = obs !== undefined ? this.points[obs] : undefined;
        if (point && obs !== undefined) {
          const { created, maskNeeded } = this.split(point, obs, base.get(step.output) as tf.Tensor, branch.get(step.output), rows, onModel, b, local);
          if (b > 1 && b + rows.length + created.length > maxRows) {
            // Over the limit: stop here; tidy frees every tensor of the pass.
            stoppedAt = b + rows.length + created.length;
            return;
          }
          if (created.length) {
            // New rows copy every tensor still needed later from their source row.
            const fromModel = created.filter((c) => c.source < 0);
            const fromBranch = created.filter((c) => c.source >= 0);
            for (const [k, t] of base) {
              if ((this.lastUse.get(k) ?? -1) <= i) continue;
              const parts: tf.Tensor[] = [];
              const prev = branch.get(k);
              if (prev) parts.push(prev);
              if (fromModel.length)
                parts.push(
                  gatherRows(
                    t,
                    fromModel.map((c) => c.row.input),
                  ),
                );
              if (fromBranch.length)
                parts.push(
                  gatherRows(
                    prev as tf.Tensor,
                    fromBranch.map((c) => c.source),
                  ),
                );
              branch.set(k, parts.length === 1 ? parts[0] : tf.concat(parts, 0));
              if (parts.length > 1) parts.forEach((p) => p.dispose());
            }
            rows = rows.concat(
              fromModel.map((c) => c.row),
              fromBranch.map((c) => c.row),
            );
            local.rowsAt[obs] += created.length;
          }
          if (point.common) {
            // Every module zeroes these units: the model's rows take the zeros too (rows made above
            // copied the unmasked values and get their owner's whole mask next).
            const t = base.get(step.output) as tf.Tensor;
            base.set(step.output, t.mul(point.common));
            t.dispose();
          }
          const raw = branch.get(step.output);
          if (raw && rows.length && maskNeeded) {
            const mask = ownerMasks(
              point,
              rows.map((r) => r.owner),
            );
            branch.set(step.output, raw.mul(mask));
            mask.dispose();
            raw.dispose();
          }
        }
        release(base, i);
        release(branch, i);
      }
      // The margins: d . f + e per pair, computed as the naive runner does (multiply, sum, add).
      const f = base.get(this.plan.featuresKey) as tf.Tensor;
      out.set(tf.tidy(() => f.reshape([1, b, -1]).mul(this.d.expandDims(1)).sum(-1).add(this.e.expandDims(1)).transpose().dataSync() as Float32Array));
      const bf = branch.get(this.plan.featuresKey);
      if (bf && rows.length) {
        const r = rows.length;
        const mv = tf.tidy(() => bf.reshape([1, r, -1]).mul(this.d.expandDims(1)).sum(-1).add(this.e.expandDims(1)).transpose().dataSync() as Float32Array);
        rows.forEach((row, j) => row.members.forEach((g) => (out[row.input * m + g] = mv[j * m + g])));
      }
      base.forEach((t) => t !== x && t.dispose());
      branch.forEach((t) => t.dispose());
    });
    if (stoppedAt) {
      this.stats.stopped++;
      return { rows: stoppedAt };
    }
    const st = this.stats;
    st.pairs += local.pairs;
    local.divergedAt.forEach((v, i) => (st.divergedAt[i] += v));
    local.rowsAt.forEach((v, i) => (st.rowsAt[i] += v));
    local.leftRowAt.forEach((v, i) => (st.leftRowAt[i] += v));
    st.passes++;
    st.maxRows = Math.max(st.maxRows, b + rows.length);
    return { margins: out, rows: b + rows.length };
  }

  /**
   * At an observation point, before its masks: finds the pairs whose masks disagree with their
   * row's (the model's: no mask; a branched row's: its owner's) on a unit active in that row,
   * removes them from it and groups them into new rows, one per set of pairs of one source row
   * whose masks agree on that row's active units.
   *
   * ReLU outputs are >= 0, so "some unit of a set is active" is "the sum of the outputs over the
   * set is > 0" (a sum of non-negative terms, exact against 0): one matMul per row set with the
   * masked indicator tells which modules mask an active unit. Rows where two or more modules do
   * are read back on the units some module masks and compared in JS, exactly.
   * @returns the new rows with their source (-1: the model's row of their input; else a branch row),
   *   and whether any branch row's masks change a value here
   */
  private split(
    point: PointMasks,
    obs: number,
    baseOut: tf.Tensor,
    branchOut: tf.Tensor | undefined,
    rows: Row[],
    onModel: Uint8Array,
    b: number,
    stats: DivergenceStats,
  ): { created: { source: number; row: Row }[]; maskNeeded: boolean } {
    const m = this.size;
    const created: { source: number; row: Row }[] = [];
    const model = baseOut.reshape([b, -1]);
    const branch = branchOut && rows.length ? branchOut.reshape([rows.length, -1]) : undefined;
    // Model rows: modules that mask an active unit leave. One leaver makes a row on its own;
    // several are grouped by what they mask (read back below).
    const hits = maskedActive(point, model as tf.Tensor2D, m);
    const modelLeavers: { input: number; leavers: number[] }[] = [];
    for (let i = 0; i < b; i++) {
      const l: number[] = [];
      for (let g = 0; g < m; g++) {
        if (onModel[i * m + g] && hits[i * m + g] > 0) {
          onModel[i * m + g] = 0;
          l.push(g);
        }
      }
      if (l.length) {
        stats.divergedAt[obs] += l.length;
        if (l.length === 1) created.push({ source: -1, row: { input: i, owner: l[0], members: l } });
        else modelLeavers.push({ input: i, leavers: l });
      }
    }
    // Branch rows: the owner's own mask changes the row iff it masks an active unit (else the
    // multiply is skipped); followers need a comparison only when some member masks one.
    let ownerHits = false;
    const branchChecks: number[] = [];
    if (branch && point.width) {
      const h = maskedActive(point, branch as tf.Tensor2D, m);
      rows.forEach((r, j) => {
        if (h[j * m + r.owner] > 0) ownerHits = true;
        if (r.members.length > 1 && r.members.some((g) => h[j * m + g] > 0)) branchChecks.push(j);
      });
    }
    if (modelLeavers.length || branchChecks.length) {
      const read = (t: tf.Tensor, idx: number[]) =>
        idx.length ? (tf.tidy(() => gatherRows(t, idx).gather(point.units, 1).dataSync()) as Float32Array) : new Float32Array(0);
      const mv = read(
        model,
        modelLeavers.map((x) => x.input),
      );
      const bv = branch ? read(branch, branchChecks) : new Float32Array(0);
      const width = point.width;
      // Signature of a module on a row: the active units it masks (equal signatures = same values).
      const signatures = (vals: Float32Array, r: number, mods: number[]) => {
        const sig = new Map<number, string>(mods.map((g) => [g, '']));
        for (let u = 0; u < width; u++) {
          if (vals[r * width + u] > 0) for (const g of mods) if (masksUnit(point, u, g)) sig.set(g, `${sig.get(g)}${u},`);
        }
        return sig;
      };
      const group = (source: number, input: number, mods: number[], sig: Map<number, string>) => {
        const bySig = new Map<string, number[]>();
        for (const g of mods) bySig.set(sig.get(g) as string, [...(bySig.get(sig.get(g) as string) ?? []), g]);
        for (const members of bySig.values()) created.push({ source, row: { input, owner: members[0], members } });
      };
      modelLeavers.forEach((x, r) => group(-1, x.input, x.leavers, signatures(mv, r, x.leavers)));
      branchChecks.forEach((j, r) => {
        const row = rows[j];
        const sig = signatures(bv, r, row.members);
        const own = sig.get(row.owner);
        const leave = row.members.filter((g) => sig.get(g) !== own);
        if (!leave.length) return;
        stats.leftRowAt[obs] += leave.length;
        row.members = row.members.filter((g) => sig.get(g) === own);
        group(j, row.input, leave, sig);
      });
    }
    model.dispose();
    branch?.dispose();
    // Units every module masks change a branch row whenever one is active there: always multiply then.
    return { created, maskNeeded: ownerHits || created.length > 0 || point.common !== undefined };
  }

  dispose(): void {
    this.points.forEach((p) => {
      p?.masks?.dispose();
      p?.common?.dispose();
      p?.masked?.dispose();
      p?.units.dispose();
    });
  }
}

function gatherRows(t: tf.Tensor, idx: number[]): tf.Tensor {
  return tf.tidy(() => t.gather(tf.tensor1d(idx, 'int32')));
}

/** [rows, ...unitShape] masks of the given owner modules: gathered from the dense masks, or built. */
function ownerMasks(point: PointMasks, owners: number[]): tf.Tensor {
  if (point.masks) {
    const all = point.masks;
    return tf.tidy(() => all.gather(tf.tensor1d(owners, 'int32')));
  }
  const n = point.moduleMasks[0].length;
  const data = new Float32Array(owners.length * n);
  owners.forEach((g, r) => data.set(point.moduleMasks[g], r * n));
  return tf.tensor(data, [owners.length, ...point.shape]);
}

/**
 * The divergence test: for each of r rows of `values` ([r x units] post-ReLU), 1 per module that
 * masks one of the row's active units (row-major [r x M]). Dense: the row sums over those units,
 * as one matMul with the [U' x M] indicator (non-negative terms: > 0 iff one is active). Sparse:
 * the rows are read back on U' and the modules' bitsets ORed over the active units, in JS.
 */
function maskedActive(point: PointMasks, values: tf.Tensor2D, m: number): ArrayLike<number> {
  const r = values.shape[0];
  if (point.width === 0) return new Uint8Array(r * m);
  const masked = point.masked;
  if (masked) return tf.tidy(() => tf.matMul(values.gather(point.units, 1), masked).dataSync());
  const vals = tf.tidy(() => values.gather(point.units, 1).dataSync()) as Float32Array;
  const { bits, words, width } = point;
  const out = new Uint8Array(r * m);
  const acc = new Uint32Array(words);
  for (let j = 0; j < r; j++) {
    acc.fill(0);
    const row = j * width;
    for (let u = 0; u < width; u++) {
      if (vals[row + u] > 0) for (let w = 0, o = u * words; w < words; w++) acc[w] |= bits[o + w];
    }
    for (let g = 0; g < m; g++) out[j * m + g] = (acc[g >> 5] >>> (g & 31)) & 1;
  }
  return out;
}

/** Whether module g masks unit u of the point's `units`. */
function masksUnit(point: PointMasks, u: number, g: number): boolean {
  return ((point.bits[u * point.words + (g >> 5)] >>> (g & 31)) & 1) === 1;
}
