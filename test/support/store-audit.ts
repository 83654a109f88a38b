/** Snapshots of what a request may have written, to prove a rejected one wrote nothing. */
import fs from 'node:fs';
import path from 'node:path';
import type { TestApp } from './app';

export interface StoreSnapshot {
  models: number;
  datasets: number;
  jobs: number;
  evaluations: number;
  blobs: string[];
  tmp: string[];
}

export async function snapshot(t: TestApp): Promise<StoreSnapshot> {
  const blobs: string[] = [];
  for await (const k of t.deps.blobs.keys()) blobs.push(k);
  const [models, datasets, jobs, evaluations] = await Promise.all([
    t.deps.db.model.count(),
    t.deps.db.dataset.count(),
    t.deps.db.job.count(),
    t.deps.db.evaluation.count(),
  ]);
  return { models, datasets, jobs, evaluations, blobs: blobs.sort(), tmp: fs.readdirSync(path.join(t.env.BLOB_DIR, 'tmp')) };
}
