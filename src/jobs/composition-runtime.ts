/**
 * A composition ready to run: one ModuleGroup per source model for its mask modules, and one per
 * compact module (its own small network). A composition's members change
 * only once, when continuous learning points them at new module versions, so a worker keeps the
 * last few runtimes it loaded, keyed by composition and members (bounded; evicted runners free
 * their tensors once no job uses them). A runtime holds its models for as long as it lives.
 */
import { ModelPlan, ModuleRunner, type MaskPoint, type ModuleGroup, type PreprocessingSpec } from '../engine';
import { cachedModel } from './model-cache';
import type { BlobStore } from '../store/blobs';
import type { PrismaClient } from '../store/db';
import { compositionMemberIds, compositionSources } from '../store/compositions';
import type { ModuleSource } from '../store/modules';
import { PinnedCache, PinScope } from './pinned-cache';
import { labelled, type LabelledModule } from './label-matching';
import { loadModule } from './module-loader';
import { assertMaskMemory, type MaskJob } from './mask-memory';

export interface CompositionRuntime {
  readonly labels: string[];
  /** Each label's module: its class and model, for matching dataset classes to labels. */
  readonly members: LabelledModule[];
  readonly groups: ModuleGroup[];
  /** Input shape [H, W, C] shared by every module. */
  readonly inputShape: number[];
  /**
   * When one model serves every label: that model, and the class index of each label (the
   * baseline is the model restricted to those classes).
   */
  readonly baseline?: { readonly plan: ModelPlan; readonly preprocessing: PreprocessingSpec; readonly classes: number[] };
  /** Frees the runners and lets go of the models. */
  dispose(): void;
}

const MAX_CACHED = 4;
const runtimes = new PinnedCache<CompositionRuntime>(MAX_CACHED, (rt) => rt.dispose());

async function load(db: PrismaClient, blobs: BlobStore, compositionId: string, maxMaskBytes: number): Promise<CompositionRuntime> {
  const { composition, sources } = await compositionSources(db, compositionId);
  // Mask modules of one model share a run of that model; a compact module runs its own network.
  const byRun = new Map<string, { compact: boolean; positions: number[]; sources: ModuleSource[] }>();
  sources.forEach((src, position) => {
    const compact = src.module.networkBlob !== null;
    const key = compact ? `compact:${src.module.id}` : `model:${src.model.id}`;
    const g = byRun.get(key) ?? { compact, positions: [], sources: [] };
    g.positions.push(position);
    g.sources.push(src);
    byRun.set(key, g);
  });
  const groups: ModuleGroup[] = [];
  let baseline: CompositionRuntime['baseline'];
  let modelPlan: ModelPlan | undefined;
  const models = new PinScope();
  const dispose = () => {
    groups.forEach((g) => g.runner.dispose());
    models.release();
  };
  const parts: MaskJob[] = [];
  try {
    for (const g of byRun.values()) {
      const first = g.sources[0];
      const loaded = await Promise.all(g.sources.map((s) => loadModule(blobs, s, models)));
      const plan = loaded[0].plan;
      const maskPoint = (g.compact ? 'post-activation' : (first.options.maskPoint ?? 'post-activation')) as MaskPoint;
      // Before the runner makes its bitsets and tensors.
      parts.push({ modules: loaded.length, moduleUnits: loaded.length * plan.observedUnits, maskPoint });
      assertMaskMemory(parts, maxMaskBytes, 'Compose fewer modules, or modules of a smaller model.');
      const runner = new ModuleRunner(
        plan,
        loaded.map((l) => l.spec),
        maskPoint,
      );
      groups.push({ plan, runner, preprocessing: first.model.preprocessing, positions: g.positions });
      if (!g.compact) modelPlan = plan;
    }
    if (new Set(sources.map((s) => s.model.id)).size === 1) {
      const model = sources[0].model;
      // The model's own plan when a group runs it; all-compact compositions load it for the baseline.
      const plan = modelPlan ?? new ModelPlan(await cachedModel(blobs, model.canonicalBlob as string, models));
      baseline = { plan, preprocessing: model.preprocessing, classes: sources.map((s) => s.module.classIndex) };
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
    ...(baseline ? { baseline } : {}),
    dispose,
  };
}

/** The composition ready to run, held until `scope` (the job) is released. */
export async function compositionRuntime(
  db: PrismaClient,
  blobs: BlobStore,
  compositionId: string,
  scope: PinScope,
  maxMaskBytes: number,
): Promise<CompositionRuntime> {
  // Keyed by the members too: continuous learning points members at new module versions when the
  // compose job runs, and a runtime an earlier predict or evaluation loaded must not outlive that.
  const key = `${compositionId}:${(await compositionMemberIds(db, compositionId)).join(',')}`;
  return runtimes.get(key, () => load(db, blobs, compositionId, maxMaskBytes), scope);
}
