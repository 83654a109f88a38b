/**
 * A zip reader for untrusted uploads. Everything is in memory (the upload is already a Buffer);
 * nothing is ever written to disk, yet entry names are still checked for traversal because they
 * end up in error messages, and a hostile name means a hostile file.
 *
 * Zip bombs are stopped twice: the central directory's declared sizes are checked before anything
 * is inflated (entry count, per-entry ratio, declared total), and the bytes actually inflated are
 * counted while reading, because declared sizes are written by the attacker and can lie.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { UnprocessableError } from '../../../errors';
import type { ModelParseLimits } from './types';

export interface ZipEntryInfo {
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
}

export interface ZipArchive {
  /** Files (not directories) by their name in the archive. */
  readonly entries: ReadonlyMap<string, ZipEntryInfo>;
  /** Inflates one entry, counting its bytes against the archive's limits. */
  read(name: string): Promise<Buffer>;
  close(): void;
}

// Below this size an entry cannot hurt, and tiny text files (e.g. 4 KiB of JSON indentation) can
// legitimately compress far better than the ratio limit.
const RATIO_FLOOR_BYTES = 64 * 1024;

/** Why a name is unsafe, or undefined. yauzl checks too; this keeps the rule ours and explicit. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.length === 0) return 'empty entry name';
  if (name.includes('\0')) return `entry name ${JSON.stringify(name)} contains a NUL byte`;
  if (name.includes('\\')) return `entry name ${JSON.stringify(name)} contains a backslash`;
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) return `entry name ${JSON.stringify(name)} is an absolute path`;
  if (name.split('/').includes('..')) return `entry name ${JSON.stringify(name)} escapes the archive ("..")`;
  return undefined;
}

function corrupt(err: unknown): UnprocessableError {
  if (err instanceof UnprocessableError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new UnprocessableError(`corrupt or unsafe zip: ${msg}`);
}

function openBuffer(bytes: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    // strictFileNames: a backslash name is refused instead of silently turned into a path.
    const options = { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true, strictFileNames: true };
    yauzl.fromBuffer(bytes, options, (err, zip) => (err || !zip ? reject(corrupt(err ?? 'unreadable')) : resolve(zip)));
  });
}

function listEntries(zip: yauzl.ZipFile, limits: ModelParseLimits): Promise<Map<string, yauzl.Entry>> {
  return new Promise((resolve, reject) => {
    const files = new Map<string, yauzl.Entry>();
    let count = 0;
    let declaredTotal = 0;
    const fail = (err: unknown) => {
      zip.removeAllListeners('entry');
      reject(corrupt(err));
    };
    zip.on('error', fail);
    zip.on('end', () => resolve(files));
    zip.on('entry', (entry: yauzl.Entry) => {
      const name = entry.fileName;
      const problem = unsafeEntryName(name);
      if (problem) return fail(new UnprocessableError(`unsafe zip: ${problem}`));
      if (++count > limits.maxEntries) return fail(new UnprocessableError(`zip has more than ${limits.maxEntries} entries`));
      if (!name.endsWith('/')) {
        const problem = declaredSizeProblem(entry, limits, (declaredTotal += entry.uncompressedSize));
        if (problem) return fail(new UnprocessableError(problem));
        if (files.has(name)) return fail(new UnprocessableError(`zip lists ${JSON.stringify(name)} twice`));
        files.set(name, entry);
      }
      zip.readEntry();
    });
    zip.readEntry();
  });
}

function declaredSizeProblem(entry: yauzl.Entry, limits: ModelParseLimits, declaredTotal: number): string | undefined {
  const { fileName: name, compressedSize: c, uncompressedSize: u } = entry;
  if (u > limits.maxUncompressedBytes || declaredTotal > limits.maxUncompressedBytes) {
    return `zip declares more than ${limits.maxUncompressedBytes} uncompressed bytes (at ${JSON.stringify(name)})`;
  }
  if (u >= RATIO_FLOOR_BYTES && (c === 0 || u / c > limits.maxRatio)) {
    return `zip entry ${JSON.stringify(name)} declares a compression ratio above ${limits.maxRatio} (${u} bytes from ${c}): refusing a possible zip bomb`;
  }
  return undefined;
}

function collect(stream: Readable, entry: yauzl.Entry, budget: { left: number }, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const stop = (err: unknown) => {
      stream.destroy();
      reject(corrupt(err));
    };
    stream.on('data', (chunk: Buffer) => {
      got += chunk.length;
      budget.left -= chunk.length;
      if (got > entry.uncompressedSize) {
        return stop(new UnprocessableError(`zip entry ${JSON.stringify(entry.fileName)} inflates past its declared size of ${entry.uncompressedSize} bytes`));
      }
      if (budget.left < 0) return stop(new UnprocessableError(`zip inflates to more than ${limit} bytes`));
      chunks.push(chunk);
    });
    stream.on('error', (err: unknown) => stop(new UnprocessableError(`zip entry ${JSON.stringify(entry.fileName)} is damaged or lies about its size: ${err instanceof Error ? err.message : String(err)}`)));
    stream.on('end', () => resolve(Buffer.concat(chunks, got)));
  });
}

/** Opens a zip and checks its central directory; entries are inflated only on `read`. */
export async function openZip(bytes: Buffer, limits: ModelParseLimits): Promise<ZipArchive> {
  const zip = await openBuffer(bytes);
  let files: Map<string, yauzl.Entry>;
  try {
    files = await listEntries(zip, limits);
  } catch (err) {
    zip.close();
    throw err;
  }
  const budget = { left: limits.maxUncompressedBytes };
  const entries = new Map<string, ZipEntryInfo>(
    [...files].map(([name, e]) => [name, { name, compressedSize: e.compressedSize, uncompressedSize: e.uncompressedSize }]),
  );
  return {
    entries,
    async read(name: string): Promise<Buffer> {
      const entry = files.get(name);
      if (!entry) throw new UnprocessableError(`zip has no entry ${JSON.stringify(name)}`);
      const stream = await new Promise<Readable>((resolve, reject) =>
        zip.openReadStream(entry, (err, s) => (err || !s ? reject(corrupt(err ?? 'unreadable entry')) : resolve(s))),
      );
      return collect(stream, entry, budget, limits.maxUncompressedBytes);
    },
    close: () => zip.close(),
  };
}
