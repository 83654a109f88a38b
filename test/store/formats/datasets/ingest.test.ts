/**
 * Streamed ingestion (`ingestDataset`: upload blobs in, tensor blobs out) against the in-memory
 * parser, on both blob stores. Blob keys are the SHA-256 of their bytes, so a key equal to the
 * pinned hash of what the in-memory parser produced before ingestion was streamed (GOLDEN) proves
 * the stored tensor byte-identical to it. Bad uploads must fail with the parser's very error.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AppError } from '../../../../src/errors';
import { FsBlobStore, type BlobStore } from '../../../../src/store/blobs';
import { S3BlobStore } from '../../../../src/store/s3-blobs';
import { blobSource, ingestDataset, parseDataset, type DatasetFile, type ParseDatasetOptions } from '../../../../src/store/formats/datasets';
import { grayPng } from '../../../support/datasets';
import { startS3Server, TEST_S3_CREDENTIALS, type TestS3 } from '../../../support/s3-server';
import { makeNpy, makeZip, sharedFile } from './helpers';
import { GOLDEN, INGEST_CASES } from './ingest-cases';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(() => s3.stop());

const STORES: [string, () => Promise<BlobStore>][] = [
  ['FsBlobStore', async () => new FsBlobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-test-')))],
  [
    'S3BlobStore',
    async () =>
      new S3BlobStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: await s3.bucket(), forcePathStyle: true, credentials: TEST_S3_CREDENTIALS }),
  ],
];

const sha256 = (a: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

async function keysOf(store: BlobStore): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const key of store.keys()) keys.add(key);
  return keys;
}

/** Stores the files as an upload would, then ingests them from the store. */
async function ingest(store: BlobStore, files: DatasetFile[], options: ParseDatasetOptions = {}) {
  const sources = [];
  for (const f of files) sources.push(await blobSource(store, await store.putStream(Readable.from([f.bytes])), f.name));
  return ingestDataset(sources, options, store);
}

describe.each(STORES)('ingestDataset on %s', (_, makeStore) => {
  let store: BlobStore;
  beforeAll(async () => {
    store = await makeStore();
  });

  it.each(INGEST_CASES.map((c) => [c.name, c] as const))('%s: stores what the in-memory parser returned', async (name, c) => {
    const golden = GOLDEN[name]!;
    const d = await ingest(store, c.files(), c.options);
    const { images, labels, ...fields } = d;
    expect({ ...fields, images: images.key, labels: labels.key }).toEqual(golden);
    const [n, h, w, ch] = golden.shape;
    expect(images.size).toBe(n! * h! * w! * ch! * (golden.dtype === 'float32' ? 4 : 1));
    expect(labels.size).toBe(n! * 4);
    expect(await store.exists(images.key)).toBe(true);
  });

  const cifar = (labels: number[]) => Buffer.concat(labels.map((l) => Buffer.concat([Buffer.from([l]), Buffer.alloc(3072, l)])));
  const npz = (name: string, arrays: Record<string, Buffer>, declaredSize?: number) => ({
    name,
    bytes: makeZip(Object.entries(arrays).map(([key, data]) => ({ name: `${key}.npy`, data, deflate: true, declaredSize }))),
  });
  const mnistLabels = sharedFile('data/mnist/t10k-labels-idx1-ubyte.gz');
  const mnistImages = sharedFile('data/mnist/t10k-images-idx3-ubyte.gz');
  const gray = (h: number, w: number) => grayPng(new Uint8Array(h * w).fill(9), h, w);
  // Every row names its options: jest takes a test function with more parameters than the row has for one awaiting `done`.
  const BAD: [string, () => DatasetFile[], ParseDatasetOptions][] = [
    ['a CIFAR label past the class count', () => [{ name: 'b.bin', bytes: cifar([1, 2, 10]) }], { format: 'cifar-bin' }],
    ['a CIFAR batch that is not whole records', () => [{ name: 'cut.bin', bytes: cifar([1, 2]).subarray(0, 5000) }], { format: 'cifar-bin' }],
    ['a gzip IDX cut short', () => [mnistImages, { name: 'cut.gz', bytes: mnistLabels.bytes.subarray(0, 3000) }], {}],
    ['an IDX count mismatch', () => [mnistImages, sharedFile('data/mnist/train-labels-idx1-ubyte.gz')], {}],
    [
      'a non-finite float image',
      () => [
        npz('d.npz', { x: makeNpy('<f4', [1, 2, 2], Buffer.from(new Float32Array([0, 1, Number.NaN, 1]).buffer)), y: makeNpy('|u1', [1], Buffer.from([0])) }),
      ],
      {},
    ],
    [
      'a negative label',
      () => [npz('d.npz', { x: makeNpy('|u1', [2, 1, 1], Buffer.alloc(2)), y: makeNpy('<i4', [2], Buffer.from(new Int32Array([0, -3]).buffer)) })],
      {},
    ],
    ['a zip entry lying about its size', () => [npz('d.npz', { x: Buffer.alloc(5000, 0x20), y: makeNpy('|u1', [1], Buffer.alloc(1)) }, 100)], {}],
    ['a corrupt zip', () => [{ name: 'bad.npz', bytes: Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(4096, 1)]) }], {}],
    ['a zip bomb', () => [{ name: 'bomb.npz', bytes: makeZip([{ name: 'x.npy', data: Buffer.alloc(50_000_000), deflate: true }]) }], {}],
    [
      // Found while the images stream: labels and images are one pass, so neither blob is kept.
      'an image-folder zip with ragged image sizes',
      () => [
        {
          name: 'pets.zip',
          bytes: makeZip([
            { name: 'cat/1.png', data: gray(8, 8) },
            { name: 'cat/2.png', data: gray(8, 8) },
            { name: 'dog/1.png', data: gray(4, 8) },
          ]),
        },
      ],
      {},
    ],
    ['an unknown format', () => [{ name: 'notes.bin', bytes: Buffer.from('hello') }], {}],
    ['an image tensor over maxBytes', () => [sharedFile('fixtures/cifar10-bin/test_batch.bin')], { maxBytes: 1_000_000 }],
  ];

  it.each(BAD)('%s: the parser’s error, and nothing stored but the upload', async (name, files, options) => {
    const expected = await parseDataset(files(), options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(expected).toBeInstanceOf(AppError);
    const before = await keysOf(store);
    const sources = [];
    for (const f of files()) sources.push(await blobSource(store, await store.putStream(Readable.from([f.bytes])), f.name));
    const uploads = new Set(before);
    for await (const key of store.keys()) uploads.add(key);
    const written: string[] = [];
    const recording = {
      putStream: async (s: Readable) => {
        const ref = await store.putStream(s);
        written.push(ref.key);
        return ref;
      },
    };
    const err = await ingestDataset(sources, options, recording).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf((expected as AppError).constructor);
    const { status, detail } = err as AppError;
    expect({ status, detail }).toEqual({ status: (expected as AppError).status, detail: (expected as AppError).detail });
    // Only a labels blob can have been written before the failure (the service deletes it, unless
    // a dataset holds the same labels); an image folder's single pass writes nothing. No partial blob is left.
    expect(written.length).toBeLessThanOrEqual(name.startsWith('an image-folder') ? 0 : 1);
    for (const key of written) await store.delete(key);
    expect(await keysOf(store)).toEqual(uploads);
  });
});

describe('parseDataset', () => {
  it.each(INGEST_CASES.map((c) => [c.name, c] as const))('%s: unchanged by streaming', async (name, c) => {
    const d = await parseDataset(c.files(), c.options);
    const { images, labels, ...fields } = d;
    expect({ ...fields, images: sha256(images), labels: sha256(labels) }).toEqual(GOLDEN[name]);
  });
});
