/**
 * export-module: the module as a standalone TF.js layers model (raw pixels -> P(class), masks,
 * head and preprocessing folded in), zipped as model.json + weights.bin and stored as a blob.
 */
import { EXPORT_WEIGHTS_FILE, ModelPlan, exportModule } from '../../engine';
import { zipBuffers } from '../../store/zip-writer';
import { cachedModel } from '../model-cache';
import { loadModuleSpec } from '../module-loader';
import type { Processor } from '../context';

export const exportModuleProcessor: Processor<'export-module'> = async (ctx) => {
  const m = await ctx.db.module.findUniqueOrThrow({ where: { id: ctx.data.moduleId }, include: { decomposition: { include: { model: true } } } });
  await ctx.progress(10, 'loading');
  const dec = m.decomposition;
  const tfModel = await cachedModel(ctx.blobs, dec.model.canonicalBlob!, ctx.leases);
  const spec = await loadModuleSpec(ctx.blobs, m, dec.observationPoints as { units: number }[]);
  await ctx.progress(40, 'exporting');
  const exported = await exportModule(new ModelPlan(tfModel), spec, JSON.parse(dec.model.preprocessing), {
    moduleId: m.id,
    className: m.className,
    classIndex: m.classIndex,
    decompositionId: dec.id,
    modelId: dec.modelId,
  });
  const zip = await zipBuffers({
    'model.json': Buffer.from(JSON.stringify(exported.modelJson)),
    [EXPORT_WEIGHTS_FILE]: Buffer.from(exported.weights),
  });
  const blob = await ctx.blobs.putBuffer(zip);
  await ctx.record((tx) => tx.module.update({ where: { id: m.id }, data: { exportBlob: blob.key } }));
  return { moduleId: m.id, sizeBytes: blob.size };
};
