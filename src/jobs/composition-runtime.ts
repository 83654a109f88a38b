/**
 * A composition ready to run: one ModuleGroup per source model. Compositions are immutable, so a
 * worker keeps the last few it loaded (bounded; evicted runners free their tensors once no job
 * uses them). A runtime holds its models for as long as it lives.
 */
import { ModelPlan, ModuleRunner, type MaskPoint, type ModuleGroup } from '../engine';
import type { BlobStore } from '../store/blobs';
import type { PrismaClient } from '../store/db';
import { LeasedCache, LeaseScope } from './leased-cache';
import { cachedModel } from './model-cache';
import { loadModuleSpec } from './module-loader';

export interface CompositionRuntime {
  readonly labels: string[];
  readonly groups: ModuleGroup[];
  /** Input shape [H, W, C] shared by every module. */
  readonly inputShape: number[];
  /** Model class index of each label when one model serves all (for the baseline). */
  readonly singleModelClasses?: number[];
  /** Frees the runners and lets go of the models. */
  dispose(): void;
}

const MAX_CACHED = 4;
const runtimes = new LeasedCache<CompositionRuntime>(MAX_CACHED, (rt) => rt.dispose());

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
  const models = new LeaseScope();
  const dispose = () => {
    groups.forEach((g) => g.runner.dispose());
    models.release();
  };
  try {
    for (const g of byModel.values()) {
      const dec = g.modules[0].decomposition;
      const plan = new ModelPlan(await cachedModel(blobs, dec.model.canonicalBlob!, models));
      const specs = await Promise.all(g.modules.map((m) => loadModuleSpec(blobs, m, dec.observationPoints as { units: number }[])));
      const maskPoint = ((dec.options as { maskPoint?: MaskPoint }).maskPoint ?? 'post-activation') as MaskPoint;
      groups.push({ plan, runner: new ModuleRunner(plan, specs, maskPoint), preprocessing: JSON.parse(dec.model.preprocessing), positions: g.positions });
    }
  } catch (err) {
    dispose();
    throw err;
  }
  return {
    labels: comp.labels as string[],
    groups,
    inputShape: comp.modules[0].module.decomposition.model.inputShape as number[],
    ...(groups.length === 1 ? { singleModelClasses: comp.modules.map((cm) => cm.module.classIndex) } : {}),
    dispose,
  };
}

/** The composition ready to run, held until `scope` (the job) is released. */
export function compositionRuntime(db: PrismaClient, blobs: BlobStore, compositionId: string, scope: LeaseScope): Promise<CompositionRuntime> {
  return runtimes.get(compositionId, () => load(db, blobs, compositionId), scope);
}
