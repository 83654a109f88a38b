/**
 * The compaction step of a decompose job (options.compact): each mask module is cut to the FLOPs
 * budget and re-fitted on its own concern and tangling samples; what a module row stores for it
 * (its network in the canonical model format, masks and head laid out on that network, its cost).
 */
import type * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_COMPACT_OPTIONS,
  ModelPlan,
  ModuleRunner,
  RunnerSet,
  compactModules,
  countKept,
  modelArtifacts,
  type CompactModule,
  type DecomposedModule,
  type MarginSource,
  type PreprocessingSpec,
  type SampleSource,
} from '../engine';
import { packModel } from '../store/model-artifacts';
import type { CompactFigures, LayerKept } from '../store/modules';

export type CompactRequest = Partial<typeof DEFAULT_COMPACT_OPTIONS> & { readonly flops: number };

export interface CompactedModule {
  readonly network: Buffer;
  readonly masks: Uint8Array[];
  readonly head: { kernel: Float32Array; bias: Float32Array };
  readonly keptFraction: number;
  readonly perLayer: LayerKept[];
  readonly figures: CompactFigures;
}

export interface Compaction {
  readonly modules: CompactedModule[];
  /** Margins of the compact modules, for the decomposition's metrics; dispose frees their networks. */
  readonly runner: MarginSource & { dispose(): void };
  readonly summary: Record<string, unknown>;
}

/**
 * @param points the model's observation points (a compact module's kept units are counted against them)
 */
export async function compactDecomposition(
  model: tf.LayersModel,
  source: SampleSource,
  labels: ArrayLike<number>,
  modules: readonly DecomposedModule[],
  request: CompactRequest,
  run: { seed: number; preprocessing: PreprocessingSpec; points: readonly { layer: string; units: number }[] },
  onModule: (done: number) => Promise<void>,
): Promise<Compaction> {
  const started = Date.now();
  const options = { ...DEFAULT_COMPACT_OPTIONS, ...request, seed: run.seed, preprocessing: run.preprocessing };
  const { modules: compact, calibrationInputs } = await compactModules(model, source, labels, modules, options, onModule);
  const modelBytes = packModel(modelArtifacts(model)).length;
  const totalUnits = run.points.reduce((s, p) => s + p.units, 0);
  const plans = compact.map((cm) => new ModelPlan(cm.model));
  const stored = compact.map((cm, i) => stored1(cm, plans[i], run.points, totalUnits, modelBytes, options.criterion));
  const runner = new RunnerSet(compact.map((cm, i) => new ModuleRunner(plans[i], [{ masks: cm.masks, head: cm.head }])));
  const mean = (f: (m: CompactedModule) => number) => stored.reduce((s, m) => s + f(m), 0) / Math.max(1, stored.length);
  return {
    modules: stored,
    runner: {
      margins: (x) => runner.margins(x),
      dispose: () => {
        runner.dispose();
        for (const cm of compact) cm.model.dispose();
      },
    },
    summary: {
      flopsFraction: mean((m) => m.figures.flopsFraction),
      paramsFraction: mean((m) => m.figures.paramsFraction),
      criterion: options.criterion,
      allocation: options.allocation,
      refit: options.refit,
      calibrationInputs,
      seconds: (Date.now() - started) / 1000,
    },
  };
}

function stored1(
  cm: CompactModule,
  plan: ModelPlan,
  points: readonly { layer: string; units: number }[],
  totalUnits: number,
  modelBytes: number,
  criterion: string,
): CompactedModule {
  const network = packModel(modelArtifacts(cm.model));
  const keptAt = new Map(plan.observationPoints.map((p, i) => [p.layer, countKept(cm.masks[i])]));
  const perLayer = points.map((p) => ({ layer: p.layer, units: p.units, kept: keptAt.get(p.layer) ?? 0 }));
  return {
    network,
    masks: cm.masks,
    head: { kernel: cm.head.kernel, bias: cm.head.bias },
    keptFraction: perLayer.reduce((s, p) => s + p.kept, 0) / Math.max(1, totalUnits),
    perLayer,
    figures: {
      flopsFraction: cm.macs / cm.modelMacs,
      paramsFraction: cm.params / cm.modelParams,
      flops: cm.macs,
      modelFlops: cm.modelMacs,
      params: cm.params,
      modelParams: cm.modelParams,
      networkBytes: network.length,
      modelBytes,
      criterion,
      layers: cm.layers,
    },
  };
}
