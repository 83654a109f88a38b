/**
 * IDX datasets (MNIST style): one images file (magic 0x0803 for [N,H,W], 0x0804 for [N,H,W,C]) and
 * one labels file (0x0801), each raw or gzip'ed. Which is which comes from the magic, not the name.
 * Both are streamed: a raw file's header is in its first bytes; a gzip'ed file is inflated up to
 * the end of its header (checked as soon as it is out, so an absurd header stops early) and again
 * in full for each pass, its length counted against the header as it goes, so a bomb stops at the
 * first byte past what the header declared.
 */
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { AppError, BadRequestError, UnsupportedFormatError } from '../../../errors';
import { skipBytes } from './byte-chunks';
import { checkImageCount, checkImageTensor, type DatasetLimits } from './limits';
import { isSourceError, type DatasetSource } from './source';
import type { Shape4, TensorPlan } from './types';

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
  readonly file: DatasetSource;
  readonly gzip: boolean;
}

export function isGzip(bytes: Buffer): boolean {
  return bytes.subarray(0, 2).equals(GZIP_MAGIC);
}

/** The IDX magic alone: two zero bytes, a type code, a rank of 1..4. */
export function looksLikeIdx(bytes: Buffer): boolean {
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0 && bytes[2]! >= 0x08 && bytes[3]! >= 1 && bytes[3]! <= 4;
}

export async function planIdx(files: readonly DatasetSource[], limits: DatasetLimits): Promise<TensorPlan> {
  let images: IdxArray | undefined;
  let labels: IdxArray | undefined;
  for (const file of files) {
    const gzip = isGzip(file.head);
    const array = { header: gzip ? await gzipHeader(file, limits) : rawHeader(file, limits), file, gzip };
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
  const labelArray = labels;
  const imageArray = images;
  return {
    shape,
    dtype: 'uint8',
    imageSource: images.header.source,
    labelSource: labels.header.source,
    async *labels() {
      for await (const bytes of payload(labelArray)) yield Int32Array.from(bytes);
    },
    images: () => payload(imageArray),
    close() {},
  };
}

/**
 * Parses and guards a header from its first bytes; undefined while more bytes are needed.
 * @throws before any payload is read when the declared sizes break a limit.
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

/** A raw file's header lies in its sniffed first bytes (an IDX header is at most 20 bytes); its length is known. */
function rawHeader(file: DatasetSource, limits: DatasetLimits): IdxHeader {
  const header = parseHeader(file.head, file.name, limits);
  if (!header) throw new BadRequestError(`${file.name}: truncated IDX header (${file.size} bytes)`);
  checkLength(header, file.size - header.headerBytes);
  return header;
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

/** The file inflated, as a stream; its own errors and the source's pass through, zlib's are the upload's fault. */
async function* gunzipped(file: DatasetSource): AsyncGenerator<Buffer> {
  const gunzip = zlib.createGunzip();
  // pipeline, not pipe: a failing read destroys the gunzip with its error instead of leaving it waiting.
  pipeline(file.stream(), gunzip, () => undefined);
  try {
    yield* gunzip as AsyncIterable<Buffer>;
  } catch (err) {
    if (err instanceof AppError || isSourceError(err)) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new BadRequestError(`${file.name}: truncated or corrupt gzip data (${message})`);
  } finally {
    gunzip.destroy();
  }
}

/** Inflates just far enough to parse the header, then stops. */
async function gzipHeader(file: DatasetSource, limits: DatasetLimits): Promise<IdxHeader> {
  let head = Buffer.alloc(0);
  for await (const chunk of gunzipped(file)) {
    head = Buffer.concat([head, chunk]);
    const header = parseHeader(head, file.name, limits);
    if (header) return header;
  }
  throw new BadRequestError(`${file.name}: truncated IDX header (${head.length} bytes after gunzip)`);
}

/** The payload bytes after the header; a gzip'ed payload is counted against the header as it inflates. */
async function* payload(array: IdxArray): AsyncGenerator<Uint8Array> {
  const { header, file } = array;
  if (!array.gzip) {
    // rawHeader checked the length already.
    yield* file.stream(header.headerBytes, file.size) as AsyncIterable<Buffer>;
    return;
  }
  let filled = 0;
  for await (const data of skipBytes(gunzipped(file), header.headerBytes)) {
    if (filled + data.length > header.payloadBytes) checkLength(header, filled + data.length);
    filled += data.length;
    yield data;
  }
  checkLength(header, filled);
}
