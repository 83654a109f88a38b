/**
 * decompose: one module per class (ALGORITHM.md sections 1-5, 7). Samples are read from the
 * decomposition dataset by range reads, the engine computes masks and heads, the blobs are written
 * (content-addressed, so a retry rewrites the same keys) and all module rows commit in one
 * transaction. With an evaluation dataset, the metrics follow.
 */
import { ENGINE_VERSION, ModelPlan, ModuleRunner, decompose, evaluateModules, maskJaccard, type DecomposeOptions } from '../../engine';
import { decompositionForRun, recordDecompositionResults } from '../../store/decompositions';
import { findModelById } from '../../store/models';
import type { LayerKept, NewModule } from '../../store/modules';
import { packHead, packMasks } from '../../store/module-blobs';
import { cachedModel } from '../model-cache';
import { blobSource, datasetBatches, readLabels } from '../dataset-batches';
import { energyOf } from '../energy';
import type { JobContext, Processor } from '../context';

export const decomposeProcessor: Processor<'decompose'> = async (ctx) => {
  const started = Date.now();
  const dec = await decompositionForRun(ctx.db, ctx.data.decompositionId);
  const model = await findModelById(ctx.db, dec.modelId);
  const classNames = model.classNames ?? [];
  const tfModel = await cachedModel(ctx.blobs, model.canonicalBlob!, ctx.pins);
  const options = { ...dec.options, preprocessing: model.preprocessing } as unknown as DecomposeOptions;
  const classes = dec.classes ?? undefined;

  await ctx.progress(1, 'sampling');
  const train = dec.dataset;
  const labels = await readLabels(ctx.blobs, train);
  const result = await decompose(tfModel, blobSource(ctx.blobs, train), labels, { ...options, classes }, async (stage, fraction) => {
    if (stage === 'observing') await ctx.progress(2 + 58 * fraction, 'observing');
    else await ctx.progress(stage === 'masking' ? 60 : 1, stage);
  });
  const points = result.observationPoints.map((p) => ({ layer: p.layer, shape: [...p.shape], units: p.units }));
  const totalUnits = points.reduce((s, p) => s + p.units, 0);

  const stored = [];
  for (const m of result.modules) {
    const kept = m.kept.reduce((a, b) => a + b, 0);
    stored.push({
      module: m,
      masks: packMasks(m.masks),
      head: packHead(m.head.kernel, m.head.bias),
      keptFraction: kept / totalUnits,
      perLayer: points.map((p, i) => ({ layer: p.layer, units: p.units, kept: m.kept[i] })),
    });
  }
  await ctx.progress(65, 'masking');

  let metrics: Record<string, unknown> | undefined;
  if (dec.evalDataset) {
    const plan = new ModelPlan(tfModel);
    const runner = new ModuleRunner(plan, result.modules, options.maskPoint);
    try {
      const ds = dec.evalDataset;
      const evaluation = await evaluateModules(plan, runner, datasetBatches(ctx.blobs, ds, 256), {
        imageShape: ds.shape.slice(1),
        preprocessing: options.preprocessing,
        moduleClasses: result.modules.map((m) => m.classIndex),
        onProgress: (done) => ctx.progress(65 + (33 * done) / ds.count, 'evaluating'),
      });
      metrics = {
        count: evaluation.count,
        model: evaluation.model,
        composed: evaluation.composed,
        agreement: evaluation.agreement,
        oneVsRest: evaluation.oneVsRest,
        jaccard: maskJaccard(result.modules.map((m) => m.masks)),
      };
      stored.forEach((s, i) => ((s as { oneVsRest?: number }).oneVsRest = evaluation.oneVsRest[i]));
    } finally {
      runner.dispose();
    }
  }
  metrics = {
    ...(metrics ?? { jaccard: maskJaccard(result.modules.map((m) => m.masks)) }),
    keptFraction: stored.reduce((s, m) => s + m.keptFraction, 0) / Math.max(1, stored.length),
    inputsRun: result.inputsRun,
    energy: energyOf((Date.now() - started) / 1000, ctx.config.energy),
  };

  await save(ctx, dec.id, dec.ownerId, classNames, stored, points, metrics);
  return { decompositionId: dec.id, modules: stored.length, ...(metrics.composed ? { composedTop1: (metrics.composed as { top1: number }).top1 } : {}) };
};

async function save(
  ctx: JobContext<'decompose'>,
  decompositionId: string,
  ownerId: string | null,
  classNames: string[],
  stored: { module: { classIndex: number }; masks: Uint8Array; head: Uint8Array; keptFraction: number; perLayer: LayerKept[]; oneVsRest?: number }[],
  points: { layer: string; shape: number[]; units: number }[],
  metrics: Record<string, unknown>,
): Promise<void> {
  // Written just before the rows that refer to them commit: blobs are shared by content, and a
  // delete elsewhere releases a blob that no row refers to yet (an identical earlier
  // decomposition being deleted while this one evaluated would otherwise take them).
  const keys: { masksBlob: string; headBlob: string }[] = [];
  for (const s of stored) keys.push({ masksBlob: (await ctx.blobs.putBuffer(s.masks)).key, headBlob: (await ctx.blobs.putBuffer(s.head)).key });
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
    ...(s.oneVsRest !== undefined ? { oneVsRest: { accuracy: s.oneVsRest } } : {}),
  }));
  await ctx.record((tx) => recordDecompositionResults(tx, decompositionId, { engineVersion: ENGINE_VERSION, observationPoints: points, metrics, modules }));
}
