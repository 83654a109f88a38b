/**
 * Dataset uploads -> NHWC tensors plus labels. In: the uploaded files and options. Out: the
 * tensors, or a typed error (400 bad content, 413 over a size limit, 415 unknown format, 422 a
 * damaged or unsafe zip, per the shared zip policy of `../zip.ts`) whose detail names the file,
 * index or value at fault.
 *
 * One reader per format turns the files into a `TensorPlan`: every size its headers declare is
 * checked against the limits before anything is read past them, and the tensors come as streamed
 * passes over the files. `drainPlan` applies the checks all formats share (counts, label range,
 * class counts) on the way to a sink: typed arrays here (`parseDataset`, for callers that want the
 * tensors in memory), the blob store in `ingest.ts` (uploads, never whole in memory).
 */
import { drainPlan } from './drain';
import { allocate } from './limits';
import { planDataset } from './plan';
import { bufferSource } from './source';
import type { DatasetFile, ParseDatasetOptions, ParsedDataset } from './types';

export type { DatasetFile, DatasetFormat, ParseDatasetOptions, ParsedDataset } from './types';
export { DEFAULT_LIMITS } from './limits';
export { blobSource, bufferSource, type DatasetSource } from './source';
export { ingestDataset, type IngestedDataset } from './ingest';
export { DATASET_FORMATS, planDataset, type PlannedDataset } from './plan';

/** The whole dataset in memory, for callers that hold it anyway (tests, scripts); uploads use `ingestDataset`. */
export async function parseDataset(files: DatasetFile[], options: ParseDatasetOptions = {}): Promise<ParsedDataset> {
  const { format, limits, plan } = await planDataset(files.map(bufferSource), options);
  try {
    const [n, h, w, c] = plan.shape;
    const d = await drainPlan(plan, {
      labels: (chunks) => collect(chunks, new Int32Array(n)),
      images: (chunks) =>
        collect(
          chunks,
          allocate(() => (plan.dtype === 'float32' ? new Float32Array(n * h * w * c) : new Uint8Array(n * h * w * c)), limits),
        ),
    });
    return {
      format,
      count: n,
      shape: [n, h, w, c],
      dtype: plan.dtype,
      images: d.images,
      labels: d.labels,
      numClasses: d.numClasses,
      classCounts: d.classCounts,
      ...(plan.classNames ? { classNames: plan.classNames } : {}),
    };
  } finally {
    plan.close();
  }
}

/** Copies the chunks into `out`; drainPlan has checked their count and type. */
async function collect<T extends Uint8Array | Float32Array | Int32Array>(chunks: AsyncIterable<Uint8Array | Float32Array | Int32Array>, out: T): Promise<T> {
  let at = 0;
  for await (const chunk of chunks) {
    if (at + chunk.length > out.length) throw new Error(`dataset reader produced more than the ${out.length} values its shape declares`);
    out.set(chunk as T, at);
    at += chunk.length;
  }
  return out;
}
