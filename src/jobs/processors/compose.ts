/**
 * compose: builds a composition's runtime (one batched module pass per source model, each with its
 * own preprocessing) and, with an evaluation dataset, scores it on the images of its classes
 * (matched by class name or the label mapping), beside the restricted-model baseline when all its
 * modules come from one model.
 */
import { CompositionScorer, compositionMargins, modelScores } from '../../engine';
import type { Prisma } from '../../store/db';
import { compositionRuntime } from '../composition-runtime';
import { datasetBatches } from '../dataset-batches';
import { energyOf } from '../energy';
import { applyContinuousLearning } from '../continuous-learning';
import type { Processor } from '../context';

export const composeProcessor: Processor<'compose'> = async (ctx) => {
  const started = Date.now();
  const comp = await ctx.db.composition.findUniqueOrThrow({ where: { id: ctx.data.compositionId } });
  await ctx.db.composition.update({ where: { id: comp.id }, data: { status: 'active' } });
  const labels = comp.labels as string[];
  const options = (comp.options ?? {}) as { evalDatasetId?: string; labelMapping?: Record<string, string>; continuousLearning?: { datasetIds: string[]; labelMappings?: Record<string, Record<string, string>> } };
  let relearned: number | undefined;
  if (options.continuousLearning) {
    await ctx.progress(2, 'continuous-learning');
    relearned = await applyContinuousLearning(ctx, comp.id, options.continuousLearning.datasetIds, options.labelMapping, options.continuousLearning.labelMappings);
  }
  await ctx.progress(5, 'loading');
  const { groups, singleModelClasses } = await compositionRuntime(ctx.db, ctx.blobs, comp.id, ctx.leases);

  let score: object | undefined;
  if (options.evalDatasetId) {
    const ds = await ctx.db.dataset.findUniqueOrThrow({ where: { id: options.evalDatasetId } });
    const shape = ds.shape as number[];
    const names = (ds.classNames as string[] | null) ?? Array.from({ length: ds.numClasses }, (_, i) => String(i));
    const toLabel = names.map((n) => labels.indexOf(options.labelMapping?.[n] ?? n));
    const single = singleModelClasses ? groups[0] : undefined;
    const scorer = new CompositionScorer(labels.length, singleModelClasses);
    const per = shape[1] * shape[2] * shape[3];
    let seen = 0;
    // Each runner cuts a batch into passes within its row budget (ModuleRunner.margins).
    for await (const batch of datasetBatches(ctx.blobs, { ...ds, shape }, 512)) {
      const idx = Array.from(batch.labels.keys()).filter((i) => toLabel[batch.labels[i]] >= 0);
      if (idx.length) {
        const pixels = batch.images instanceof Float32Array ? new Float32Array(idx.length * per) : new Uint8Array(idx.length * per);
        idx.forEach((i, j) => pixels.set(batch.images.subarray(i * per, (i + 1) * per), j * per));
        const margins = compositionMargins(groups, labels.length, pixels, idx.length, shape.slice(1));
        const scores = single ? modelScores(single.plan, single.preprocessing, pixels, idx.length, shape.slice(1)) : undefined;
        scorer.add(margins, idx.map((i) => toLabel[batch.labels[i]]), scores);
      }
      seen += batch.labels.length;
      await ctx.progress(10 + (85 * seen) / ds.count, 'evaluating');
    }
    score = scorer.result();
  }
  const metrics = {
    ...(score ?? {}),
    ...(relearned !== undefined ? { continuousLearning: { modulesChanged: relearned } } : {}),
    energy: energyOf((Date.now() - started) / 1000, ctx.config.energy),
    // The one-time cost this composition reuses, for comparison with its own.
    decompositionEnergy: await decompositionEnergy(ctx, comp.id),
  };
  await ctx.record((tx) =>
    tx.composition.update({
      where: { id: comp.id },
      data: { status: 'completed', metrics: metrics as unknown as Prisma.InputJsonValue, finishedAt: new Date() },
    }),
  );
  return { compositionId: comp.id, ...(score ? { top1: (score as { top1: number }).top1 } : {}) };
};

async function decompositionEnergy(ctx: Parameters<Processor<'compose'>>[0], compositionId: string): Promise<{ seconds: number; kWh: number; co2eKg: number; decompositions: number }> {
  const members = await ctx.db.compositionModule.findMany({ where: { compositionId }, include: { module: { select: { decompositionId: true } } } });
  const ids = [...new Set(members.map((m) => m.module.decompositionId))];
  const decs = await ctx.db.decomposition.findMany({ where: { id: { in: ids } }, select: { metrics: true } });
  const total = { seconds: 0, kWh: 0, co2eKg: 0, decompositions: decs.length };
  for (const d of decs) {
    const e = (d.metrics as { energy?: { seconds: number; kWh: number; co2eKg: number } } | null)?.energy;
    if (e) {
      total.seconds += e.seconds;
      total.kWh += e.kWh;
      total.co2eKg += e.co2eKg;
    }
  }
  return total;
}
