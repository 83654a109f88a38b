/**
 * decompose: one module per class (ALGORITHM.md sections 1-5, 7). Samples are read from the
 * decomposition dataset by range reads, the engine computes masks and heads, the blobs are written
 * (content-addressed, so a retry rewrites the same keys) and all module rows commit in one
 * transaction. With an evaluation dataset, the metrics follow.
 */
import type * as tf from '@tensorflow/tfjs';
import {
  ENGINE_VERSION,
  ModelPlan,
  ModuleRunner,
  decompose,
  evaluateModules,
  maskJaccard,
  MATRIX_MODULES,
  type DecomposedModule,
  type DecomposeOptions,
  type MarginSource,
} from '../../engine';
import type { Dataset } from '../../store/datasets';
import { decompositionForRun, recordDecompositionResults } from '../../store/decompositions';
import { findModelById } from '../../store/models';
import type { CompactFigures, LayerKept, NewModule } from '../../store/modules';
import { packHead, packMasks } from '../../store/module-blobs';
import { cachedModel } from '../model-cache';
import { blobSource, datasetBatches, readLabels } from '../dataset-batches';
import { energyOf } from '../energy';
import { compactDecomposition, type CompactRequest, type Compaction } from '../compaction';
import type { JobContext, Processor } from '../context';
import { assertMaskMemory } from '../mask-memory';

export const decomposeProcessor: Processor<'decompose'> = async (ctx) => {
  const started = Date.now();
  const dec = await decompositionForRun(ctx.db, ctx.data.decompositionId);
  const model = await findModelById(ctx.db, dec.modelId);
  const classNames = model.classNames ?? [];
  const tfModel = await cachedModel(ctx.blobs, model.canonicalBlob!, ctx.pins);
  const options = { ...dec.options, preprocessing: model.preprocessing } as unknown as DecomposeOptions;
  const compactRequest = (dec.options as { compact?: CompactRequest }).compact;
  // With compaction, observing ends at 40 % and compacting takes 40-65 %.
  const observed = compactRequest ? 38 : 58;
  const classes = dec.classes ?? undefined;

  const observedUnits = new ModelPlan(tfModel).observedUnits;
  const moduleCount = classes?.length ?? (model.numClasses as number);
  assertMaskMemory(
    [{ modules: moduleCount, moduleUnits: moduleCount * observedUnits, maskPoint: options.maskPoint, tau: options.tau }],
    ctx.config.maxMaskBytes,
    'Decompose fewer classes at once ("classes").',
  );

  await ctx.progress(1, 'sampling');
  const train = dec.dataset;
  const labels = await readLabels(ctx.blobs, train);
  const source = blobSource(ctx.blobs, train);
  const result = await decompose(tfModel, source, labels, { ...options, classes }, async (stage, fraction) => {
    if (stage === 'observing') await ctx.progress(2 + observed * fraction, 'observing');
    else await ctx.progress(stage === 'masking' ? 2 + observed : 1, stage);
  });
  const points = result.observationPoints.map((p) => ({ layer: p.layer, shape: [...p.shape], units: p.units }));
  const totalUnits = points.reduce((s, p) => s + p.units, 0);

  let compaction: Compaction | undefined;
  if (compactRequest) {
    compaction = await compactDecomposition(
      tfModel,
      source,
      labels,
      result.modules,
      compactRequest,
      { seed: options.seed, preprocessing: options.preprocessing, points },
      (done) => ctx.progress(40 + (25 * done) / result.modules.length, 'compacting'),
    );
  }

  const stored: StoredModule[] = result.modules.map((m, i) => {
    const c = compaction?.modules[i];
    if (c)
      return {
        module: m,
        masks: packMasks(c.masks),
        head: packHead(c.head.kernel, c.head.bias),
        keptFraction: c.keptFraction,
        perLayer: c.perLayer,
        network: c.network,
        compact: c.figures,
      };
    return {
      module: m,
      masks: packMasks(m.masks),
      head: packHead(m.head.kernel, m.head.bias),
      keptFraction: m.kept.reduce((a, b) => a + b, 0) / totalUnits,
      perLayer: points.map((p, j) => ({ layer: p.layer, units: p.units, kept: m.kept[j] })),
    };
  });
  await ctx.progress(65, 'masking');

  let metrics: Record<string, unknown> | undefined;
  try {
    metrics = dec.evalDataset ? await evaluate(ctx, tfModel, result.modules, compaction?.runner, options, dec.evalDataset, stored) : undefined;
  } finally {
    compaction?.runner.dispose();
  }
  metrics = {
    ...(metrics ?? { jaccard: jaccardByClass(result.modules) }),
    keptFraction: stored.reduce((s, m) => s + m.keptFraction, 0) / Math.max(1, stored.length),
    inputsRun: result.inputsRun,
    ...(compaction ? { compact: compaction.summary } : {}),
    energy: energyOf((Date.now() - started) / 1000, ctx.config.energy),
  };

  await save(ctx, dec.id, dec.ownerId, classNames, stored, points, metrics);
  return { decompositionId: dec.id, modules: stored.length, ...(metrics.composed ? { composedTop1: (metrics.composed as { top1: number }).top1 } : {}) };
};

/** Mask Jaccard with the pairwise matrix in class order, the order in which the API lists modules. */
function jaccardByClass(modules: readonly DecomposedModule[]) {
  return maskJaccard([...modules].sort((a, b) => a.classIndex - b.classIndex).map((m) => m.masks));
}

interface StoredModule {
  readonly module: { classIndex: number };
  readonly masks: Uint8Array;
  readonly head: Uint8Array;
  readonly keptFraction: number;
  readonly perLayer: LayerKept[];
  readonly network?: Buffer;
  readonly compact?: CompactFigures;
  oneVsRest?: number;
}

/** Metrics on the evaluation dataset: the model beside the composition of the modules made (the compact ones when compacted). */
async function evaluate(
  ctx: JobContext<'decompose'>,
  tfModel: tf.LayersModel,
  modules: readonly DecomposedModule[],
  compactRunner: MarginSource | undefined,
  options: DecomposeOptions,
  ds: Dataset,
  stored: StoredModule[],
): Promise<Record<string, unknown>> {
  const plan = new ModelPlan(tfModel);
  const maskRunner = compactRunner ? undefined : new ModuleRunner(plan, modules, options.maskPoint);
  try {
    const evaluation = await evaluateModules(plan, compactRunner ?? (maskRunner as ModuleRunner), datasetBatches(ctx.blobs, ds, 256), {
      imageShape: ds.shape.slice(1),
      preprocessing: options.preprocessing,
      moduleClasses: modules.map((m) => m.classIndex),
      onProgress: (done) => ctx.progress(65 + (33 * done) / ds.count, 'evaluating'),
    });
    stored.forEach((s, i) => (s.oneVsRest = evaluation.oneVsRest[i]));
    // Confusion matrices only while they stay readable (and small): 1000 classes would be two
    // million cells in the row every poll reads. Per-class accuracy is always kept.
    const matrices = modules.length <= MATRIX_MODULES;
    const withoutMatrix = ({ confusion: _, ...rest }: typeof evaluation.model) => rest;
    return {
      count: evaluation.count,
      model: matrices ? evaluation.model : withoutMatrix(evaluation.model),
      composed: matrices ? evaluation.composed : withoutMatrix(evaluation.composed),
      ...(evaluation.baseline ? { baseline: matrices ? evaluation.baseline : withoutMatrix(evaluation.baseline) } : {}),
      ...(matrices
        ? {}
        : { matricesOmitted: `confusion and pairwise Jaccard matrices are kept up to ${MATRIX_MODULES} modules; this decomposition has ${modules.length}` }),
      agreement: evaluation.agreement,
      oneVsRest: evaluation.oneVsRest,
      jaccard: jaccardByClass(modules),
    };
  } finally {
    maskRunner?.dispose();
  }
}

/** Modules whose blobs are written at once. */
const BLOB_WRITES = 16;

async function save(
  ctx: JobContext<'decompose'>,
  decompositionId: string,
  ownerId: string | null,
  classNames: string[],
  stored: StoredModule[],
  points: { layer: string; shape: number[]; units: number }[],
  metrics: Record<string, unknown>,
): Promise<void> {
  // Written just before the rows that refer to them commit: blobs are shared by content, and a
  // delete elsewhere releases a blob that no row refers to yet (an identical earlier
  // decomposition being deleted while this one evaluated would otherwise take them).
  const keys: { masksBlob: string; headBlob: string; networkBlob?: string }[] = [];
  // A few writes at a time: one by one, 1000 modules' 2000 blobs took seconds of waiting on the disk.
  for (let start = 0; start < stored.length; start += BLOB_WRITES) {
    const part = stored.slice(start, start + BLOB_WRITES);
    keys.push(
      ...(await Promise.all(
        part.map(async (s) => {
          const [masks, head, network] = await Promise.all([
            ctx.blobs.putBuffer(s.masks),
            ctx.blobs.putBuffer(s.head),
            s.network ? ctx.blobs.putBuffer(s.network) : undefined,
          ]);
          return { masksBlob: masks.key, headBlob: head.key, ...(network ? { networkBlob: network.key } : {}) };
        }),
      )),
    );
  }
  const modules: NewModule[] = stored.map((s, i) => ({
    // Keyed by (decomposition, class): a retried job replaces, never duplicates.
    id: `${decompositionId}-${s.module.classIndex}`,
    ownerId,
    decompositionId,
    classIndex: s.module.classIndex,
    className: classNames[s.module.classIndex] ?? String(s.module.classIndex),
    keptFraction: s.keptFraction,
    perLayer: s.perLayer,
    ...keys[i],
    ...(s.compact ? { compact: s.compact } : {}),
    ...(s.oneVsRest !== undefined ? { oneVsRest: { accuracy: s.oneVsRest } } : {}),
  }));
  await ctx.record((tx) => recordDecompositionResults(tx, decompositionId, { engineVersion: ENGINE_VERSION, observationPoints: points, metrics, modules }));
}
