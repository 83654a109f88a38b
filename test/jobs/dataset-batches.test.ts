/**
 * Stored datasets stream as batches, the next one read ahead: every image once, in order, with
 * its label; `limit` honoured; and a caller that stops early leaves no failing read behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { datasetBatches } from '../../src/jobs/dataset-batches';
import { FsBlobStore } from '../../src/store/blobs';

describe('datasetBatches', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batches-test-'));
  const blobs = new FsBlobStore(dir);
  const n = 23;
  const per = 2 * 2 * 3;
  const images = Uint8Array.from({ length: n * per }, (_, i) => i % 251);
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 5);
  let ds: { imagesBlob: string; labelsBlob: string; shape: number[]; dtype: string };
  beforeAll(async () => {
    const img = await blobs.putBuffer(Buffer.from(images));
    const lab = await blobs.putBuffer(Buffer.from(labels.buffer));
    ds = { imagesBlob: img.key, labelsBlob: lab.key, shape: [n, 2, 2, 3], dtype: 'uint8' };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    [5, undefined, 23],
    [5, 20, 20],
    [23, undefined, 23],
    [100, 7, 7],
  ])('batches of %p, limit %p: %p images in order with their labels', async (batch, limit, expected) => {
    const seen: number[] = [];
    const pixels: number[] = [];
    const sizes: number[] = [];
    for await (const b of datasetBatches(blobs, ds, batch, limit)) {
      sizes.push(b.labels.length);
      seen.push(...b.labels);
      pixels.push(...b.images);
    }
    expect(seen).toEqual([...labels.subarray(0, expected)]);
    expect(pixels).toEqual([...images.subarray(0, expected * per)]);
    expect(sizes.every((s, i) => s === (i < sizes.length - 1 ? batch : expected - batch * (sizes.length - 1)))).toBe(true);
  });

  it('stops early without an unhandled failure of the read ahead', async () => {
    // A store whose reads past the first batch fail (a disk error, a blob deleted meanwhile).
    class FailingReads extends FsBlobStore {
      override openRead(key: string, range?: { start: number; end?: number }): Readable {
        if (key === ds.imagesBlob && (range?.start ?? 0) > 0)
          return new Readable({
            read() {
              this.destroy(new Error('read failed'));
            },
          });
        return super.openRead(key, range);
      }
    }
    const failing = new FailingReads(dir);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      for await (const b of datasetBatches(failing, ds, 5)) {
        expect(b.labels.length).toBe(5);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
      // Read on, the failure is the caller's.
      const all = async () => {
        for await (const _ of datasetBatches(failing, ds, 5));
      };
      await expect(all()).rejects.toThrow('read failed');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
