/**
 * Closed-form re-fitting: ridge least squares W = (X'X + lambda I)^-1 X'Y over the rows a linear
 * layer sees (a Conv2D's receptive-field patches, a Dense layer's inputs), with a bias column.
 * Gram matrices accumulate on the backend in chunks; the solve is a Cholesky factorisation in
 * float64 (the systems are at most a few thousand wide).
 */
import * as tf from '@tensorflow/tfjs';
import type { PlanStep } from '../graph';

export interface ConvGeometry {
  readonly kernel: [number, number];
  readonly strides: [number, number];
  readonly dilation: [number, number];
  readonly padding: 'same' | 'valid';
}

function pair(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [v[0] as number, (v[1] ?? v[0]) as number];
  if (typeof v === 'number') return [v, v];
  return [fallback, fallback];
}

export function convGeometry(step: PlanStep): ConvGeometry {
  const c = step.layer.getConfig() as Record<string, unknown>;
  return {
    kernel: pair(c.kernelSize, 1),
    strides: pair(c.strides, 1),
    dilation: pair(c.dilationRate, 1),
    padding: c.padding === 'same' ? 'same' : 'valid',
  };
}

/** Output size of a Conv2D and the padding before its input (TensorFlow's 'same': the odd pixel goes bottom/right). */
export function convOutput(h: number, w: number, g: ConvGeometry): { ho: number; wo: number; pad: [[number, number], [number, number]] } {
  const ekh = (g.kernel[0] - 1) * g.dilation[0] + 1;
  const ekw = (g.kernel[1] - 1) * g.dilation[1] + 1;
  if (g.padding === 'valid')
    return {
      ho: Math.floor((h - ekh) / g.strides[0]) + 1,
      wo: Math.floor((w - ekw) / g.strides[1]) + 1,
      pad: [
        [0, 0],
        [0, 0],
      ],
    };
  const ho = Math.ceil(h / g.strides[0]);
  const wo = Math.ceil(w / g.strides[1]);
  const ph = Math.max((ho - 1) * g.strides[0] + ekh - h, 0);
  const pw = Math.max((wo - 1) * g.strides[1] + ekw - w, 0);
  return {
    ho,
    wo,
    pad: [
      [Math.floor(ph / 2), ph - Math.floor(ph / 2)],
      [Math.floor(pw / 2), pw - Math.floor(pw / 2)],
    ],
  };
}

/**
 * Receptive-field patches of a Conv2D input at some output positions (flat indices oy * Wo + ox),
 * [N, P, kh * kw * C] in the kernel's (row, column, channel) order, so that
 * patches . reshape(kernel, [-1, out]) is the convolution there. Only the sampled positions are
 * gathered, never the whole im2col matrix.
 */
export function patches(x: tf.Tensor4D, g: ConvGeometry, positions: Int32Array): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const { wo, pad } = convOutput(h, w, g);
    const padded = pad[0][0] || pad[0][1] || pad[1][0] || pad[1][1] ? x.pad([[0, 0], pad[0], pad[1], [0, 0]]) : x;
    const wp = padded.shape[2] as number;
    const flat = padded.reshape([n, -1, c]);
    const parts: tf.Tensor3D[] = [];
    for (let i = 0; i < g.kernel[0]; i++) {
      for (let j = 0; j < g.kernel[1]; j++) {
        const idx = new Int32Array(positions.length);
        positions.forEach((p, k) => {
          const oy = Math.floor(p / wo);
          const ox = p - oy * wo;
          idx[k] = (oy * g.strides[0] + i * g.dilation[0]) * wp + ox * g.strides[1] + j * g.dilation[1];
        });
        parts.push(tf.gather(flat, tf.tensor1d(idx, 'int32'), 1) as tf.Tensor3D);
      }
    }
    return parts.length === 1 ? parts[0] : (tf.concat(parts, 2) as tf.Tensor3D);
  });
}

/** Accumulates X'X and X'Y (X with a trailing ones column) over row chunks, in float32 on the backend. */
export class NormalEquations {
  private xtx?: tf.Tensor2D;
  private xty?: tf.Tensor2D;
  rows = 0;

  /** @param x [rows, K] @param y [rows, O] */
  add(x: tf.Tensor2D, y: tf.Tensor2D): void {
    const [xtx, xty] = tf.tidy(() => {
      const xb = tf.concat([x, tf.ones([x.shape[0], 1])], 1);
      return [tf.matMul(xb, xb, true, false), tf.matMul(xb, y, true, false)] as const;
    });
    this.rows += x.shape[0];
    // Kept: add may run inside a caller's tidy, and the sums outlive it.
    this.xtx = tf.keep(accumulate(this.xtx, xtx));
    this.xty = tf.keep(accumulate(this.xty, xty));
  }

  /**
   * Ridge solution with lambda = alpha x mean diagonal of X'X (the bias is not penalised).
   * @returns weights [K, O] and bias [O], row-major
   */
  solve(alpha: number): { kernel: Float32Array; bias: Float32Array } {
    if (!this.xtx || !this.xty) throw new Error('no rows to fit');
    const n = this.xtx.shape[0];
    const o = this.xty.shape[1];
    const a = Float64Array.from(this.xtx.dataSync());
    const b = Float64Array.from(this.xty.dataSync());
    let diag = 0;
    for (let i = 0; i < n - 1; i++) diag += a[i * n + i];
    const lambda = (alpha * diag) / Math.max(1, n - 1) + 1e-12;
    for (let i = 0; i < n - 1; i++) a[i * n + i] += lambda;
    // The bias row/column gets a tiny ridge too, so a constant-free design stays solvable.
    a[n * n - 1] += 1e-9 * Math.max(1, a[n * n - 1]);
    choleskySolve(a, b, n, o);
    const kernel = new Float32Array((n - 1) * o);
    for (let i = 0; i < (n - 1) * o; i++) kernel[i] = b[i];
    return { kernel, bias: Float32Array.from(b.subarray((n - 1) * o)) };
  }

  dispose(): void {
    this.xtx?.dispose();
    this.xty?.dispose();
  }
}

function accumulate<T extends tf.Tensor>(sum: T | undefined, part: T): T {
  if (!sum) return part;
  const next = sum.add(part) as T;
  sum.dispose();
  part.dispose();
  return next;
}

/** Solves A X = B in place (A symmetric positive definite [n x n], B [n x o]; X overwrites B). */
export function choleskySolve(a: Float64Array, b: Float64Array, n: number, o: number): void {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) d = 1e-12;
    const ljj = Math.sqrt(d);
    a[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / ljj;
    }
  }
  // Forward: L z = b, then back: L' x = z, column by column of B.
  for (let c = 0; c < o; c++) {
    for (let i = 0; i < n; i++) {
      let s = b[i * o + c];
      for (let k = 0; k < i; k++) s -= a[i * n + k] * b[k * o + c];
      b[i * o + c] = s / a[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = b[i * o + c];
      for (let k = i + 1; k < n; k++) s -= a[k * n + i] * b[k * o + c];
      b[i * o + c] = s / a[i * n + i];
    }
  }
}
