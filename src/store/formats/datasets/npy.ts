/**
 * NumPy `.npy` reading (format versions 1-3). npyjs is not used: it neither checks the data length
 * against the shape nor supports big-endian data, and it needs the payload aligned for typed-array
 * views. Here the header is parsed and checked first, then the payload is copied into a fresh array.
 */
import { BadRequestError } from '../../../errors';
import { allocate, checkImageCount, checkImageTensor, type DatasetLimits } from './limits';
import type { Shape4 } from './types';

export const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** Real headers are a few hundred bytes; a larger one is garbage or an attack on the parser. */
const MAX_HEADER_BYTES = 64 * 1024;

export interface NpyHeader {
  readonly source: string;
  readonly descr: string;
  readonly kind: 'b' | 'i' | 'u' | 'f';
  readonly itemSize: number;
  readonly littleEndian: boolean;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  readonly dataOffset: number;
}

export function isNpy(bytes: Buffer): boolean {
  return bytes.subarray(0, 6).equals(NPY_MAGIC);
}

export function readNpyHeader(bytes: Buffer, source: string): NpyHeader {
  if (!isNpy(bytes)) throw new BadRequestError(`${source}: not a NumPy .npy array (bad magic)`);
  if (bytes.length < 10) throw new BadRequestError(`${source}: truncated .npy header`);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new BadRequestError(`${source}: unsupported .npy format version ${major}`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw new BadRequestError(`${source}: truncated .npy header`);
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = 8 + lengthBytes;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new BadRequestError(`${source}: .npy header claims ${headerLength} bytes, more than ${MAX_HEADER_BYTES}`);
  }
  if (start + headerLength > bytes.length) throw new BadRequestError(`${source}: truncated .npy header`);
  const text = bytes.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLength);

  if (/'descr'\s*:\s*\[/.test(text)) {
    throw new BadRequestError(`${source}: structured (record) dtypes are not supported`);
  }
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new BadRequestError(`${source}: malformed .npy header ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      // Python 2 wrote longs as `10000L`.
      if (!/^\d+L?$/.test(s) || !Number.isSafeInteger(Number.parseInt(s, 10))) {
        throw new BadRequestError(`${source}: malformed .npy shape (${shapeText})`);
      }
      return Number.parseInt(s, 10);
    });

  if (/^[<>|=]?O/.test(descr)) {
    throw new BadRequestError(`${source}: object arrays are not supported (they need pickle); save a numeric array`);
  }
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) throw new BadRequestError(`${source}: unsupported dtype ${JSON.stringify(descr)}`);
  const kind = m[2]!;
  const itemSize = Number(m[3]);
  const sizes: Record<string, number[]> = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [4, 8] };
  if (!sizes[kind]?.includes(itemSize)) throw new BadRequestError(`${source}: unsupported dtype ${descr}`);
  return {
    source,
    descr,
    kind: kind as NpyHeader['kind'],
    itemSize,
    // '=' is native order, little-endian on every platform Node runs on here.
    littleEndian: m[1] !== '>',
    fortranOrder: fortran === 'True',
    shape,
    dataOffset: start + headerLength,
  };
}

/** Call only after the element count has passed a size guard: it compares byte lengths exactly. */
function checkPayloadLength(bytes: Buffer, h: NpyHeader, count: number): void {
  const want = count * h.itemSize;
  const have = bytes.length - h.dataOffset;
  if (have < want) {
    throw new BadRequestError(`${h.source}: truncated: shape (${h.shape.join(', ')}) needs ${want} data bytes, found ${have}`);
  }
  if (have > want) {
    throw new BadRequestError(`${h.source}: ${have - want} unexpected bytes after the array data`);
  }
}

export interface NpyImages {
  readonly shape: Shape4;
  readonly dtype: 'uint8' | 'float32';
  readonly images: Uint8Array | Float32Array;
}

/**
 * Checks an images header: [N,H,W] (one channel) or [N,H,W,C], uint8 or float32, within the limits.
 * @returns the NHWC shape.
 */
export function npyImageShape(h: NpyHeader, limits: DatasetLimits): Shape4 {
  if (h.shape.length !== 3 && h.shape.length !== 4) {
    throw new BadRequestError(`${h.source}: images must be [N, H, W] or [N, H, W, C], got shape (${h.shape.join(', ')})`);
  }
  if (!(h.kind === 'u' && h.itemSize === 1) && !(h.kind === 'f' && h.itemSize === 4)) {
    throw new BadRequestError(`${h.source}: image dtype ${h.descr} is not supported; convert to uint8 or float32`);
  }
  const shape: Shape4 = [h.shape[0]!, h.shape[1]!, h.shape[2]!, h.shape[3] ?? 1];
  checkImageTensor(h.source, shape, h.itemSize, limits);
  return shape;
}

/** Reads the images of a header `npyImageShape` accepted, C-ordered. */
export function readNpyImages(bytes: Buffer, h: NpyHeader, limits: DatasetLimits): NpyImages {
  const shape = npyImageShape(h, limits);
  const isU8 = h.kind === 'u';
  const count = shape[0] * shape[1] * shape[2] * shape[3];
  checkPayloadLength(bytes, h, count);

  let images: Uint8Array | Float32Array;
  if (isU8) {
    images = allocate(() => new Uint8Array(count), limits);
    images.set(bytes.subarray(h.dataOffset, h.dataOffset + count));
  } else {
    const out = allocate(() => new Float32Array(count), limits);
    const view = new DataView(bytes.buffer, bytes.byteOffset + h.dataOffset, count * 4);
    for (let i = 0; i < count; i++) {
      const value = view.getFloat32(i * 4, h.littleEndian);
      // NaN or Inf would poison every activation downstream without any visible error.
      if (!Number.isFinite(value)) {
        throw new BadRequestError(`${h.source}: image value ${value} at flat index ${i} is not finite`);
      }
      out[i] = value;
    }
    images = out;
  }
  if (h.fortranOrder) {
    const source = images;
    images = allocate(() => fortranToC(source, h.shape), limits);
  }
  return { shape, dtype: isU8 ? 'uint8' : 'float32', images };
}

/** Labels are integers of any width, shaped [N] or [N, 1] (the Keras `load_data` layout). */
export function readNpyLabels(bytes: Buffer, h: NpyHeader, limits: DatasetLimits): Int32Array {
  const flat = h.shape.length === 1 || (h.shape.length === 2 && h.shape[1] === 1);
  if (!flat) {
    const hint = h.shape.length === 2 ? ' (one-hot labels are not supported; save their argmax)' : '';
    throw new BadRequestError(`${h.source}: labels must be [N] or [N, 1], got shape (${h.shape.join(', ')})${hint}`);
  }
  if (h.kind !== 'i' && h.kind !== 'u') {
    throw new BadRequestError(`${h.source}: label dtype ${h.descr} is not supported; labels must be integers`);
  }
  const n = h.shape[0]!;
  checkImageCount(h.source, n, limits);
  checkPayloadLength(bytes, h, n);
  // [N] and [N, 1] are laid out identically in C and Fortran order.
  const view = new DataView(bytes.buffer, bytes.byteOffset + h.dataOffset, n * h.itemSize);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const value = readInteger(view, i * h.itemSize, h);
    if (value < -0x80000000 || value > 0x7fffffff) {
      throw new BadRequestError(`${h.source}: label ${value} at index ${i} is out of range`);
    }
    labels[i] = Number(value);
  }
  return labels;
}

function readInteger(view: DataView, at: number, h: NpyHeader): number | bigint {
  const le = h.littleEndian;
  const signed = h.kind === 'i';
  switch (h.itemSize) {
    case 1:
      return signed ? view.getInt8(at) : view.getUint8(at);
    case 2:
      return signed ? view.getInt16(at, le) : view.getUint16(at, le);
    case 4:
      return signed ? view.getInt32(at, le) : view.getUint32(at, le);
    default:
      return signed ? view.getBigInt64(at, le) : view.getBigUint64(at, le);
  }
}

/** Reorders a column-major array of `shape` into row-major order, walking the output sequentially. */
export function fortranToC<T extends Uint8Array | Float32Array>(src: T, shape: readonly number[]): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const nd = shape.length;
  const stride: number[] = [];
  for (let d = 0, s = 1; d < nd; d++) {
    stride.push(s);
    s *= shape[d]!;
  }
  const index = new Array<number>(nd).fill(0);
  let from = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[from]!;
    for (let d = nd - 1; d >= 0; d--) {
      index[d]! += 1;
      from += stride[d]!;
      if (index[d]! < shape[d]!) break;
      from -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}
