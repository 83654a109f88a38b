/**
 * compose: builds a composition's runtime (one batched module pass per source model, each with its
 * own preprocessing), after continuous learning when asked, and, with an evaluation dataset,
 * scores it (composition-scoring.ts).
 */
import { compositionMemberIds, findCompositionById, recordCompositionMetrics } from '../../store/compositions';
import { findDatasetById } from '../../store/datasets';
import { decompositionEnergy } from '../../store/decompositions';
import { compositionRuntime } from '../composition-runtime';
import { scoreComposition } from '../composition-scoring';
import { energyOf } from '../energy';
import { applyContinuousLearning } from '../continuous-learning';
import type { Processor } from '../context';
import { MATRIX_MODULES, type CompositionScore } from '../../engine';

/**
 * Confusion matrices only while they stay readable (and small), as for decompositions: 1000
 * labels would be two million cells (with the baseline's) in the row every view reads, and writing
 * them alone outlasted the results transaction. Per-label accuracy is always kept.
 */
function withinMatrixLimit(score: CompositionScore): object {
  if (score.confusion.length <= MATRIX_MODULES) return score;
  const withoutMatrix = <T extends { confusion?: number[][] }>({ confusion: _, ...rest }: T) => rest;
  return {
    ...withoutMatrix(score),
    ...(score.baseline ? { baseline: withoutMatrix(score.baseline) } : {}),
    matricesOmitted: `confusion matrices are kept up to ${MATRIX_MODULES} labels; this composition has ${score.confusion.length}`,
  };
}

export const composeProcessor: Processor<'compose'> = async (ctx) => {
  const started = Date.now();
  const comp = await findCompositionById(ctx.db, ctx.data.compositionId);
  const options = comp.options;
  let relearned: number | undefined;
  if (options.continuousLearning) {
    await ctx.progress(2, 'continuous-learning');
    relearned = await applyContinuousLearning(
      ctx,
      comp.id,
      options.continuousLearning.datasetIds,
      options.labelMapping,
      options.continuousLearning.labelMappings,
    );
  }
  await ctx.progress(5, 'loading');
  await compositionRuntime(ctx.db, ctx.blobs, comp.id, ctx.pins, ctx.config.maxMaskBytes);

  let score: object | undefined;
  if (options.evalDatasetId) {
    const ds = await findDatasetById(ctx.db, options.evalDatasetId);
    ({ score } = await scoreComposition(ctx, comp.id, ds, {
      labelMapping: options.labelMapping,
      baseline: true,
      onProgress: (read) => ctx.progress(10 + (85 * read) / ds.count, 'evaluating'),
    }));
  }
  const metrics = {
    ...(score ? withinMatrixLimit(score as CompositionScore) : {}),
    ...(relearned !== undefined ? { continuousLearning: { modulesChanged: relearned } } : {}),
    energy: energyOf((Date.now() - started) / 1000, ctx.config.energy),
    // The one-time cost this composition reuses, for comparison with its own.
    // Members read again: continuous learning may have pointed them at new module versions.
    decompositionEnergy: await decompositionEnergy(ctx.db, await compositionMemberIds(ctx.db, comp.id)),
  };
  await ctx.record((tx) => recordCompositionMetrics(tx, comp.id, metrics));
  return { compositionId: comp.id, ...(score ? { top1: (score as { top1: number }).top1 } : {}) };
};
