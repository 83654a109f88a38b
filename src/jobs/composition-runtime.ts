/**
 * A composition ready to run: one ModuleGroup per source model. A composition's members change
 * only once, when continuous learning points them at new module versions, so a worker keeps the
 * last few runtimes it loaded, keyed by composition and members (bounded; evicted runners free
 * their tensors once no job uses them). A runtime holds its models for as long as it lives.
 */
import { ModelPlan, ModuleRunner, type MaskPoint, type ModuleGroup } from '../engine';
import type { BlobStore } from '../store/blobs';
import type { PrismaClient } from '../store/db';
import { compositionMemberIds, compositionSources } from '../store/compositions';
import type { ModuleSource } from '../store/modules';
import { PinnedCache, PinScope } from './pinned-cache';
import { labelled, type LabelledModule } from './label-matching';
import { cachedModel } from './model-cache';
import { loadModuleSpec } from './module-loader';

export interface CompositionRuntime {
  readonly labels: string[];
  /** Each label's module: its class and model, for matching dataset classes to labels. */
  readonly members: LabelledModule[];
  readonly groups: ModuleGroup[];
  /** Input shape [H, W, C] shared by every module. */
  readonly inputShape: number[];
  /** Model class index of each label when one model serves all (for the baseline). */
  readonly singleModelClasses?: number[];
  /** Frees the runners and lets go of the models. */
  dispose(): void;
}

const MAX_CACHED = 4;
const runtimes = new PinnedCache<CompositionRuntime>(MAX_CACHED, (rt) => rt.dispose());

async function load(db: PrismaClient, blobs: BlobStore, compositionId: string): Promise<CompositionRuntime> {
  const { composition, sources } = await compositionSources(db, compositionId);
  const byModel = new Map<string, { positions: number[]; sources: ModuleSource[] }>();
  sources.forEach((src, position) => {
    const g = byModel.get(src.model.id) ?? { positions: [], sources: [] };
    g.positions.push(position);
    g.sources.push(src);
    byModel.set(src.model.id, g);
  });
  const groups: ModuleGroup[] = [];
  const models = new PinScope();
  const dispose = () => {
    groups.forEach((g) => g.runner.dispose());
    models.release();
  };
  try {
    for (const g of byModel.values()) {
      const first = g.sources[0];
      const plan = new ModelPlan(await cachedModel(blobs, first.model.canonicalBlob!, models));
      const specs = await Promise.all(g.sources.map((s) => loadModuleSpec(blobs, s.module, s.observationPoints)));
      const maskPoint = (first.options.maskPoint ?? 'post-activation') as MaskPoint;
      groups.push({ plan, runner: new ModuleRunner(plan, specs, maskPoint), preprocessing: first.model.preprocessing, positions: g.positions });
    }
  } catch (err) {
    dispose();
    throw err;
  }
  return {
    labels: composition.labels,
    members: sources.map((s, i) => labelled(composition.labels[i], s)),
    groups,
    inputShape: sources[0].model.inputShape as number[],
    ...(groups.length === 1 ? { singleModelClasses: sources.map((s) => s.module.classIndex) } : {}),
    dispose,
  };
}

/** The composition ready to run, held until `scope` (the job) is released. */
export async function compositionRuntime(db: PrismaClient, blobs: BlobStore, compositionId: string, scope: PinScope): Promise<CompositionRuntime> {
  // Keyed by the members too: continuous learning points members at new module versions when the
  // compose job runs, and a runtime an earlier predict or evaluation loaded must not outlive that.
  const key = `${compositionId}:${(await compositionMemberIds(db, compositionId)).join(',')}`;
  return runtimes.get(key, () => load(db, blobs, compositionId), scope);
}
