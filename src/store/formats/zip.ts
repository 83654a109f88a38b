/**
 * The one zip reader for untrusted uploads: model files (Keras `.keras`, zipped TF.js layers models)
 * and datasets (image-folder zips, NumPy `.npz`). Everything is in memory (the upload is already a
 * Buffer) and nothing is written to disk; entry names are still checked, because they end up in
 * error details, class names and shard lookups, and a hostile name means a hostile file.
 *
 * One guard policy for every caller. Zip bombs are stopped twice: the central directory's declared
 * sizes are checked before anything is inflated (entry count, per-entry ratio, declared total), and
 * the bytes actually inflated are counted while reading, because declared sizes are written by the
 * attacker (yauzl's validateEntrySizes also fails an entry whose data does not match its header).
 * Callers differ only in their limits (`ZipLimits`): a model zip holds a few files, a dataset zip
 * up to millions of images, and each has its own byte budget.
 *
 * One error policy: anything wrong with the archive itself (unreadable or damaged, sizes that lie,
 * unsafe or duplicate names, too many entries, a bomb's ratio, encryption) is a 422
 * UnprocessableError: the upload arrived whole and its bytes were recognised as a zip, so the request
 * is well-formed, but the file cannot be used. Model uploads already answer 422 for every damaged
 * model file (a truncated HDF5 too). The byte budget is the one limit stated in bytes, so going over
 * it is a 413 PayloadTooLargeError, like every other size limit of the API.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { AppError, PayloadTooLargeError, UnprocessableError } from '../../errors';

/** What `maxUncompressedBytes` bounds, as a 413 names it. */
export const UNZIPPED = 'the unzipped contents';

/**
 * Largest uncompressedSize / compressedSize an entry may declare. Deflate tops out near 1032:1;
 * real payloads stay far below 100:1 (float32 weights barely compress, PNG and JPEG are compressed
 * already, uint8 image arrays give 2-10:1), while a bomb needs hundreds to be worth building.
 * HDF5 weights (gzip-chunked datasets) are held to the same ratio.
 */
export const MAX_COMPRESSION_RATIO = 200;

/**
 * Entries up to this size skip the ratio check. They cannot hurt: what they inflate to is counted
 * against the caller's byte budget, and there are at most `maxEntries` of them. And small files
 * legitimately compress far better than 200:1: indented JSON configs, a blank PNG, a sorted label
 * array (60,000 int64 labels sorted by class deflate to well under 1 KB). The model reader's old
 * 64 KiB floor refused such label arrays; 1 MiB was the dataset reader's floor.
 */
export const RATIO_EXEMPT_BYTES = 1024 * 1024;

export interface ZipLimits {
  /** Most entries (files and folders) the central directory may list. */
  readonly maxEntries: number;
  /** Most bytes all files may declare together, and all reads may inflate together. */
  readonly maxUncompressedBytes: number;
}

export interface ZipEntryInfo {
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
}

export interface ZipArchive {
  /** Files (not folders) by their name in the archive, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntryInfo>;
  /** Inflates one file, counting its bytes against the byte budget. */
  read(name: string): Promise<Buffer>;
  close(): void;
}

const ZIP_LOCAL_HEADER = Buffer.from('PK\x03\x04', 'latin1');
const ZIP_EMPTY_ARCHIVE = Buffer.from('PK\x05\x06', 'latin1');

/** True when the bytes start like a zip: a local file header, or the end record of an empty zip. */
export function isZip(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 4);
  return head.equals(ZIP_LOCAL_HEADER) || head.equals(ZIP_EMPTY_ARCHIVE);
}

/** Why a name is unsafe, or undefined. yauzl checks too; this keeps the rule ours and explicit. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.length === 0) return 'empty entry name';
  if (name.includes('\0')) return `entry name ${JSON.stringify(name)} contains a NUL byte`;
  if (name.includes('\\')) return `entry name ${JSON.stringify(name)} contains a backslash`;
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) return `entry name ${JSON.stringify(name)} is an absolute path`;
  if (name.split('/').includes('..')) return `entry name ${JSON.stringify(name)} escapes the archive ("..")`;
  return undefined;
}

// yauzl refuses these names itself, before we see the entry (see validateFileName in yauzl).
const YAUZL_NAME_ERROR = /^(invalid relative path|absolute path|invalid characters in fileName)/;

/** yauzl reports unsafe names and corruption as plain Errors; give them the policy's status and the archive's name. */
export function zipError(source: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (YAUZL_NAME_ERROR.test(message)) return new UnprocessableError(`${source}: unsafe zip entry name (${message})`);
  return new UnprocessableError(`${source}: corrupt zip (${message})`);
}

/** Checks one file entry's declared sizes; `declaredTotal` already includes it. */
function checkDeclaredSize(source: string, entry: yauzl.Entry, limits: ZipLimits, declaredTotal: number): void {
  const { fileName: name, compressedSize: c, uncompressedSize: u } = entry;
  if (u > RATIO_EXEMPT_BYTES && u / Math.max(1, c) > MAX_COMPRESSION_RATIO) {
    throw new UnprocessableError(
      `${source}: zip entry ${JSON.stringify(name)} declares a compression ratio of ${Math.round(u / Math.max(1, c))}:1 ` +
        `(${u} bytes from ${c}); a ratio above ${MAX_COMPRESSION_RATIO} is refused as a possible zip bomb`,
    );
  }
  if (declaredTotal > limits.maxUncompressedBytes) throw new PayloadTooLargeError(limits.maxUncompressedBytes, UNZIPPED);
}

/**
 * The archive's file entries by name, after the policy's checks of the central directory (entry
 * count, names, duplicates, declared sizes and ratios): also what datasets/zip-source.ts reads.
 * @param directories filled with the names (ending in '/') of the folder entries, when given
 */
export async function listFiles(source: string, zip: yauzl.ZipFile, limits: ZipLimits, directories?: Set<string>): Promise<Map<string, yauzl.Entry>> {
  // entryCount comes from the end record; yauzl never reads past it, so extra entries stay unseen.
  if (zip.entryCount > limits.maxEntries) {
    throw new UnprocessableError(`${source}: zip has more than ${limits.maxEntries} entries (${zip.entryCount})`);
  }
  const files = new Map<string, yauzl.Entry>();
  let declaredTotal = 0;
  for await (const entry of zip.eachEntry()) {
    const name = entry.fileName;
    const problem = unsafeEntryName(name);
    if (problem) throw new UnprocessableError(`${source}: unsafe zip ${problem}`);
    if (name.endsWith('/')) {
      directories?.add(name);
      continue;
    }
    // Two entries with one name would let a checker and a reader see different files.
    if (files.has(name)) throw new UnprocessableError(`${source}: zip lists ${JSON.stringify(name)} twice`);
    declaredTotal += entry.uncompressedSize;
    checkDeclaredSize(source, entry, limits, declaredTotal);
    files.set(name, entry);
  }
  return files;
}

async function inflate(source: string, zip: yauzl.ZipFile, entry: yauzl.Entry, budget: { left: number }, limits: ZipLimits): Promise<Buffer> {
  const where = `${source}: zip entry ${JSON.stringify(entry.fileName)}`;
  if (!entry.canDecodeFileData()) {
    throw new UnprocessableError(`${where} is encrypted or uses compression method ${entry.compressionMethod}; only stored and deflate are supported`);
  }
  let stream: Readable;
  try {
    stream = await zip.openReadStreamPromise(entry);
  } catch (err) {
    throw zipError(source, err);
  }
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      got += chunk.length;
      budget.left -= chunk.length;
      if (budget.left < 0) throw new PayloadTooLargeError(limits.maxUncompressedBytes, UNZIPPED);
      chunks.push(chunk);
    }
  } catch (err) {
    stream.destroy();
    if (err instanceof AppError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new UnprocessableError(`${where} is damaged or lies about its size (${message})`);
  }
  return Buffer.concat(chunks, got);
}

/**
 * Opens a zip and checks its central directory; files are inflated only on `read`.
 * @param source names the archive in error details (an upload's file name)
 * @throws UnprocessableError (422) for an unreadable, damaged or unsafe zip (now or on `read`)
 * @throws PayloadTooLargeError (413) when the files declare, or inflate to, more than the byte budget
 */
export async function openZip(bytes: Buffer, limits: ZipLimits, source: string): Promise<ZipArchive> {
  let zip: yauzl.ZipFile;
  try {
    // strictFileNames: a backslash name is refused instead of silently turned into a path.
    zip = await yauzl.fromBufferPromise(bytes, { lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true });
  } catch (err) {
    throw zipError(source, err);
  }
  let files: Map<string, yauzl.Entry>;
  try {
    files = await listFiles(source, zip, limits);
  } catch (err) {
    zip.close();
    throw zipError(source, err);
  }
  const budget = { left: limits.maxUncompressedBytes };
  const entries = new Map<string, ZipEntryInfo>(
    [...files].map(([name, e]) => [name, { name, compressedSize: e.compressedSize, uncompressedSize: e.uncompressedSize }]),
  );
  return {
    entries,
    read(name: string): Promise<Buffer> {
      const entry = files.get(name);
      if (!entry) return Promise.reject(new UnprocessableError(`${source}: zip has no entry ${JSON.stringify(name)}`));
      return inflate(source, zip, entry, budget, limits);
    },
    close: () => zip.close(),
  };
}
