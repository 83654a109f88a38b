/**
 * A worker's local cache in front of a remote blob store (s3-blobs.ts): blobs read whole (`get`:
 * model weights, masks, heads) are kept on local disk up to a size limit, least recently used
 * going first, and every read of a cached blob is served from disk. Blobs are content-addressed, so
 * a cached copy never goes stale: there is nothing to invalidate, only room to make.
 * Writes and deletes go to the remote store; a delete also drops the local copy.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FsBlobStore, KEY_RE, type BlobRef, type BlobStore, type PutOptions } from './blobs';

export class CachedBlobStore implements BlobStore {
  private readonly local: FsBlobStore;
  /** Cached keys and sizes, least recently used first (a Map keeps insertion order). */
  private readonly entries = new Map<string, number>();
  private bytes = 0;
  /** For tests and metrics. */
  hits = 0;
  misses = 0;

  constructor(
    readonly remote: BlobStore,
    dir: string,
    readonly maxBytes: number,
  ) {
    this.local = new FsBlobStore(dir);
    // What an earlier run of this worker left is still good (content-addressed): adopt it,
    // oldest first, then trim to the limit.
    const found: { key: string; size: number; at: number }[] = [];
    const shards = path.join(dir, 'sha256');
    for (const shard of fs.readdirSync(shards)) {
      for (const name of fs.readdirSync(path.join(shards, shard))) {
        if (!KEY_RE.test(name)) continue;
        const st = fs.statSync(path.join(shards, shard, name));
        found.push({ key: name, size: st.size, at: st.mtimeMs });
      }
    }
    for (const f of found.sort((a, b) => a.at - b.at)) {
      this.entries.set(f.key, f.size);
      this.bytes += f.size;
    }
    void this.trim();
  }

  /** Bytes held on disk. */
  get size(): number {
    return this.bytes;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  private touch(key: string): boolean {
    const size = this.entries.get(key);
    if (size === undefined) return false;
    this.entries.delete(key);
    this.entries.set(key, size);
    return true;
  }

  private async trim(): Promise<void> {
    for (const [key, size] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(key);
      this.bytes -= size;
      await this.local.delete(key).catch(() => undefined);
    }
  }

  async get(key: string): Promise<Buffer> {
    if (this.touch(key)) {
      try {
        const data = await this.local.get(key);
        this.hits++;
        return data;
      } catch {
        // Removed under us (a trim racing this read, or by hand): read it again from the remote.
        this.forget(key);
      }
    }
    this.misses++;
    const data = await this.remote.get(key);
    if (data.length <= this.maxBytes) await this.keep(key, data).catch(() => undefined);
    return data;
  }

  private async keep(key: string, data: Buffer): Promise<void> {
    if (this.entries.has(key)) return;
    const ref = await this.local.putBuffer(data);
    // The local store names it by its own digest: the remote's bytes are checked on the way in.
    if (ref.key !== key) {
      await this.local.delete(ref.key);
      throw new Error(`blob ${key} read back with digest ${ref.key}`);
    }
    // Another read of the same blob may have kept it meanwhile (same bytes, same file).
    if (this.entries.has(key)) return;
    this.entries.set(key, data.length);
    this.bytes += data.length;
    await this.trim();
  }

  private forget(key: string): void {
    const size = this.entries.get(key);
    if (size === undefined) return;
    this.entries.delete(key);
    this.bytes -= size;
  }

  openRead(key: string, range?: { start: number; end?: number }): Readable {
    return this.touch(key) ? this.local.openRead(key, range) : this.remote.openRead(key, range);
  }

  readRanges(key: string, ranges: readonly { start: number; length: number }[]): Promise<Buffer[]> {
    return this.touch(key) ? this.local.readRanges(key, ranges) : this.remote.readRanges(key, ranges);
  }

  putStream(source: Readable, options?: PutOptions): Promise<BlobRef> {
    return this.remote.putStream(source, options);
  }

  putBuffer(data: Uint8Array): Promise<BlobRef> {
    return this.remote.putBuffer(data);
  }

  exists(key: string): Promise<boolean> {
    return this.remote.exists(key);
  }

  async delete(key: string): Promise<void> {
    await this.remote.delete(key);
    if (this.entries.has(key)) {
      this.forget(key);
      await this.local.delete(key);
    }
  }

  keys(): AsyncIterable<string> {
    return this.remote.keys();
  }

  async sweepUnfinished(olderThan: Date): Promise<number> {
    return (await this.remote.sweepUnfinished(olderThan)) + (await this.local.sweepUnfinished(olderThan));
  }

  close(): void {
    this.remote.close();
  }
}
