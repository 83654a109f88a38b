/**
 * Issue 16: a dataset upload never sits whole in memory. A generated ~200 MB CIFAR-10 upload goes
 * through `ingestDataset` on a local blob store wrapped to record every buffer it hands out or is
 * handed (read chunks, ranged reads, written chunks); none may be more than a few MB. A deflated
 * npz and a gzip'ed IDX pair, smaller (they are built in memory here), must stream alike, and so
 * must an image-folder zip, decoded image by image. The types
 * already keep whole-blob reads (`get`) and buffer writes (`putBuffer`) out of reach: the wrapper
 * offers only `openRead`, `readRanges` and `putStream`. Heap-external memory (`arrayBuffers`,
 * where Buffers live) is sampled too, with a bound far below the upload's size.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline, Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { FsBlobStore, type BlobStore } from '../../../../src/store/blobs';
import { blobSource, ingestDataset, type IngestedDataset } from '../../../../src/store/formats/datasets';
import { makeIdx, makeNpy, makeZip } from './helpers';

const RECORD = 3073;
const RECORDS = 65_000; // 199.7 MB
const MB = 1024 * 1024;

/** Byte `offset` of record `i`: its label (i % 10) at 0, then pixels no two neighbouring records share. */
const pixel = (i: number, offset: number) => (i * 131 + offset * 7) & 0xff;

function* cifarUpload(): Generator<Buffer> {
  const batch = 256;
  for (let first = 0; first < RECORDS; first += batch) {
    const count = Math.min(batch, RECORDS - first);
    const chunk = Buffer.allocUnsafe(count * RECORD);
    for (let r = 0; r < count; r++) {
      const i = first + r;
      chunk[r * RECORD] = i % 10;
      for (let o = 1; o < RECORD; o++) chunk[r * RECORD + o] = pixel(i, o);
    }
    yield chunk;
  }
}

interface Largest {
  read: number;
  ranged: number;
  /** Calls of readRanges and openRead: what a store like S3 pays a request for. */
  requests: number;
  written: number;
  /**
   * Chunks under 4 KiB written before a blob's last. A store that keeps chunks a while (S3 gathers
   * 5 MiB parts) would keep Node's 8 KiB pool slabs alive through such tiny Buffers.
   */
  tinyWrites: number;
}

/** The three methods ingestion needs, each recording the largest buffer that passes (and tiny writes). */
function metered(store: BlobStore, largest: Largest): Pick<BlobStore, 'openRead' | 'readRanges' | 'putStream'> {
  const meter = (key: 'read' | 'written') =>
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        largest[key] = Math.max(largest[key], chunk.length);
        done(null, chunk);
      },
    });
  return {
    openRead: (key, range) => {
      largest.requests++;
      return pipeline(store.openRead(key, range), meter('read'), () => undefined);
    },
    readRanges: async (key, ranges) => {
      largest.requests++;
      for (const r of ranges) largest.ranged = Math.max(largest.ranged, r.length);
      return store.readRanges(key, ranges);
    },
    putStream: async (source, options) => {
      const sizes: number[] = [];
      const record = new Transform({
        transform(chunk: Buffer, _enc, done) {
          sizes.push(chunk.length);
          done(null, chunk);
        },
      });
      const ref = await store.putStream(
        pipeline(source, meter('written'), record, () => undefined),
        options,
      );
      largest.tinyWrites += sizes.slice(0, -1).filter((n) => n < 4096).length;
      return ref;
    },
  };
}

it('ingests a 200 MB CIFAR-10 upload without any buffer over 4 MB or tiny writes, and arrayBuffers far below the upload size', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-memory-'));
  try {
    const store = new FsBlobStore(root);
    const upload = await store.putStream(Readable.from(cifarUpload()));
    expect(upload.size).toBe(RECORDS * RECORD);

    const largest: Largest = { read: 0, ranged: 0, requests: 0, written: 0, tinyWrites: 0 };
    const blobs = metered(store, largest);
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 10);
    let d: IngestedDataset;
    try {
      d = await ingestDataset([await blobSource(blobs, upload, 'big.bin')], { format: 'cifar-bin' }, blobs);
    } finally {
      clearInterval(sampler);
    }

    expect(d.shape).toEqual([RECORDS, 32, 32, 3]);
    expect(d.images.size).toBe(RECORDS * 3072);
    expect(d.labels.size).toBe(RECORDS * 4);
    expect(d.classCounts).toEqual([6500, 6500, 6500, 6500, 6500, 6500, 6500, 6500, 6500, 6500]);
    expect(largest.read).toBeGreaterThan(0);
    expect(largest.written).toBeGreaterThan(0);
    expect(Math.max(largest.read, largest.ranged, largest.written)).toBeLessThanOrEqual(4 * MB);
    expect(largest.tinyWrites).toBe(0);
    // The old path held the upload and the tensor (~400 MB here); GC lag alone stays well under this.
    expect(peak - baseline).toBeLessThan(64 * MB);

    // Records land transposed (CHW -> HWC) and in order, the last one included.
    const samples = [0, 1, 32_767, RECORDS - 1];
    const stored = await store.readRanges(
      d.images.key,
      samples.map((i) => ({ start: i * 3072, length: 3072 })),
    );
    samples.forEach((i, s) => {
      const expected = Buffer.alloc(3072);
      for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) expected[p * 3 + c] = pixel(i, 1 + c * 1024 + p);
      expect(stored[s]!.equals(expected)).toBe(true);
    });
    const [labels] = await store.readRanges(d.labels.key, [{ start: (RECORDS - 3) * 4, length: 12 }]);
    expect([labels!.readInt32LE(0), labels!.readInt32LE(4), labels!.readInt32LE(8)]).toEqual([(RECORDS - 3) % 10, (RECORDS - 2) % 10, (RECORDS - 1) % 10]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}, 60_000);

describe('compressed uploads stream too', () => {
  // 48 MB of images that deflate about 3:1 (far from the zip bomb ratio).
  const N = 60_000;
  const images = () => {
    const bytes = Buffer.alloc(N * 28 * 28);
    for (let i = 0; i < bytes.length; i++) bytes[i] = ((i * 2654435761) >>> 24) & 0x3f;
    return bytes;
  };
  const labels = () => Buffer.from(Array.from({ length: N }, (_, i) => i % 10));

  it.each([
    [
      'a deflated npz',
      () => [
        {
          name: 'big.npz',
          bytes: makeZip([
            { name: 'x.npy', data: makeNpy('|u1', [N, 28, 28], images()), deflate: true },
            { name: 'y.npy', data: makeNpy('|u1', [N], labels()), deflate: true },
          ]),
        },
      ],
    ],
    [
      "a gzip'ed IDX pair",
      () => [
        { name: 'images.gz', bytes: zlib.gzipSync(makeIdx([N, 28, 28], images()), { level: 1 }) },
        { name: 'labels.gz', bytes: zlib.gzipSync(makeIdx([N], labels())) },
      ],
    ],
  ])(
    '%s: no buffer over 4 MB, no tiny writes',
    async (_, files) => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-memory-'));
      try {
        const store = new FsBlobStore(root);
        const largest: Largest = { read: 0, ranged: 0, requests: 0, written: 0, tinyWrites: 0 };
        const blobs = metered(store, largest);
        const sources = [];
        for (const f of files()) sources.push(await blobSource(blobs, await store.putStream(Readable.from([f.bytes])), f.name));
        const d = await ingestDataset(sources, {}, blobs);
        expect(d.shape).toEqual([N, 28, 28, 1]);
        expect(d.images.size).toBe(N * 784);
        expect(d.classCounts).toEqual(new Array(10).fill(N / 10));
        expect(largest.read).toBeGreaterThan(0);
        expect(Math.max(largest.read, largest.ranged, largest.written)).toBeLessThanOrEqual(4 * MB);
        expect(largest.tinyWrites).toBe(0);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

describe('an image-folder zip streams too', () => {
  // 1,000 PNGs of 256x256 RGB: a 196 MB tensor from a zip of a few MB. Class k's 100 images are
  // copies of one PNG (encoding 1,000 would take the test longer than ingesting them).
  const SIDE = 256;
  const PER_CLASS = 100;
  const pixels = (k: number) => {
    const rgb = new Uint8Array(SIDE * SIDE * 3);
    for (let p = 0; p < SIDE * SIDE; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = (k * 25 + (p % SIDE) + c * 40) & 0xff;
    return rgb;
  };
  const png = (rgb: Uint8Array) => {
    const image = new PNG({ width: SIDE, height: SIDE });
    for (let p = 0; p < SIDE * SIDE; p++) {
      image.data.set(rgb.subarray(p * 3, p * 3 + 3), p * 4);
      image.data[p * 4 + 3] = 255;
    }
    return PNG.sync.write(image, { colorType: 2 });
  };

  it('decodes image by image: arrayBuffers far below the tensor, one read for many images', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-memory-'));
    try {
      const pngs = Array.from({ length: 10 }, (_, k) => png(pixels(k)));
      const entries = [];
      for (let k = 0; k < 10; k++) for (let i = 0; i < PER_CLASS; i++) entries.push({ name: `set/c${k}/${String(i).padStart(4, '0')}.png`, data: pngs[k]! });
      const store = new FsBlobStore(root);
      const upload = await store.putStream(Readable.from([makeZip(entries)]));
      const largest: Largest = { read: 0, ranged: 0, requests: 0, written: 0, tinyWrites: 0 };
      const blobs = metered(store, largest);
      const source = await blobSource(blobs, upload, 'images.zip');
      const baseline = process.memoryUsage().arrayBuffers;
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 10);
      let d: IngestedDataset;
      try {
        d = await ingestDataset([source], { format: 'image-folder' }, blobs);
      } finally {
        clearInterval(sampler);
      }
      const n = 10 * PER_CLASS;
      const size = SIDE * SIDE * 3;
      expect(d.shape).toEqual([n, SIDE, SIDE, 3]);
      expect(d.classNames).toEqual(Array.from({ length: 10 }, (_, k) => `c${k}`));
      expect(d.classCounts).toEqual(new Array(10).fill(PER_CLASS));
      expect(Math.max(largest.read, largest.ranged, largest.written)).toBeLessThanOrEqual(4 * MB);
      expect(largest.tinyWrites).toBe(0);
      // Whole, the tensor alone is 196 MB.
      expect(peak - baseline).toBeLessThan(64 * MB);
      // Entries stored in the order they are decoded are read a block at a time, not one by one.
      expect(largest.requests).toBeLessThan(n / 10);

      const samples = [0, 150, n - 1];
      const stored = await store.readRanges(
        d.images.key,
        samples.map((i) => ({ start: i * size, length: size })),
      );
      samples.forEach((i, s) => expect(Buffer.from(pixels(Math.floor(i / PER_CLASS))).equals(stored[s]!)).toBe(true));
      const [labels] = await store.readRanges(d.labels.key, [{ start: 0, length: n * 4 }]);
      expect(Array.from(new Int32Array(labels!.buffer, labels!.byteOffset, n))).toEqual(Array.from({ length: n }, (_, i) => Math.floor(i / PER_CLASS)));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
