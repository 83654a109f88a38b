/** Whether any row refers to a blob; blobs are shared by content, so only unreferenced ones may go. */
import type { Db } from './db';
import type { BlobStore } from './blobs';

export async function isBlobReferenced(db: Db, key: string): Promise<boolean> {
  const [models, datasets, modules] = await Promise.all([
    db.model.count({ where: { OR: [{ sourceBlob: key }, { canonicalBlob: key }] } }),
    db.dataset.count({ where: { OR: [{ imagesBlob: key }, { labelsBlob: key }] } }),
    db.module.count({ where: { OR: [{ masksBlob: key }, { headBlob: key }, { exportBlob: key }, { networkBlob: key }] } }),
  ]);
  return models + datasets + modules > 0;
}

/** Deletes the blobs among `keys` that no row refers to any more (call after the rows are gone). */
export async function releaseBlobs(db: Db, blobs: BlobStore, keys: (string | null | undefined)[]): Promise<void> {
  for (const key of new Set(keys)) {
    if (key && !(await isBlobReferenced(db, key))) await blobs.delete(key);
  }
}
