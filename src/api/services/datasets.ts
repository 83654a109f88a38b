/**
 * Dataset uploads: files stream to the blob store, are read back as streams and converted
 * (store/formats/datasets) into one images tensor and one labels tensor, which stream into blobs
 * of their own; the raw uploads are dropped. No step holds a file or a tensor whole, so a 1 GB
 * upload costs the API a few MB (image-folder zips are the exception: decoded in memory).
 * Bad input is a 4xx with nothing left behind.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { BadRequestError, ConflictError } from '../../errors';
import { releaseBlobs } from '../../store/blob-refs';
import type { BlobStore } from '../../store/blobs';
import { inTransaction } from '../../store/db';
import type { PageRequest } from '../../store/page';
import { blobSource, ingestDataset, type DatasetFormat } from '../../store/formats/datasets';
import * as datasetsRepo from '../../store/datasets';
import { discardUpload, readUpload, uploadStore } from '../upload';
import type { DatasetSamplesT, DatasetViewT } from '../schemas/datasets';
import { encodePng } from '../../store/formats/image';
import type { AppDeps } from '../deps';

const FORMATS: readonly DatasetFormat[] = ['cifar-bin', 'idx', 'npz', 'image-folder'];

export function datasetView(row: datasetsRepo.Dataset): DatasetViewT {
  return {
    id: row.id,
    name: row.name,
    format: row.format,
    count: row.count,
    shape: row.shape,
    dtype: row.dtype,
    numClasses: row.numClasses,
    classCounts: row.classCounts,
    ...(row.classNames ? { classNames: row.classNames } : {}),
    createdAt: row.createdAt.toISOString(),
  };
}

export async function uploadDataset(deps: AppDeps, request: FastifyRequest, ownerId: string | null): Promise<DatasetViewT> {
  const store = uploadStore(deps);
  const upload = await readUpload(request, {
    ...store,
    fileFields: ['file'],
    textFields: ['name', 'format', 'labelMode'],
    maxFiles: 16,
  });
  const written: string[] = [];
  try {
    if (upload.files.length === 0) throw new BadRequestError('field "file" is required (one or more files)');
    const format = upload.fields.format as DatasetFormat | undefined;
    if (format !== undefined && !FORMATS.includes(format)) {
      throw new BadRequestError(`field "format" must be one of ${FORMATS.join(', ')}`);
    }
    const labelMode = upload.fields.labelMode as 'fine' | 'coarse' | undefined;
    if (labelMode !== undefined && labelMode !== 'fine' && labelMode !== 'coarse') {
      throw new BadRequestError('field "labelMode" must be fine or coarse');
    }
    const name = upload.fields.name?.trim() || upload.files[0].filename || 'dataset';
    if (name.length > 200) throw new BadRequestError('field "name" is longer than 200 characters');

    const files = await Promise.all(upload.files.map((f) => blobSource(deps.blobs, f.blob, f.filename)));
    // Either tensor may be stored when the other fails: the cleanup below must find it.
    const recorded: Pick<BlobStore, 'putStream'> = {
      putStream: async (source, options) => {
        const ref = await deps.blobs.putStream(source, options);
        written.push(ref.key);
        return ref;
      },
    };
    const parsed = await ingestDataset(files, { format, labelMode, maxBytes: deps.config.maxDatasetBytes }, recorded);
    const row = await datasetsRepo.createDataset(deps.db, {
      id: randomUUID(),
      ownerId,
      name,
      format: parsed.format,
      count: parsed.count,
      shape: parsed.shape,
      dtype: parsed.dtype,
      numClasses: parsed.numClasses,
      classCounts: parsed.classCounts,
      ...(parsed.classNames ? { classNames: parsed.classNames } : {}),
      imagesBlob: parsed.images.key,
      labelsBlob: parsed.labels.key,
    });
    return datasetView(row);
  } catch (err) {
    for (const key of written) if (await store.isUnreferenced(key).catch(() => false)) await deps.blobs.delete(key);
    throw err;
  } finally {
    // The raw files are not kept: the parsed tensors are the dataset.
    await discardUpload(upload, store);
  }
}

export async function getDataset(deps: AppDeps, id: string, ownerId: string | null): Promise<DatasetViewT> {
  return datasetView(await datasetsRepo.findDataset(deps.db, id, ownerId));
}

/**
 * A few images of a dataset as PNG (data URLs, so a page that authenticates with a header can show
 * them), with their labels: `count` images from `offset`.
 */
export async function datasetSamples(deps: AppDeps, id: string, ownerId: string | null, offset: number, count: number): Promise<DatasetSamplesT> {
  const ds = await datasetsRepo.findDataset(deps.db, id, ownerId);
  const [n, h, w, c] = ds.shape;
  const take = Math.max(0, Math.min(count, n - offset));
  if (take === 0) return { total: n, items: [] };
  const bytesPer = ds.dtype === 'float32' ? 4 : 1;
  const per = h * w * c * bytesPer;
  const indices = Array.from({ length: take }, (_, i) => offset + i);
  const [images, labels] = await Promise.all([
    deps.blobs.readRanges(
      ds.imagesBlob,
      indices.map((i) => ({ start: i * per, length: per })),
    ),
    deps.blobs.readRanges(ds.labelsBlob, [{ start: offset * 4, length: take * 4 }]),
  ]);
  return {
    total: n,
    items: indices.map((index, j) => {
      const raw = images[j];
      const copy = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
      const pixels = ds.dtype === 'float32' ? new Float32Array(copy) : new Uint8Array(copy);
      const label = labels[0].readInt32LE(j * 4);
      return {
        index,
        label,
        ...(ds.classNames?.[label] !== undefined ? { className: ds.classNames[label] } : {}),
        png: `data:image/png;base64,${encodePng(pixels, h, w, c).toString('base64')}`,
      };
    }),
  };
}

export async function listDatasets(deps: AppDeps, ownerId: string | null, page: PageRequest): Promise<{ items: DatasetViewT[]; nextCursor?: string }> {
  const p = await datasetsRepo.listDatasets(deps.db, ownerId, page);
  return { ...p, items: p.items.map(datasetView) };
}

/**
 * 409 while a job reads it (an evaluation, a decomposition, a composition's scoring or continuous
 * learning) or while a decomposition made from it exists; its finished evaluations go with it.
 */
export async function deleteDataset(deps: AppDeps, id: string, ownerId: string | null): Promise<void> {
  const ds = await inTransaction(deps.db, async (tx) => {
    const found = await datasetsRepo.findDataset(tx, id, ownerId);
    const use = await datasetsRepo.datasetUse(tx, id);
    if (use.runningJobs > 0)
      throw new ConflictError(`dataset ${id} is used by ${use.runningJobs} unfinished job(s); wait for them or cancel them with DELETE /jobs/<id>`);
    if (use.decompositions > 0) throw new ConflictError(`dataset ${id} is used by ${use.decompositions} decomposition(s); delete them first`);
    await datasetsRepo.deleteDataset(tx, id);
    return found;
  });
  await releaseBlobs(deps.db, deps.blobs, [ds.imagesBlob, ds.labelsBlob]);
}
