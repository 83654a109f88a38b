/**
 * NumPy `.npy` reading (format versions 1-3). npyjs is not used: it neither checks the data length
 * against the shape nor supports big-endian data, and it needs the payload aligned for typed-array
 * views. Here the header is parsed and checked first, from the file's first bytes and its declared
 * length; then the payload is converted as it streams past, element by element.
 */
import { BadRequestError } from '../../../errors';
import { wholeUnits } from './byte-chunks';
import { allocate, checkImageCount, checkImageTensor, type DatasetLimits } from './limits';
import type { Shape4 } from './types';

export const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** Real headers are a few hundred bytes; a larger one is garbage or an attack on the parser. */
const MAX_HEADER_BYTES = 64 * 1024;
/** The most bytes a header can span (magic, version, a 4-byte length, the text): read this many to parse one. */
export const NPY_PREFIX_BYTES = 12 + MAX_HEADER_BYTES;

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

/** @param bytes the file's first bytes: at least NPY_PREFIX_BYTES of them, or all of a shorter file. */
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

/**
 * Call only after the element count has passed a size guard: it compares byte lengths exactly.
 * @param have the data bytes after the header (the declared file size minus `dataOffset`).
 */
export function checkPayloadLength(have: number, h: NpyHeader, count: number): void {
  const want = count * h.itemSize;
  if (have < want) {
    throw new BadRequestError(`${h.source}: truncated: shape (${h.shape.join(', ')}) needs ${want} data bytes, found ${have}`);
  }
  if (have > want) {
    throw new BadRequestError(`${h.source}: ${have - want} unexpected bytes after the array data`);
  }
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

/**
 * Converts the data of an images header `npyImageShape` accepted into C-ordered uint8 or float32
 * chunks (native byte order), failing on the first value that is not finite.
 * @param payload the data bytes after the header, of the checked length
 */
export async function* npyImageChunks(
  h: NpyHeader,
  shape: Shape4,
  payload: AsyncIterable<Uint8Array>,
  limits: DatasetLimits,
): AsyncGenerator<Uint8Array | Float32Array> {
  if (h.fortranOrder) {
    // Column-major data reaches every output image from every part of the file: it is read whole
    // and transposed in memory, as before streaming. NumPy writes it only for arrays that are
    // Fortran-contiguous (np.asfortranarray, a .T), which image batches rarely are.
    yield await fortranImages(h, shape, payload, limits);
    return;
  }
  if (h.kind === 'u') {
    yield* payload;
    return;
  }
  let index = 0;
  for await (const bytes of wholeUnits(payload, 4)) {
    yield toFloats(bytes, h, index);
    index += bytes.length / 4;
  }
}

/** float32 values of `bytes` in native order; `first` is the flat index of the first, for error details. */
function toFloats(bytes: Buffer, h: NpyHeader, first: number): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < out.length; i++) {
    const value = view.getFloat32(i * 4, h.littleEndian);
    // NaN or Inf would poison every activation downstream without any visible error.
    if (!Number.isFinite(value)) {
      throw new BadRequestError(`${h.source}: image value ${value} at flat index ${first + i} is not finite`);
    }
    out[i] = value;
  }
  return out;
}

async function fortranImages(h: NpyHeader, shape: Shape4, payload: AsyncIterable<Uint8Array>, limits: DatasetLimits): Promise<Uint8Array | Float32Array> {
  const count = shape[0] * shape[1] * shape[2] * shape[3];
  const raw = allocate(() => new Uint8Array(count * h.itemSize), limits);
  let at = 0;
  for await (const chunk of payload) {
    raw.set(chunk, at);
    at += chunk.length;
  }
  const values = h.kind === 'u' ? raw : toFloats(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), h, 0);
  return allocate(() => fortranToC(values, h.shape), limits);
}

/**
 * Checks a labels header: integers of any width, shaped [N] or [N, 1] (the Keras `load_data` layout).
 * @param have the data bytes after the header
 * @returns N
 */
export function npyLabelCount(h: NpyHeader, have: number, limits: DatasetLimits): number {
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
  checkPayloadLength(have, h, n);
  return n;
}

/**
 * Converts the data of a labels header `npyLabelCount` accepted into int32 chunks.
 * [N] and [N, 1] are laid out identically in C and Fortran order.
 */
export async function* npyLabelChunks(h: NpyHeader, payload: AsyncIterable<Uint8Array>): AsyncGenerator<Int32Array> {
  let index = 0;
  for await (const bytes of wholeUnits(payload, h.itemSize)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const labels = new Int32Array(bytes.length / h.itemSize);
    for (let i = 0; i < labels.length; i++) {
      const value = readInteger(view, i * h.itemSize, h);
      if (value < -0x80000000 || value > 0x7fffffff) {
        throw new BadRequestError(`${h.source}: label ${value} at index ${index + i} is out of range`);
      }
      labels[i] = Number(value);
    }
    index += labels.length;
    yield labels;
  }
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
