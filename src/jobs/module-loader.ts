/**
 * Loads stored modules into the engine's form. A mask module runs on its model, with the
 * decomposition's observation points; a compact module runs on its own network (networkBlob),
 * whose observation points its masks are laid out on.
 */
import { ModelPlan, type ModuleSpec } from '../engine';
import type { BlobStore } from '../store/blobs';
import { unpackHead, unpackMasks } from '../store/module-blobs';
import type { ModuleSource } from '../store/modules';
import { cachedModel } from './model-cache';
import type { PinScope } from './pinned-cache';

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

export interface LoadedModule {
  /** The network the module runs on: its model's, or its own when compact. */
  readonly plan: ModelPlan;
  readonly spec: ModuleSpec;
  /** Observation points of `plan`, in mask order. */
  readonly points: readonly { readonly layer: string; readonly units: number }[];
}

/** The module with the network it runs on, held until `scope` is released. */
export async function loadModule(blobs: BlobStore, src: ModuleSource, scope: PinScope): Promise<LoadedModule> {
  const own = src.module.networkBlob;
  const plan = new ModelPlan(await cachedModel(blobs, own ?? (src.model.canonicalBlob as string), scope));
  const points = own ? plan.observationPoints : src.observationPoints;
  return { plan, spec: await loadModuleSpec(blobs, src.module, points), points };
}
