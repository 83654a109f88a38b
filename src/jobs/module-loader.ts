/** Loads stored modules (packed masks + head blobs) into the engine's ModuleSpec form. */
import type { ModuleSpec } from '../engine';
import type { BlobStore } from '../store/blobs';
import { unpackHead, unpackMasks } from '../store/module-blobs';

export interface StoredModule {
  readonly masksBlob: string;
  readonly headBlob: string;
}

export async function loadModuleSpec(blobs: BlobStore, m: StoredModule, observationPoints: { units: number }[]): Promise<ModuleSpec> {
  const [maskBytes, headBytes] = await Promise.all([blobs.get(m.masksBlob), blobs.get(m.headBlob)]);
  const { kernel, bias } = unpackHead(headBytes);
  return {
    masks: unpackMasks(
      maskBytes,
      observationPoints.map((p) => p.units),
    ),
    head: { kernel, bias, removedFeatures: [] },
  };
}
