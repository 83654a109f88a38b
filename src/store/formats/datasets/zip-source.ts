/**
 * Dataset zips (npz, image folders, and the listing format detection needs) read from a `DatasetSource`
 * at random instead of from a Buffer: yauzl reads the central directory through a small block
 * cache (a few ranged reads, whatever the store), and inflates an entry as a stream, so a 1 GB
 * array never sits whole in memory.
 *
 * The guard policy is `../zip.ts`'s, applied here to a random-access reader: the same checks in
 * the same order with the same messages and statuses (422 for the archive, 413 for the byte
 * budget), which test/store/formats/zip.test.ts holds both to. zip.ts only opens Buffers; when it
 * learns to open a reader, this file shrinks to `SourceReader`.
 */
import { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { AppError, PayloadTooLargeError, UnprocessableError } from '../../../errors';
import { listFiles, UNZIPPED, zipError, type ZipEntryInfo, type ZipLimits } from '../zip';
import { isSourceError, type DatasetSource } from './source';

/** yauzl reads the central directory in pieces of ~46 bytes; one ranged read serves thousands of them. */
const BLOCK_BYTES = 256 * 1024;

export interface ZipSource {
  /** Files (not folders) by their name in the archive, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntryInfo>;
  /** The folder entries' names (ending in '/'): a folder may be listed without any file in it. */
  readonly directories: ReadonlySet<string>;
  /** The first `length` bytes of a file (a header); not counted against the byte budget, being bounded. */
  head(name: string, length: number): Promise<Buffer>;
  /** Inflates one file as a stream of chunks, counting them against the byte budget. */
  chunks(name: string): AsyncIterable<Buffer>;
  close(): void;
}

/** yauzl's window on a source: small reads (headers) come from the last block read; entry data streams. */
class SourceReader extends yauzl.RandomAccessReader {
  private block: { start: number; bytes: Buffer } | undefined;

  constructor(private readonly source: DatasetSource) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    // A large entry (an npz array) streams; a small one (an image) comes from a block, which
    // usually holds the entries after it too: one ranged read serves many images, on S3 as well.
    if (end - start > BLOCK_BYTES) return this.source.stream(start, end);
    return Readable.from(this.blockRead(start, end - start));
  }

  private async *blockRead(position: number, length: number): AsyncGenerator<Buffer> {
    yield await this.readAt(position, length);
  }

  // yauzl checks bytesRead against what it asked for ("unexpected EOF"), so a short read is reported, not thrown.
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    this.readAt(position, length).then(
      (bytes) => {
        bytes.copy(buffer, offset);
        callback(null, bytes.length);
      },
      (err: Error) => callback(err),
    );
  }

  private async readAt(position: number, length: number): Promise<Buffer> {
    const end = Math.min(position + length, this.source.size);
    if (end <= position) return Buffer.alloc(0);
    const b = this.block;
    if (b && position >= b.start && end <= b.start + b.bytes.length) return b.bytes.subarray(position - b.start, end - b.start);
    if (end - position > BLOCK_BYTES) return this.source.read(position, end - position);
    const bytes = await this.source.read(position, Math.min(BLOCK_BYTES, this.source.size - position));
    this.block = { start: position, bytes };
    return bytes.subarray(0, end - position);
  }
}

/** The zip policy's error for what yauzl reports; a failed read of the upload itself passes through. */
function zipSourceError(source: string, err: unknown): unknown {
  return isSourceError(err) ? err : zipError(source, err);
}

/**
 * Opens a zip and checks its central directory; files are inflated only when streamed.
 * @throws UnprocessableError (422) for an unreadable, damaged or unsafe zip (now or while streaming)
 * @throws PayloadTooLargeError (413) when the files declare, or inflate to, more than the byte budget
 */
export async function openZipSource(file: DatasetSource, limits: ZipLimits): Promise<ZipSource> {
  const source = file.name;
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(new SourceReader(file), file.size, {
      lazyEntries: true,
      decodeStrings: true,
      validateEntrySizes: true,
      strictFileNames: true,
      // Entries are streamed after the listing is done: the reader stays open until close().
      autoClose: false,
    });
  } catch (err) {
    throw zipSourceError(source, err);
  }
  let files: Map<string, yauzl.Entry>;
  const directories = new Set<string>();
  try {
    files = await listFiles(source, zip, limits, directories);
  } catch (err) {
    zip.close();
    throw zipSourceError(source, err);
  }
  const budget = { left: limits.maxUncompressedBytes };
  const entries = new Map<string, ZipEntryInfo>(
    [...files].map(([name, e]) => [name, { name, compressedSize: e.compressedSize, uncompressedSize: e.uncompressedSize }]),
  );

  const where = (entry: yauzl.Entry) => `${source}: zip entry ${JSON.stringify(entry.fileName)}`;
  const open = async (name: string): Promise<{ entry: yauzl.Entry; stream: Readable }> => {
    const entry = files.get(name);
    if (!entry) throw new UnprocessableError(`${source}: zip has no entry ${JSON.stringify(name)}`);
    if (!entry.canDecodeFileData()) {
      throw new UnprocessableError(`${where(entry)} is encrypted or uses compression method ${entry.compressionMethod}; only stored and deflate are supported`);
    }
    try {
      return { entry, stream: await zip.openReadStreamPromise(entry) };
    } catch (err) {
      throw zipSourceError(source, err);
    }
  };
  const damaged = (entry: yauzl.Entry, err: unknown): unknown => {
    if (err instanceof AppError || isSourceError(err)) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new UnprocessableError(`${where(entry)} is damaged or lies about its size (${message})`);
  };

  return {
    entries,
    directories,
    async head(name, length) {
      const { entry, stream } = await open(name);
      const parts: Buffer[] = [];
      let got = 0;
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          parts.push(chunk);
          got += chunk.length;
          if (got >= length) break;
        }
      } catch (err) {
        throw damaged(entry, err);
      } finally {
        stream.destroy();
      }
      return Buffer.concat(parts, got).subarray(0, length);
    },
    async *chunks(name) {
      const { entry, stream } = await open(name);
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          budget.left -= chunk.length;
          if (budget.left < 0) throw new PayloadTooLargeError(limits.maxUncompressedBytes, UNZIPPED);
          yield chunk;
        }
      } catch (err) {
        throw damaged(entry, err);
      } finally {
        stream.destroy();
      }
    },
    close: () => zip.close(),
  };
}
