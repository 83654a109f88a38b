/**
 * A thin, typed layer over jsfive (pure-JS HDF5 reader). jsfive throws plain strings and assorted
 * RangeErrors on damaged files; every call goes through `h5` so that a bad file always surfaces as
 * a 422 naming what was being read, never as a raw exception.
 */
import { AppError, UnprocessableError } from '../../../errors';
import { MAX_COMPRESSION_RATIO } from '../zip';
import type { ModelParseLimits } from './types';
import { elementCount, float32FromLE } from './weights';

/** The part of jsfive's Group/Dataset/File interface this package relies on (jsfive ships no types). */
interface JsfiveNode {
  readonly name: string;
  readonly attrs: Record<string, unknown>;
  get(path: string): JsfiveNode | null;
}
interface JsfiveGroup extends JsfiveNode {
  readonly keys: string[];
}
interface JsfiveDataset extends JsfiveNode {
  readonly shape: number[];
  readonly dtype: unknown;
  readonly value: ArrayLike<number>;
  /** jsfive internals, used only for the zero-copy path in `readFloat32` and checked before use. */
  readonly _dataobjects?: {
    find_msg_type?(type: number): { get(key: string): number }[];
    _get_data_message_properties?(offset: number): [number, number, number, number];
  };
}
interface Jsfive {
  File: new (buffer: ArrayBuffer, filename?: string) => JsfiveGroup;
  Group: abstract new (...args: never[]) => JsfiveGroup;
  Dataset: abstract new (...args: never[]) => JsfiveDataset;
}
const jsfive = require('jsfive') as Jsfive;

export type H5Group = JsfiveGroup;
export type H5Dataset = JsfiveDataset;

export interface H5File {
  readonly root: H5Group;
  /** The bytes jsfive reads, for the zero-copy float32 path. */
  readonly bytes: Uint8Array;
  readonly limits: ModelParseLimits;
  /** Float32 bytes still allowed out of this file (limits.maxUncompressedBytes to start with). */
  budget: number;
}

/** Runs a jsfive call, turning whatever it throws into a 422 that says what was being read. */
export function h5<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AppError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new UnprocessableError(`damaged or unsupported HDF5 file while reading ${what}: ${msg}`);
  }
}

/**
 * The superblock records where the file ends. A file cut short (an interrupted upload or copy) can
 * still hold every object jsfive would touch, so this is the one reliable truncation check.
 */
function assertNotTruncated(bytes: Buffer, label: string): void {
  if (bytes.length < 16) throw new UnprocessableError(`the ${label} is truncated (${bytes.length} bytes)`);
  const version = bytes[8]!;
  const sizeOfOffsets = version <= 1 ? bytes[13]! : bytes[9]!;
  // v0: 16 bytes of versions/sizes/K values, v1 adds 4; v2/v3: 4 bytes. Then base, (free-space | extension), EOF.
  const baseAt = version === 0 ? 24 : version === 1 ? 28 : 12;
  if (version > 3 || sizeOfOffsets !== 8) return; // jsfive rejects these with its own message
  if (bytes.length < baseAt + 24) throw new UnprocessableError(`the ${label} is truncated (${bytes.length} bytes)`);
  const base = bytes.readBigUInt64LE(baseAt);
  const eof = bytes.readBigUInt64LE(baseAt + 16);
  if (eof === 0xffffffffffffffffn) return;
  if (base + eof > BigInt(bytes.length)) {
    throw new UnprocessableError(`the ${label} is truncated: its superblock says ${base + eof} bytes, but only ${bytes.length} arrived`);
  }
}

export function openHdf5(bytes: Buffer, limits: ModelParseLimits, label = 'HDF5 file'): H5File {
  assertNotTruncated(bytes, label);
  // jsfive indexes its ArrayBuffer from 0, so it needs one that starts exactly at the file.
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const root = h5(`the superblock of the ${label}`, () => new jsfive.File(buffer));
  // Reading the root's links now makes a damaged file fail here, with a message naming the root.
  h5(`the root group of the ${label}`, () => root.keys);
  return { root, bytes: new Uint8Array(buffer), limits, budget: limits.maxUncompressedBytes };
}

export function isGroup(node: JsfiveNode | undefined): node is H5Group {
  return node instanceof jsfive.Group;
}

export function isDataset(node: JsfiveNode | undefined): node is H5Dataset {
  return node instanceof jsfive.Dataset;
}

/** The node at `path` under `group`, or undefined when there is no such link. */
export function child(group: H5Group, path: string): H5Group | H5Dataset | undefined {
  const parts = path.split('/').filter((p) => p.length > 0);
  let node: JsfiveNode = group;
  for (const part of parts) {
    if (!isGroup(node)) return undefined;
    const g: H5Group = node;
    const keys = h5(`the links of ${g.name}`, () => g.keys);
    if (!keys.includes(part)) return undefined;
    const next = h5(`${g.name}/${part}`, () => g.get(part));
    if (next == null) return undefined;
    node = next;
  }
  return isGroup(node) || isDataset(node) ? node : undefined;
}

export function childKeys(group: H5Group): string[] {
  return h5(`the links of ${group.name}`, () => group.keys);
}

// h5py writes fixed-length strings NUL-padded; Keras 2 writes its name lists that way.
const stripNul = (s: string) => s.replace(/\0+$/, '');

function decodeString(v: unknown): string | undefined {
  if (typeof v === 'string') return stripNul(v);
  if (v instanceof Uint8Array) return stripNul(Buffer.from(v).toString('utf8'));
  if (Array.isArray(v) && v.length === 1) return decodeString(v[0]);
  return undefined;
}

export function attrString(node: JsfiveNode, name: string): string | undefined {
  const attrs = h5(`the attributes of ${node.name}`, () => node.attrs);
  return Object.hasOwn(attrs, name) ? decodeString(attrs[name]) : undefined;
}

/** A list-of-strings attribute (e.g. `layer_names`); undefined when absent. */
export function attrStringList(node: JsfiveNode, name: string): string[] | undefined {
  const attrs = h5(`the attributes of ${node.name}`, () => node.attrs);
  if (!Object.hasOwn(attrs, name)) return undefined;
  const v = attrs[name];
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
  const out = list?.map(decodeString);
  if (!out || out.some((s) => s === undefined)) {
    throw new UnprocessableError(`attribute ${name} of ${node.name} is not a list of strings`);
  }
  return out as string[];
}

// Integer weights exist too (Normalization's sample count, int64): they are read as float32 like the rest.
const NUMERIC_DTYPE = /^[<>=|]?(f(2|4|8)|[iu](1|2|4|8))$/;
const DATA_LAYOUT_MSG = 8;
const CONTIGUOUS = 1;

/** Reads a numeric dataset as float32 (float64/float16 and integers are narrowed/widened). */
export function readFloat32(file: H5File, ds: H5Dataset): { shape: number[]; values: Float32Array } {
  const shape = h5(`the shape of ${ds.name}`, () => [...ds.shape]);
  const dtype = h5(`the dtype of ${ds.name}`, () => ds.dtype);
  if (typeof dtype !== 'string' || !NUMERIC_DTYPE.test(dtype)) {
    throw new UnprocessableError(`weight dataset ${ds.name} has dtype ${JSON.stringify(dtype)}, not a numeric type`);
  }
  reserve(file, ds, elementCount(shape, `weight dataset ${ds.name}`));
  const fast = dtype.endsWith('f4') && !dtype.startsWith('>') ? contiguousBytes(file, ds, shape) : undefined;
  if (fast) return { shape, values: float32FromLE(fast) };
  const values = h5(`the values of ${ds.name}`, () => ds.value);
  if (!values || typeof values.length !== 'number') throw new UnprocessableError(`weight dataset ${ds.name} has no values`);
  return { shape, values: Float32Array.from(values, (v) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : NaN)) };
}

/**
 * HDF5 datasets may be gzip-chunked, and jsfive allocates the declared shape before inflating, so a
 * tiny file could declare a huge weight. The zip limits apply: no dataset may claim more than
 * MAX_COMPRESSION_RATIO times the file's size, and all of them together no more than maxUncompressedBytes.
 */
function reserve(file: H5File, ds: H5Dataset, values: number): void {
  const bytes = values * 4;
  if (bytes > MAX_COMPRESSION_RATIO * file.bytes.byteLength) {
    throw new UnprocessableError(`weight dataset ${ds.name} declares ${values} values, far more than the ${file.bytes.byteLength}-byte file can hold`);
  }
  file.budget -= bytes;
  if (file.budget < 0) throw new UnprocessableError(`the HDF5 weights add up to more than ${file.limits.maxUncompressedBytes} bytes`);
}

/**
 * Keras writes weights contiguous and unfiltered, so their bytes can be copied straight out of the
 * file instead of going through jsfive's one-JS-number-per-value array (8x the memory, far slower).
 * Anything unexpected returns undefined and the caller takes jsfive's general path.
 */
function contiguousBytes(file: H5File, ds: H5Dataset, shape: number[]): Uint8Array | undefined {
  const objs = ds._dataobjects;
  if (!objs?.find_msg_type || !objs._get_data_message_properties) return undefined;
  try {
    const msg = objs.find_msg_type(DATA_LAYOUT_MSG)[0];
    if (!msg) return undefined;
    const [, , layoutClass, propertyOffset] = objs._get_data_message_properties(msg.get('offset_to_message'));
    if (layoutClass !== CONTIGUOUS) return undefined;
    const view = new DataView(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength);
    if (propertyOffset + 8 > view.byteLength) return undefined;
    const address = view.getBigUint64(propertyOffset, true);
    const byteLength = shape.reduce((a, b) => a * b, 1) * 4;
    if (address === 0xffffffffffffffffn) throw new UnprocessableError(`weight dataset ${ds.name} has no data written`);
    if (address + BigInt(byteLength) > BigInt(view.byteLength)) {
      throw new UnprocessableError(`weight dataset ${ds.name} extends past the end of the file (truncated?)`);
    }
    const start = Number(address);
    return file.bytes.subarray(start, start + byteLength);
  } catch (err) {
    if (err instanceof AppError) throw err;
    return undefined;
  }
}
