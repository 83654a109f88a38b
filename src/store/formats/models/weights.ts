/**
 * Collects weights from any format into the one layout the rest of the service loads:
 * float32 little-endian values concatenated in spec order. Every weight passes the same
 * checks here (shape, duplicates, NaN/Inf), so each reader only has to find the values.
 */
import { endianness } from 'node:os';
import { UnprocessableError } from '../../../errors';
import type { WeightSpec } from './types';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Number of values a shape holds; rejects shapes that are not lists of non-negative integers. */
export function elementCount(shape: unknown, what: string): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new UnprocessableError(`${what} has an invalid shape ${JSON.stringify(shape)}`);
  }
  const n = (shape as number[]).reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n)) throw new UnprocessableError(`${what} has an absurd shape ${JSON.stringify(shape)}`);
  return n;
}

/** Copies little-endian float32 bytes into a fresh, aligned Float32Array (the source may sit at any offset). */
export function float32FromLE(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new UnprocessableError(`float32 data of ${bytes.byteLength} bytes is not a multiple of 4`);
  const out = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

function assertFinite(name: string, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // v - v is NaN exactly for NaN and ±Infinity, and is cheaper than two calls per value.
    if (v - v !== 0) {
      const what = Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      throw new UnprocessableError(`weight "${name}" contains ${what} (at flat index ${i})`);
    }
  }
}

export interface WeightSet {
  readonly weightSpecs: WeightSpec[];
  readonly weightData: ArrayBuffer;
}

export class WeightSetBuilder {
  private readonly parts: { spec: WeightSpec; values: Float32Array }[] = [];
  private readonly names = new Set<string>();
  private totalValues = 0;

  get size(): number {
    return this.parts.length;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  add(name: string, shape: readonly number[], values: Float32Array): void {
    if (this.names.has(name)) throw new UnprocessableError(`weight "${name}" appears more than once`);
    const n = elementCount(shape, `weight "${name}"`);
    if (values.length !== n) {
      throw new UnprocessableError(`weight "${name}" has ${values.length} values but its shape [${shape.join(', ')}] needs ${n}`);
    }
    assertFinite(name, values);
    this.names.add(name);
    this.parts.push({ spec: { name, shape: [...shape], dtype: 'float32' }, values });
    this.totalValues += n;
  }

  build(): WeightSet {
    const weightData = new ArrayBuffer(this.totalValues * 4);
    const all = new Float32Array(weightData);
    const view = new DataView(weightData);
    let offset = 0;
    for (const p of this.parts) {
      if (LITTLE_ENDIAN_HOST) all.set(p.values, offset);
      else p.values.forEach((v, i) => view.setFloat32((offset + i) * 4, v, true));
      offset += p.values.length;
    }
    return { weightSpecs: this.parts.map((p) => p.spec), weightData };
  }
}
