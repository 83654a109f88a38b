/**
 * Continuous learning (ALGORITHM.md section 6): before a composition runs, each module's tangling
 * identification is re-run with samples of the other modules' classes taken from the given
 * datasets (matched by class name or the label mapping), through the module's own model and
 * preprocessing. A unit active on any of them is turned back on; nothing is ever turned off.
 * A module that changes becomes a new module version (parentModuleId = the original, which is
 * left as it was) and the composition points to it.
 */
import { batchCounts, countKept, toTensor } from '../engine';
import { compositionSources, pointMemberAt } from '../store/compositions';
import { findDatasetById } from '../store/datasets';
import type { NewModule } from '../store/modules';
import { packMasks } from '../store/module-blobs';
import { blobSource, readLabels } from './dataset-batches';
import { continuousLearningLabels } from './label-matching';
import { loadModule } from './module-loader';
import type { JobContext } from './context';

const BATCH = 128;

/**
 * @param mapping class name -> label for every dataset without its own entry in `perDataset`
 * @param perDataset per dataset id: class name -> label, and only those classes are used
 */
export async function applyContinuousLearning(
  ctx: JobContext<'compose'>,
  compositionId: string,
  datasetIds: string[],
  mapping: Record<string, string> = {},
  perDataset: Record<string, Record<string, string>> = {},
): Promise<number> {
  const { composition, sources } = await compositionSources(ctx.db, compositionId);
  const labels = composition.labels;
  const datasets = [];
  for (const id of datasetIds) {
    const d = await findDatasetById(ctx.db, id);
    const labelOf = continuousLearningLabels(d, perDataset[id], mapping);
    datasets.push({ source: blobSource(ctx.blobs, d), labels: await readLabels(ctx.blobs, d), labelOf });
  }
  const versions: { position: number; version: NewModule }[] = [];
  for (const [position, src] of sources.entries()) {
    const mod = src.module;
    const opts = src.options as { samplesPerClass?: number; tanglingRatio?: number };
    const perClass = Math.max(1, Math.floor(((opts.samplesPerClass ?? 1000) * (opts.tanglingRatio ?? 1)) / Math.max(1, labels.length - 1)));
    // A compact module widens the masks of its own network, the same way.
    const { plan, spec, points } = await loadModule(ctx.blobs, src, ctx.pins);
    const masks = spec.masks.map((m) => m.slice());
    for (const [other, label] of labels.entries()) {
      if (other === position) continue;
      let left = perClass;
      for (const d of datasets) {
        const wanted = d.labelOf.map((l) => l === label);
        const idx = Array.from(d.labels.keys())
          .filter((i) => wanted[d.labels[i]])
          .slice(0, left);
        left -= idx.length;
        for (let s = 0; s < idx.length; s += BATCH) {
          const part = idx.slice(s, s + BATCH);
          const x = toTensor(plan, await d.source.read(part), part.length, d.source.imageShape, src.model.preprocessing);
          const counts = batchCounts(plan, x);
          x.dispose();
          counts.forEach((c, p) => c.forEach((v, u) => v > 0 && (masks[p][u] = 1)));
        }
        if (left <= 0) break;
      }
      await ctx.progress(5, 'continuous-learning');
    }
    const before = spec.masks.reduce((s, m) => s + countKept(m), 0);
    const kept = masks.map(countKept);
    if (kept.reduce((a, b) => a + b, 0) === before) continue;
    const blob = await ctx.blobs.putBuffer(packMasks(masks));
    // Kept units are reported against the model's points (a compact network's are fewer).
    const keptAt = new Map(points.map((p, i) => [p.layer, kept[i]]));
    const modelPoints = src.observationPoints;
    versions.push({
      position,
      version: {
        id: `${compositionId}-${position}`,
        ownerId: mod.ownerId,
        decompositionId: mod.decompositionId,
        classIndex: mod.classIndex,
        className: mod.className,
        keptFraction: kept.reduce((a, b) => a + b, 0) / modelPoints.reduce((s, p) => s + p.units, 0),
        perLayer: modelPoints.map((p) => ({ layer: p.layer, units: p.units, kept: keptAt.get(p.layer) ?? 0 })),
        masksBlob: blob.key,
        headBlob: mod.headBlob,
        ...(mod.networkBlob && mod.compact ? { networkBlob: mod.networkBlob, compact: mod.compact } : {}),
        parentModuleId: mod.id,
      },
    });
  }
  // All new versions and the composition's pointers commit together (a retry redoes the same ids),
  // under the run's lease like every other write of the job.
  await ctx.record(async (tx) => {
    for (const v of versions) await pointMemberAt(tx, compositionId, v.position, v.version);
  });
  return versions.length;
}
