/**
 * A composition ready to run: one ModuleGroup per source model. Compositions are immutable, so a
 * worker keeps the last few it loaded (bounded; evicted runners free their tensors).
 */
import { ModelPlan, ModuleRunner, type MaskPoint, type ModuleGroup } from '../engine';
import type { BlobStore } from '../store/blobs';
import type { PrismaClient } from '../store/db';
import { cachedModel, onModelEvicted } from './model-cache';
import { loadModuleSpec } from './module-loader';

export interface CompositionRuntime {
  readonly labels: string[];
  readonly groups: ModuleGroup[];
  /** Input shape [H, W, C] shared by every module. */
  readonly inputShape: number[];
  /** Model class index of each label when one model serves all (for the baseline). */
  readonly singleModelClasses?: number[];
  /** Canonical blobs of the models it runs on (its entries go when one of them is evicted). */
  readonly modelKeys: string[];
}

const MAX_CACHED = 4;
const cache = new Map<string, Promise<CompositionRuntime>>();

function drop(compositionId: string, entry: Promise<CompositionRuntime>): void {
  cache.delete(compositionId);
  entry.then((rt) => rt.groups.forEach((g) => g.runner.dispose())).catch(() => undefined);
}

// A runtime must not outlive the model it runs on.
onModelEvicted((key) => {
  for (const [id, entry] of cache) {
    entry.then((rt) => rt.modelKeys.includes(key) && cache.get(id) === entry && drop(id, entry)).catch(() => undefined);
  }
});

async function load(db: PrismaClient, blobs: BlobStore, compositionId: string): Promise<CompositionRuntime> {
  const comp = await db.composition.findUniqueOrThrow({
    where: { id: compositionId },
    include: { modules: { orderBy: { position: 'asc' }, include: { module: { include: { decomposition: { include: { model: true } } } } } } },
  });
  const byModel = new Map<string, { positions: number[]; modules: (typeof comp.modules)[number]['module'][] }>();
  comp.modules.forEach((cm, position) => {
    const g = byModel.get(cm.module.decomposition.modelId) ?? { positions: [], modules: [] };
    g.positions.push(position);
    g.modules.push(cm.module);
    byModel.set(cm.module.decomposition.modelId, g);
  });
  const groups: ModuleGroup[] = [];
  const modelKeys: string[] = [];
  for (const g of byModel.values()) {
    const dec = g.modules[0].decomposition;
    modelKeys.push(dec.model.canonicalBlob!);
    const plan = new ModelPlan(await cachedModel(blobs, dec.model.canonicalBlob!));
    const specs = await Promise.all(g.modules.map((m) => loadModuleSpec(blobs, m, dec.observationPoints as { units: number }[])));
    const maskPoint = ((dec.options as { maskPoint?: MaskPoint }).maskPoint ?? 'post-activation') as MaskPoint;
    groups.push({ plan, runner: new ModuleRunner(plan, specs, maskPoint), preprocessing: JSON.parse(dec.model.preprocessing), positions: g.positions });
  }
  return {
    labels: comp.labels as string[],
    groups,
    inputShape: comp.modules[0].module.decomposition.model.inputShape as number[],
    ...(groups.length === 1 ? { singleModelClasses: comp.modules.map((cm) => cm.module.classIndex) } : {}),
    modelKeys,
  };
}

export function compositionRuntime(db: PrismaClient, blobs: BlobStore, compositionId: string): Promise<CompositionRuntime> {
  const hit = cache.get(compositionId);
  if (hit) {
    cache.delete(compositionId);
    cache.set(compositionId, hit);
    return hit;
  }
  const loading = load(db, blobs, compositionId);
  cache.set(compositionId, loading);
  loading.catch(() => cache.delete(compositionId));
  while (cache.size > MAX_CACHED) {
    const [oldest, entry] = cache.entries().next().value as [string, Promise<CompositionRuntime>];
    drop(oldest, entry);
  }
  return loading;
}
