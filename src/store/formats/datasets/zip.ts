/**
 * Zip access for `npz` and `image-folder` uploads, with zip-bomb guards. Declared sizes are checked
 * from the central directory before anything is inflated; inflated bytes are then counted as they
 * stream, because declared sizes are attacker-controlled (yauzl also fails an entry whose output
 * exceeds its declared size).
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { AppError, BadRequestError, PayloadTooLargeError, UnprocessableError } from '../../../errors';
import type { DatasetLimits } from './limits';
import type { DatasetFile } from './types';

export const ZIP_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const ZIP_EMPTY_SIGNATURE = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

export interface ZipGuards {
  readonly maxEntries: number;
  /** Summed over all entries read from one archive. */
  readonly maxInflatedBytes: number;
  /** Uncompressed/compressed; deflate tops out near 1032, real image data stays far below 100. */
  readonly maxRatio: number;
}

/** Small entries may compress extremely well (a blank PNG) and cannot hurt; the ratio guard skips them. */
const RATIO_EXEMPT_BYTES = 1024 * 1024;
/** Headroom over the tensor budget for npy headers and PNG/JPEG container overhead. */
const INFLATE_SLACK_BYTES = 64 * 1024 * 1024;

export function zipGuards(limits: DatasetLimits): ZipGuards {
  return {
    maxEntries: Math.min(1_000_000, 2 * limits.maxImages + 1024),
    maxInflatedBytes: limits.maxBytes + INFLATE_SLACK_BYTES,
    maxRatio: 200,
  };
}

export function isZip(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 4);
  return head.equals(ZIP_SIGNATURE) || head.equals(ZIP_EMPTY_SIGNATURE);
}

export interface ZipEntryInfo {
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
}

export interface ZipArchive {
  /** File entries only (no directories), in central-directory order. */
  readonly entries: readonly ZipEntryInfo[];
  read(entry: ZipEntryInfo): Promise<Buffer>;
}

export async function openZip(file: DatasetFile, guards: ZipGuards): Promise<ZipArchive> {
  let zip: yauzl.ZipFile;
  const byInfo = new Map<ZipEntryInfo, yauzl.Entry>();
  let declared = 0;
  try {
    zip = await yauzl.fromBufferPromise(file.bytes, { lazyEntries: true, decodeStrings: true, validateEntrySizes: true });
    if (zip.entryCount > guards.maxEntries) {
      throw new UnprocessableError(`${file.name}: zip has ${zip.entryCount} entries, more than ${guards.maxEntries}`);
    }
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue;
      checkEntry(file.name, entry, guards);
      declared += entry.uncompressedSize;
      if (declared > guards.maxInflatedBytes) throw new PayloadTooLargeError(guards.maxInflatedBytes);
      const info = { name: entry.fileName, compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize };
      byInfo.set(info, entry);
    }
  } catch (err) {
    throw zipError(file.name, err);
  }

  let inflated = 0;
  const read = async (info: ZipEntryInfo): Promise<Buffer> => {
    const entry = byInfo.get(info);
    if (!entry) throw new Error(`zip entry ${info.name} does not belong to ${file.name}`);
    const chunks: Buffer[] = [];
    let stream: Readable | undefined;
    try {
      stream = await zip.openReadStreamPromise(entry);
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        inflated += chunk.length;
        if (inflated > guards.maxInflatedBytes) throw new PayloadTooLargeError(guards.maxInflatedBytes);
        chunks.push(chunk);
      }
    } catch (err) {
      stream?.destroy();
      throw zipError(`${file.name}:${info.name}`, err);
    }
    return Buffer.concat(chunks);
  };
  return { entries: [...byInfo.keys()], read };
}

function checkEntry(archive: string, entry: yauzl.Entry, guards: ZipGuards): void {
  const name = entry.fileName;
  // yauzl already refuses `..` segments and absolute paths; NUL and drive letters are checked here too
  // because these names end up in error details and class names.
  if (name.includes('\0') || /^[a-zA-Z]:/.test(name) || name.startsWith('/') || name.split('/').includes('..')) {
    throw new UnprocessableError(`${archive}: zip entry name ${JSON.stringify(name)} is not a safe relative path`);
  }
  if (!entry.canDecodeFileData()) {
    throw new BadRequestError(
      `${archive}: zip entry ${JSON.stringify(name)} is encrypted or uses compression method ` +
        `${entry.compressionMethod}; only stored and deflate are supported`,
    );
  }
  const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
  if (entry.uncompressedSize > RATIO_EXEMPT_BYTES && ratio > guards.maxRatio) {
    throw new UnprocessableError(
      `${archive}: zip entry ${JSON.stringify(name)} declares a compression ratio of ${Math.round(ratio)}:1 ` +
        `(${entry.uncompressedSize} bytes from ${entry.compressedSize}), above the limit of ${guards.maxRatio}:1`,
    );
  }
}

/** yauzl reports unsafe names and corruption as plain Errors; give them a status and the file name. */
function zipError(where: string, err: unknown): Error {
  if (err instanceof AppError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/^(invalid relative path|absolute path|invalid characters in fileName)/.test(message)) {
    return new UnprocessableError(`${where}: unsafe zip entry name (${message})`);
  }
  return new BadRequestError(`${where}: not a readable zip archive (${message})`);
}
