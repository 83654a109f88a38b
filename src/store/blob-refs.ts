/** Whether any row refers to a blob; blobs are shared by content, so only unreferenced ones may go. */
import type { Db } from './db';

export async function isBlobReferenced(db: Db, key: string): Promise<boolean> {
  const [models, datasets, modules] = await Promise.all([
    db.model.count({ where: { OR: [{ sourceBlob: key }, { canonicalBlob: key }] } }),
    db.dataset.count({ where: { OR: [{ imagesBlob: key }, { labelsBlob: key }] } }),
    db.module.count({ where: { OR: [{ masksBlob: key }, { headBlob: key }, { exportBlob: key }] } }),
  ]);
  return models + datasets + modules > 0;
}
