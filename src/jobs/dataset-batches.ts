/**
 * Streams a stored dataset as labelled batches: images are read from the blob store one batch at
 * a time (a range read), so memory stays flat whatever the dataset's size.
 */
import type { LabelledBatch, SampleSource } from '../engine';
import type { BlobStore } from '../store/blobs';

export interface StoredDataset {
  readonly imagesBlob: string;
  readonly labelsBlob: string;
  readonly shape: number[];
  readonly dtype: string;
}

async function readRange(blobs: BlobStore, key: string, start: number, length: number): Promise<Buffer> {
  if (length === 0) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of blobs.openRead(key, { start, end: start + length - 1 })) chunks.push(c as Buffer);
  const out = Buffer.concat(chunks);
  if (out.length !== length) throw new Error(`blob ${key} is shorter than its dataset row says`);
  return out;
}

/**
 * Batches of the first `limit` images (all when undefined). The next batch is read while the
 * caller works on this one (its forward pass blocks the event loop, the read runs on libuv's
 * threads), so at most two batches are held at a time.
 */
export async function* datasetBatches(blobs: BlobStore, ds: StoredDataset, batchSize: number, limit?: number): AsyncGenerator<LabelledBatch> {
  const [n, h, w, c] = ds.shape;
  const total = Math.min(n, limit ?? n);
  const per = h * w * c;
  const bytesPer = ds.dtype === 'float32' ? 4 : 1;
  const labelBytes = await readRange(blobs, ds.labelsBlob, 0, total * 4);
  const labels = new Int32Array(labelBytes.buffer.slice(labelBytes.byteOffset, labelBytes.byteOffset + labelBytes.byteLength));
  const read = (start: number) => readRange(blobs, ds.imagesBlob, start * per * bytesPer, Math.min(batchSize, total - start) * per * bytesPer);
  let next = total > 0 ? read(0) : undefined;
  try {
    for (let start = 0; start < total; start += batchSize) {
      const raw = await (next as Promise<Buffer>);
      next = start + batchSize < total ? read(start + batchSize) : undefined;
      const copy = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
      yield {
        images: ds.dtype === 'float32' ? new Float32Array(copy) : new Uint8Array(copy),
        labels: labels.subarray(start, start + Math.min(batchSize, total - start)),
      };
    }
  } finally {
    // A caller that stops early (an error, a cancelled job) leaves a read in flight: its failure is no one's.
    next?.catch(() => undefined);
  }
}

/** Random access to a stored dataset's images (range reads), for sampling. */
export function blobSource(blobs: BlobStore, ds: StoredDataset): SampleSource {
  const shape = ds.shape;
  const bytesPer = ds.dtype === 'float32' ? 4 : 1;
  const per = shape[1] * shape[2] * shape[3];
  return {
    imageShape: shape.slice(1),
    read: async (indices) => {
      const parts = await blobs.readRanges(
        ds.imagesBlob,
        indices.map((i) => ({ start: i * per * bytesPer, length: per * bytesPer })),
      );
      const joined = Buffer.concat(parts);
      const copy = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
      return ds.dtype === 'float32' ? new Float32Array(copy) : new Uint8Array(copy);
    },
  };
}

export async function readLabels(blobs: BlobStore, ds: StoredDataset & { readonly count: number }): Promise<Int32Array> {
  const b = await blobs.get(ds.labelsBlob);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + ds.count * 4));
}
