/**
 * What the dataset readers read: an uploaded file they can stream from any offset or read at
 * random, never needing it whole. The API hands them blobs (`blobSource`); `parseDataset` and the
 * tests hand them Buffers (`bufferSource`), streamed in pieces so the same chunk-boundary code runs.
 */
import { Readable } from 'node:stream';
import type { BlobRef, BlobStore } from '../../blobs';
import type { DatasetFile } from './types';

/** Enough to sniff every format: gzip needs 2 bytes, zip 4, .npy 6, an IDX header at most 20. */
export const SNIFF_BYTES = 64;

/** Pieces a Buffer source is streamed in: the size of a file stream's reads. */
const PIECE_BYTES = 64 * 1024;

export interface DatasetSource {
  readonly name: string;
  readonly size: number;
  /** The first min(size, SNIFF_BYTES) bytes. */
  readonly head: Buffer;
  /** Bytes [start, end) (default: the whole file) as a stream. */
  stream(start?: number, end?: number): Readable;
  /** Bytes [start, start + length), fewer where the file ends first. */
  read(start: number, length: number): Promise<Buffer>;
}

/**
 * Errors of the storage under a source (a missing blob, S3 unreachable). Readers map the errors of
 * the bytes they decode (a corrupt gzip, a damaged zip) to 4xx problems; these must pass through
 * unchanged, because the upload is not at fault.
 */
const sourceErrors = new WeakSet<object>();

export function isSourceError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && sourceErrors.has(err);
}

function markSourceError(err: unknown): void {
  if (typeof err === 'object' && err !== null) sourceErrors.add(err);
}

function clamp(size: number, start: number, end: number): [number, number] {
  const from = Math.min(Math.max(0, start), size);
  return [from, Math.min(Math.max(from, end), size)];
}

export function bufferSource(file: DatasetFile): DatasetSource {
  const { bytes } = file;
  return {
    name: file.name,
    size: bytes.length,
    head: bytes.subarray(0, SNIFF_BYTES),
    stream(start = 0, end = bytes.length) {
      const [from, to] = clamp(bytes.length, start, end);
      return Readable.from(
        (function* pieces() {
          for (let at = from; at < to; at += PIECE_BYTES) yield bytes.subarray(at, Math.min(to, at + PIECE_BYTES));
        })(),
        { objectMode: false },
      );
    },
    read(start, length) {
      const [from, to] = clamp(bytes.length, start, start + length);
      return Promise.resolve(bytes.subarray(from, to));
    },
  };
}

/** A stored upload. Reads its first bytes at once, so sniffing costs no further round trip. */
export async function blobSource(blobs: Pick<BlobStore, 'openRead' | 'readRanges'>, blob: BlobRef, name: string): Promise<DatasetSource> {
  const { key, size } = blob;
  const read = async (start: number, length: number): Promise<Buffer> => {
    const [from, to] = clamp(size, start, start + length);
    if (to === from) return Buffer.alloc(0);
    try {
      return (await blobs.readRanges(key, [{ start: from, length: to - from }]))[0]!;
    } catch (err) {
      markSourceError(err);
      throw err;
    }
  };
  return {
    name,
    size,
    head: await read(0, SNIFF_BYTES),
    stream(start = 0, end = size) {
      const [from, to] = clamp(size, start, end);
      if (to === from) return Readable.from([]);
      const stream = blobs.openRead(key, { start: from, end: to - 1 });
      stream.on('error', markSourceError);
      return stream;
    },
    read,
  };
}

/** The whole file, for the small ones (class-name lists) and the formats decoded in memory (image-folder). */
export function readWhole(source: DatasetSource): Promise<Buffer> {
  return source.read(0, source.size);
}
