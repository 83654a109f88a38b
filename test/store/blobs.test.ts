/**
 * The blob store contract, one suite over every implementation: the local directory, S3 (an
 * S3-compatible server started here), and S3 behind a worker's local cache. Each must address
 * content, stream in and out, show no partial object after a failed upload, and delete.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CreateMultipartUploadCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { FsBlobStore, type BlobStore } from '../../src/store/blobs';
import { S3BlobStore } from '../../src/store/s3-blobs';
import { CachedBlobStore } from '../../src/store/cached-blobs';
import { PayloadTooLargeError } from '../../src/errors';
import { startS3Server, TEST_S3_CREDENTIALS, type TestS3 } from '../support/s3-server';

interface Subject {
  readonly store: BlobStore;
  /** Everything the store holds, finished or not (temporary files, temporary objects). */
  everything(): Promise<string[]>;
  /** Leaves what an upload killed midway leaves behind. */
  leaveUnfinished(): Promise<void>;
}

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(() => s3.stop());

const tmpDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), name));
const filesUnder = (dir: string): string[] =>
  fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name));

async function s3Subject(prefix = ''): Promise<Subject & { store: S3BlobStore }> {
  const bucket = await s3.bucket();
  const store = new S3BlobStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket, prefix, forcePathStyle: true, credentials: TEST_S3_CREDENTIALS });
  return {
    store,
    everything: async () => ((await store.client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key as string),
    leaveUnfinished: async () => {
      // Killed after the multipart upload completed, before the copy: a temporary object.
      await store.client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}tmp/left-behind`, Body: Buffer.from('partial') }));
      // Killed mid-upload: a multipart upload with a part, never completed.
      const { UploadId } = await store.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}tmp/never-completed` }));
      await store.client.send(
        new UploadPartCommand({ Bucket: bucket, Key: `${prefix}tmp/never-completed`, UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }),
      );
    },
  };
}

const leaveTmpFile = async (dir: string) => fs.writeFileSync(path.join(dir, 'tmp', 'left-behind.part'), 'partial');

const SUBJECTS: [string, () => Promise<Subject>][] = [
  [
    'FsBlobStore',
    async () => {
      const store = new FsBlobStore(tmpDir('blobs-test-'));
      return { store, everything: async () => filesUnder(store.root), leaveUnfinished: () => leaveTmpFile(store.root) };
    },
  ],
  ['S3BlobStore', () => s3Subject()],
  ['S3BlobStore under a prefix', () => s3Subject('deploy-a/')],
  [
    'S3BlobStore behind a local cache',
    async () => {
      const remote = await s3Subject();
      const dir = tmpDir('blob-cache-');
      const store = new CachedBlobStore(remote.store, dir, 1024 * 1024);
      return {
        store,
        everything: async () => [...(await remote.everything()), ...filesUnder(dir)],
        leaveUnfinished: async () => {
          await remote.leaveUnfinished();
          await leaveTmpFile(dir);
        },
      };
    },
  ],
];

async function keysOf(store: BlobStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of store.keys()) keys.push(k);
  return keys.sort();
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.each(SUBJECTS)('%s', (_name, make) => {
  let subject: Subject;
  let s: BlobStore;
  beforeEach(async () => {
    subject = await make();
    s = subject.store;
  });

  it('addresses content by SHA-256 and reads it back', async () => {
    const data = Buffer.from('hello blobs');
    const ref = await s.putBuffer(data);
    expect(ref).toEqual({ key: digest(data), size: data.length });
    expect(await s.get(ref.key)).toEqual(data);
    expect(await s.get(ref.key)).toEqual(data);
    expect(await s.exists(ref.key)).toBe(true);
    // Same bytes, same key, one blob, whether put whole or streamed.
    expect(await s.putBuffer(Buffer.from('hello blobs'))).toEqual(ref);
    expect(await s.putStream(Readable.from([Buffer.from('hello '), Buffer.from('blobs')]))).toEqual(ref);
    expect(await keysOf(s)).toEqual([ref.key]);
    await s.delete(ref.key);
    expect(await s.exists(ref.key)).toBe(false);
    expect(await keysOf(s)).toEqual([]);
    // Deleting what is gone is not an error (a retried cleanup).
    await s.delete(ref.key);
  });

  it('streams multi-part input in and out, whole and by ranges', async () => {
    // 12 MiB: more than two S3 multipart parts of 5 MiB.
    const data = Buffer.alloc(12 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const chunks = function* () {
      for (let at = 0; at < data.length; at += 1 << 20) yield data.subarray(at, at + (1 << 20));
    };
    const ref = await s.putStream(Readable.from(chunks()), { maxBytes: data.length });
    expect(ref).toEqual({ key: digest(data), size: data.length });
    expect((await readAll(s.openRead(ref.key))).equals(data)).toBe(true);
    expect((await readAll(s.openRead(ref.key, { start: 5, end: 9 }))).equals(data.subarray(5, 10))).toBe(true);
    expect((await readAll(s.openRead(ref.key, { start: data.length - 3 }))).equals(data.subarray(data.length - 3))).toBe(true);
    // Out of order, overlapping, near and far apart: each comes back as asked.
    const ranges = [
      { start: 9_000_000, length: 3072 },
      { start: 0, length: 10 },
      { start: 4, length: 3 },
      { start: 300_000, length: 3072 },
      { start: data.length - 1, length: 1 },
      { start: 100, length: 0 },
    ];
    const parts = await s.readRanges(ref.key, ranges);
    expect(parts.map((p) => p.length)).toEqual(ranges.map((r) => r.length));
    parts.forEach((p, i) => expect(p.equals(data.subarray(ranges[i].start, ranges[i].start + ranges[i].length))).toBe(true));
    await expect(s.readRanges(ref.key, [{ start: data.length - 2, length: 4 }])).rejects.toThrow(/ends before byte/);
  });

  it('enforces maxBytes and keeps nothing of a refused or failed upload', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const tooLarge = Readable.from(
      (function* () {
        for (let i = 0; i < 12; i++) yield chunk;
      })(),
    );
    await expect(s.putStream(tooLarge, { maxBytes: 6 * 1024 * 1024 })).rejects.toBeInstanceOf(PayloadTooLargeError);
    // The client goes away after 7 MiB (a part was already uploaded).
    const broken = new Readable({
      read() {
        if ((this as Readable & { sent?: number }).sent === undefined) (this as Readable & { sent?: number }).sent = 0;
        const self = this as Readable & { sent: number };
        if (self.sent++ < 7) this.push(chunk);
        else this.destroy(new Error('client went away'));
      },
    });
    await expect(s.putStream(broken)).rejects.toThrow(/client went away/);
    expect(await keysOf(s)).toEqual([]);
    expect(await subject.everything()).toEqual([]);
  });

  it('sweeps what unfinished uploads left, from before the given time, and no blob', async () => {
    const ref = await s.putBuffer(Buffer.from('a finished blob'));
    const before = await subject.everything();
    await subject.leaveUnfinished();
    expect((await subject.everything()).length).toBeGreaterThan(before.length);
    // Nothing is older than the epoch: nothing goes.
    expect(await s.sweepUnfinished(new Date(0))).toBe(0);
    expect(await s.sweepUnfinished(new Date(Date.now() + 60_000))).toBeGreaterThan(0);
    expect(await subject.everything()).toEqual(before);
    expect(await s.get(ref.key)).toEqual(Buffer.from('a finished blob'));
  });

  it('reports a missing blob as ENOENT on every read', async () => {
    const missing = digest(Buffer.from('never stored'));
    expect(await s.exists(missing)).toBe(false);
    await expect(s.get(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readAll(s.openRead(missing))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(s.readRanges(missing, [{ start: 0, length: 1 }])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses keys that are not hex digests (no path traversal)', async () => {
    await expect(s.get('../../etc/passwd')).rejects.toThrow(/invalid blob key/);
    expect(() => s.openRead('abc')).toThrow(/invalid blob key/);
  });
});

describe('CachedBlobStore', () => {
  it('serves blobs read whole from disk, within its size limit, least recently used going first', async () => {
    const { store: remote } = await s3Subject();
    const dir = tmpDir('blob-cache-');
    const cache = new CachedBlobStore(remote, dir, 250);
    const blobs = [Buffer.alloc(100, 1), Buffer.alloc(100, 2), Buffer.alloc(100, 3)];
    const keys = [];
    for (const b of blobs) keys.push((await cache.putBuffer(b)).key);
    // Writes go to the remote store only.
    expect(cache.size).toBe(0);
    expect(await cache.get(keys[0])).toEqual(blobs[0]);
    expect(await cache.get(keys[1])).toEqual(blobs[1]);
    expect([cache.hits, cache.misses]).toEqual([0, 2]);
    expect(await cache.get(keys[0])).toEqual(blobs[0]);
    expect(cache.hits).toBe(1);
    // A third blob passes the limit: the least recently used (keys[1]) goes.
    await cache.get(keys[2]);
    expect(cache.size).toBe(200);
    expect([cache.has(keys[0]), cache.has(keys[1]), cache.has(keys[2])]).toEqual([true, false, true]);
    expect(fs.existsSync(path.join(dir, 'sha256', keys[1].slice(0, 2), keys[1]))).toBe(false);
    // A read from the cache does not touch the remote store: it answers with the remote gone.
    await remote.delete(keys[0]);
    expect(await cache.get(keys[0])).toEqual(blobs[0]);
    expect((await readAll(cache.openRead(keys[0], { start: 98 }))).length).toBe(2);
    // A blob larger than the whole cache is read but not kept.
    const big = Buffer.alloc(300, 9);
    const bigKey = (await cache.putBuffer(big)).key;
    expect(await cache.get(bigKey)).toEqual(big);
    expect(cache.has(bigKey)).toBe(false);
    // Deleting drops the local copy too.
    await cache.delete(keys[2]);
    expect(cache.has(keys[2])).toBe(false);
    expect(await cache.exists(keys[2])).toBe(false);
  });

  it('counts a blob once when two reads of it miss at the same time', async () => {
    const { store: remote } = await s3Subject();
    const cache = new CachedBlobStore(remote, tmpDir('blob-cache-'), 1000);
    const key = (await remote.putBuffer(Buffer.alloc(100, 4))).key;
    await Promise.all([cache.get(key), cache.get(key), cache.get(key)]);
    expect(cache.size).toBe(100);
  });

  it('adopts what an earlier run left on disk, within the limit', async () => {
    const { store: remote } = await s3Subject();
    const dir = tmpDir('blob-cache-');
    const first = new CachedBlobStore(remote, dir, 1000);
    const keys = [];
    for (const fill of [1, 2, 3]) {
      const key = (await remote.putBuffer(Buffer.alloc(100, fill))).key;
      await first.get(key);
      keys.push(key);
    }
    const again = new CachedBlobStore(remote, dir, 1000);
    expect(again.size).toBe(300);
    expect(await again.get(keys[1])).toEqual(Buffer.alloc(100, 2));
    expect(again.hits).toBe(1);
    // A smaller limit at restart trims the oldest.
    const smaller = new CachedBlobStore(remote, dir, 150);
    await new Promise((r) => setTimeout(r, 50));
    expect(smaller.size).toBeLessThanOrEqual(150);
  });
});
