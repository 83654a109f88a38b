/**
 * export-module: the module as a standalone TF.js layers model (raw pixels -> P(class), masks,
 * head and preprocessing folded in), zipped as model.json + weights.bin and stored as a blob.
 */
import { EXPORT_WEIGHTS_FILE, ModelPlan, exportModule } from '../../engine';
import { zipBuffers } from '../../store/zip-writer';
import { moduleSource, setModuleExport } from '../../store/modules';
import { cachedModel } from '../model-cache';
import { loadModuleSpec } from '../module-loader';
import type { Processor } from '../context';

export const exportModuleProcessor: Processor<'export-module'> = async (ctx) => {
  const { module: m, model, observationPoints } = await moduleSource(ctx.db, ctx.data.moduleId);
  await ctx.progress(10, 'loading');
  const tfModel = await cachedModel(ctx.blobs, model.canonicalBlob!, ctx.pins);
  const spec = await loadModuleSpec(ctx.blobs, m, observationPoints);
  await ctx.progress(40, 'exporting');
  const exported = await exportModule(new ModelPlan(tfModel), spec, model.preprocessing, {
    moduleId: m.id,
    className: m.className,
    classIndex: m.classIndex,
    decompositionId: m.decompositionId,
    modelId: m.modelId,
  });
  const zip = await zipBuffers({
    'model.json': Buffer.from(JSON.stringify(exported.modelJson)),
    [EXPORT_WEIGHTS_FILE]: Buffer.from(exported.weights),
  });
  const blob = await ctx.blobs.putBuffer(zip);
  await ctx.record((tx) => setModuleExport(tx, m.id, blob.key));
  return { moduleId: m.id, sizeBytes: blob.size };
};
