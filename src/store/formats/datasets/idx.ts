/**
 * IDX datasets (MNIST style): one images file (magic 0x0803 for [N,H,W], 0x0804 for [N,H,W,C]) and
 * one labels file (0x0801), each raw or gzip'ed. Which is which comes from the magic, not the name.
 * Gzip'ed files are inflated as a stream: the header is checked as soon as it is out, and the
 * payload is copied straight into an array of exactly the declared size, so a bomb or an absurd
 * header stops early and nothing is allocated beyond what the limits allow.
 */
import zlib from 'node:zlib';
import { AppError, BadRequestError, UnsupportedFormatError } from '../../../errors';
import { allocate, checkImageCount, checkImageTensor, type DatasetLimits } from './limits';
import type { DatasetFile, DecodedDataset, Shape4 } from './types';

export const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const UBYTE = 0x08;
const TYPE_NAMES: Record<number, string> = { 0x09: 'int8', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64' };

interface IdxHeader {
  readonly source: string;
  readonly dims: readonly number[];
  readonly headerBytes: number;
  readonly payloadBytes: number;
}

interface IdxArray {
  readonly header: IdxHeader;
  readonly payload: Uint8Array;
}

export function isGzip(bytes: Buffer): boolean {
  return bytes.subarray(0, 2).equals(GZIP_MAGIC);
}

/** The IDX magic alone: two zero bytes, a type code, a rank of 1..4. */
export function looksLikeIdx(bytes: Buffer): boolean {
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0 && bytes[2]! >= 0x08 && bytes[3]! >= 1 && bytes[3]! <= 4;
}

export async function readIdx(files: readonly DatasetFile[], limits: DatasetLimits): Promise<DecodedDataset> {
  let images: IdxArray | undefined;
  let labels: IdxArray | undefined;
  for (const file of files) {
    const array = isGzip(file.bytes) ? await gunzipIdx(file, limits) : readRawIdx(file, limits);
    const isLabels = array.header.dims.length === 1;
    const taken = isLabels ? labels : images;
    if (taken) {
      throw new BadRequestError(`idx: both ${taken.header.source} and ${file.name} are ${isLabels ? 'label' : 'image'} files; upload one of each`);
    }
    if (isLabels) labels = array;
    else images = array;
  }
  if (!images || !labels) {
    const names = files.map((f) => f.name).join(', ');
    throw new BadRequestError(`idx: need one images file (magic 0x00000803) and one labels file (0x00000801); got ${names}`);
  }

  const [n, h, w, c = 1] = images.header.dims as [number, number, number, number?];
  if (labels.header.dims[0] !== n) {
    throw new BadRequestError(`image/label count mismatch: ${n} images in ${images.header.source}, ${labels.header.dims[0]} labels in ${labels.header.source}`);
  }
  const shape: Shape4 = [n, h, w, c];
  return {
    shape,
    dtype: 'uint8',
    images: images.payload,
    labels: Int32Array.from(labels.payload),
    imageSource: images.header.source,
    labelSource: labels.header.source,
  };
}

/**
 * Parses and guards a header from its first bytes; undefined while more bytes are needed.
 * @throws before any payload is allocated when the declared sizes break a limit.
 */
function parseHeader(head: Uint8Array, source: string, limits: DatasetLimits): IdxHeader | undefined {
  if (head.length < 4) return undefined;
  if (head[0] !== 0 || head[1] !== 0 || head[3]! < 1 || head[3]! > 4) {
    throw new UnsupportedFormatError(`${source}: not an IDX file (magic ${Buffer.from(head.subarray(0, 4)).toString('hex')})`);
  }
  if (head[2] !== UBYTE) {
    const name = TYPE_NAMES[head[2]!] ?? `0x${head[2]!.toString(16)}`;
    throw new BadRequestError(`${source}: IDX element type ${name} is not supported; only unsigned bytes (0x08)`);
  }
  const rank = head[3]!;
  const headerBytes = 4 + 4 * rank;
  if (head.length < headerBytes) return undefined;
  const view = Buffer.from(head.buffer, head.byteOffset, headerBytes);
  const dims = Array.from({ length: rank }, (_, i) => view.readUInt32BE(4 + 4 * i));
  if (rank === 1) {
    checkImageCount(source, dims[0]!, limits);
  } else if (rank === 3 || rank === 4) {
    checkImageTensor(source, [dims[0]!, dims[1]!, dims[2]!, dims[3] ?? 1], 1, limits);
  } else {
    throw new BadRequestError(`${source}: IDX rank ${rank} is neither labels (1) nor images (3 or 4)`);
  }
  const payloadBytes = dims.reduce((a, b) => a * b, 1);
  return { source, dims, headerBytes, payloadBytes };
}

function readRawIdx(file: DatasetFile, limits: DatasetLimits): IdxArray {
  const header = parseHeader(file.bytes, file.name, limits);
  if (!header) throw new BadRequestError(`${file.name}: truncated IDX header (${file.bytes.length} bytes)`);
  checkLength(header, file.bytes.length - header.headerBytes);
  const payload = allocate(() => new Uint8Array(header.payloadBytes), limits);
  payload.set(file.bytes.subarray(header.headerBytes));
  return { header, payload };
}

function checkLength(header: IdxHeader, have: number): void {
  const want = header.payloadBytes;
  const dims = header.dims.join('x');
  if (have < want) {
    throw new BadRequestError(`${header.source}: truncated: header declares ${dims} (${want} bytes), found ${have}`);
  }
  if (have > want) {
    throw new BadRequestError(`${header.source}: ${have - want} unexpected bytes after the declared ${dims} data`);
  }
}

async function gunzipIdx(file: DatasetFile, limits: DatasetLimits): Promise<IdxArray> {
  const gunzip = zlib.createGunzip();
  gunzip.end(file.bytes);
  let head = Buffer.alloc(0);
  let header: IdxHeader | undefined;
  let payload: Uint8Array | undefined;
  let filled = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let data = chunk;
      if (!header) {
        head = Buffer.concat([head, chunk]);
        header = parseHeader(head, file.name, limits);
        if (!header) continue;
        const size = header.payloadBytes;
        payload = allocate(() => new Uint8Array(size), limits);
        data = head.subarray(header.headerBytes);
      }
      if (filled + data.length > payload!.length) {
        checkLength(header, filled + data.length);
      }
      payload!.set(data, filled);
      filled += data.length;
    }
  } catch (err) {
    gunzip.destroy();
    if (err instanceof AppError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new BadRequestError(`${file.name}: truncated or corrupt gzip data (${message})`);
  }
  if (!header || !payload) throw new BadRequestError(`${file.name}: truncated IDX header (${head.length} bytes after gunzip)`);
  checkLength(header, filled);
  return { header, payload };
}
