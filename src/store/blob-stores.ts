/**
 * The blob store a process uses, from the configuration: the local directory (BLOB_STORE=fs), or
 * S3 (BLOB_STORE=s3), where a worker also keeps hot blobs in a local cache under BLOB_DIR.
 */
import path from 'node:path';
import type { Config } from '../config/env';
import { FsBlobStore, type BlobStore } from './blobs';
import { CachedBlobStore } from './cached-blobs';
import { S3BlobStore } from './s3-blobs';

export function createBlobStore(config: Config, opts: { localCache?: boolean } = {}): BlobStore {
  if (config.blobStore === 'fs') return new FsBlobStore(config.blobDir);
  const s3 = new S3BlobStore(config.s3);
  if (!opts.localCache || config.blobCacheBytes === 0) return s3;
  return new CachedBlobStore(s3, path.join(config.blobDir, 'cache'), config.blobCacheBytes);
}
