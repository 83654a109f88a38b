/**
 * export-module: the module as a standalone TF.js layers model (raw pixels -> P(class), masks,
 * head and preprocessing folded in; a compact module's own network), zipped as model.json + weights.bin and stored as a blob.
 */
import { EXPORT_WEIGHTS_FILE, exportModule } from '../../engine';
import { zipBuffers } from '../../store/zip-writer';
import { moduleSource, setModuleExport } from '../../store/modules';
import { loadModule } from '../module-loader';
import type { Processor } from '../context';

export const exportModuleProcessor: Processor<'export-module'> = async (ctx) => {
  const src = await moduleSource(ctx.db, ctx.data.moduleId);
  const { module: m, model } = src;
  await ctx.progress(10, 'loading');
  // A compact module exports its own small network.
  const { plan, spec } = await loadModule(ctx.blobs, src, ctx.pins);
  await ctx.progress(40, 'exporting');
  const exported = await exportModule(plan, spec, model.preprocessing, {
    moduleId: m.id,
    className: m.className,
    classIndex: m.classIndex,
    decompositionId: m.decompositionId,
    modelId: m.modelId,
    ...(m.compact ? { compact: { flopsFraction: m.compact.flopsFraction, paramsFraction: m.compact.paramsFraction, params: m.compact.params } } : {}),
  });
  const zip = await zipBuffers({
    'model.json': Buffer.from(JSON.stringify(exported.modelJson)),
    [EXPORT_WEIGHTS_FILE]: Buffer.from(exported.weights),
  });
  const blob = await ctx.blobs.putBuffer(zip);
  await ctx.record((tx) => setModuleExport(tx, m.id, blob.key));
  return { moduleId: m.id, sizeBytes: blob.size };
};
