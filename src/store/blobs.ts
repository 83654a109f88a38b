/**
 * Blob store for large binary data (uploads, weights, masks, dataset tensors).
 *
 * Blobs are content-addressed: the key is the SHA-256 of the bytes, so a retried job that writes
 * the same bytes writes the same key. Two stores implement it: this file's, on a local directory,
 * and s3-blobs.ts on the S3 API, for API and workers on different hosts (BLOB_STORE).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PayloadTooLargeError } from '../errors';

export interface BlobRef {
  /** Content address: lowercase hex SHA-256 of the bytes. */
  readonly key: string;
  readonly size: number;
}

export interface PutOptions {
  /** Abort with PayloadTooLargeError once more bytes than this arrive. */
  readonly maxBytes?: number;
}

export interface BlobStore {
  putStream(source: Readable, options?: PutOptions): Promise<BlobRef>;
  putBuffer(data: Uint8Array): Promise<BlobRef>;
  get(key: string): Promise<Buffer>;
  /** Streams the blob, or bytes [start, end] of it (inclusive, like fs.createReadStream). */
  openRead(key: string, range?: { start: number; end?: number }): Readable;
  /** Bytes [start, start + length) of each range, in order (random access, e.g. sampled images). */
  readRanges(key: string, ranges: readonly { start: number; length: number }[]): Promise<Buffer[]>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Every key in the store (for audits and orphan checks). */
  keys(): AsyncIterable<string>;
  /**
   * Removes what uploads that never finished left (a process killed mid-upload) from before
   * `olderThan`; finished blobs are never touched. @returns how many leftovers went
   */
  sweepUnfinished(olderThan: Date): Promise<number>;
  /** Releases what the store holds open (S3's keep-alive sockets); a closed store is not used again. */
  close(): void;
}

export const KEY_RE = /^[0-9a-f]{64}$/;

export function assertKey(key: string): void {
  // Keys become file paths and object names: never let one name anything outside the store.
  if (!KEY_RE.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
}

/**
 * Passes a stream through while hashing and counting it: every store names a streamed blob by
 * its digest, known only at the end, and refuses one past `maxBytes` as soon as it gets there.
 */
export class ContentMeter extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      done(new PayloadTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  /** The content address (lowercase hex SHA-256), once the stream has ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Local-disk blob store: `<root>/sha256/<ab>/<key>`, written to `<root>/tmp` then renamed. */
export class FsBlobStore implements BlobStore {
  private readonly tmpDir: string;
  private readonly dataDir: string;

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
    this.dataDir = path.join(root, 'sha256');
    fs.mkdirSync(this.tmpDir, { recursive: true });
    fs.mkdirSync(this.dataDir, { recursive: true });
  }

  private pathOf(key: string): string {
    assertKey(key);
    return path.join(this.dataDir, key.slice(0, 2), key);
  }

  async putStream(source: Readable, options: PutOptions = {}): Promise<BlobRef> {
    const tmp = path.join(this.tmpDir, `${randomUUID()}.part`);
    const meter = new ContentMeter(options.maxBytes);
    try {
      const out = fs.createWriteStream(tmp, { flags: 'wx' });
      await pipeline(source, meter, out);
      return await this.commit(tmp, meter.digest(), meter.size);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async putBuffer(data: Uint8Array): Promise<BlobRef> {
    return this.putStream(Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
  }

  /** fsync, then rename into place: a reader never sees a partial blob, even after a crash. */
  private async commit(tmp: string, key: string, size: number): Promise<BlobRef> {
    const fh = await fsp.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const dest = this.pathOf(key);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.rename(tmp, dest);
    return { key, size };
  }

  async get(key: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(key));
  }

  openRead(key: string, range?: { start: number; end?: number }): Readable {
    return fs.createReadStream(this.pathOf(key), range ? { start: range.start, end: range.end } : undefined);
  }

  async readRanges(key: string, ranges: readonly { start: number; length: number }[]): Promise<Buffer[]> {
    const fh = await fsp.open(this.pathOf(key), 'r');
    try {
      const out: Buffer[] = [];
      for (const r of ranges) {
        const buf = Buffer.alloc(r.length);
        const { bytesRead } = await fh.read(buf, 0, r.length, r.start);
        if (bytesRead !== r.length) throw new Error(`blob ${key} ends before byte ${r.start + r.length}`);
        out.push(buf);
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fsp.access(this.pathOf(key));
      return true;
    } catch {
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }

  async sweepUnfinished(olderThan: Date): Promise<number> {
    let removed = 0;
    for (const name of await fsp.readdir(this.tmpDir)) {
      const file = path.join(this.tmpDir, name);
      const st = await fsp.stat(file).catch(() => undefined);
      if (st && st.mtimeMs < olderThan.getTime()) {
        await fsp.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async *keys(): AsyncIterable<string> {
    for (const shard of await fsp.readdir(this.dataDir)) {
      for (const name of await fsp.readdir(path.join(this.dataDir, shard))) {
        if (KEY_RE.test(name)) yield name;
      }
    }
  }

  /** Nothing stays open between calls. */
  close(): void {}
}
