/** Builds small TF.js layers models in a test and packs them as the zip users upload. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildZip } from './zip-builder';

export async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved!;
}

/** A zip with model.json + one weight shard, optionally with the weights rewritten. */
export function tfjsZip(a: tf.io.ModelArtifacts, patchWeights?: (w: Float32Array) => void): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-zip-'));
  const data = new Float32Array((a.weightData as ArrayBuffer).slice(0));
  patchWeights?.(data);
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(data.buffer));
  fs.writeFileSync(
    path.join(dir, 'model.json'),
    JSON.stringify({ format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }),
  );
  execFileSync('zip', ['-q', 'm.zip', 'model.json', 'weights.bin'], { cwd: dir });
  return fs.readFileSync(path.join(dir, 'm.zip'));
}

/** A zip of arbitrary stored entries (names used verbatim, so hostile names are possible). */
export function rawZip(entries: Record<string, Buffer>): Buffer {
  return buildZip(Object.entries(entries).map(([name, data]) => ({ name, data, store: true })));
}

/** A zip whose one entry inflates to `bytes` zeros (deflated by the zip CLI: a high ratio). */
export function zipBomb(entryName: string, bytes: number): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bomb-'));
  fs.writeFileSync(path.join(dir, entryName), Buffer.alloc(bytes));
  execFileSync('zip', ['-q', '-9', 'b.zip', entryName], { cwd: dir });
  return fs.readFileSync(path.join(dir, 'b.zip'));
}
