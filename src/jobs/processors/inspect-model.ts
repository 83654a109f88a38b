/**
 * inspect-model: turns an uploaded model file into a usable model. Parses it (store/formats),
 * loads it in TF.js and checks it is a supported classifier (engine), then records its summary
 * and stores the canonical form the workers load. A file that is not a usable model removes the
 * model row and its upload, so nothing of it stays behind.
 */
import { describeModel, loadModel, preprocessingProblem } from '../../engine';
import { UnprocessableError } from '../../errors';
import { releaseBlobs } from '../../store/blob-refs';
import { parseModelFile } from '../../store/formats/models';
import { packModel } from '../../store/model-artifacts';
import { deleteModel, findModelById, markModelReady } from '../../store/models';
import { isBadInput } from '../errors';
import type { JobContext, Processor } from '../context';

export const inspectModel: Processor<'inspect-model'> = async (ctx) => {
  try {
    return await inspect(ctx);
  } catch (err) {
    // The file is not a usable model: nothing of it stays. (A cancelled or broken run keeps the row.)
    if (isBadInput(err)) await discardModel(ctx);
    throw err;
  }
};

async function inspect(ctx: JobContext<'inspect-model'>) {
  const model = await findModelById(ctx.db, ctx.data.modelId);
  await ctx.progress(5, 'reading');
  const bytes = await ctx.blobs.get(model.sourceBlob);
  await ctx.progress(20, 'parsing');
  const parsed = await parseModelFile(bytes);
  await ctx.progress(50, 'loading');
  const tfModel = await loadModel(parsed);
  let summary;
  try {
    summary = describeModel(tfModel);
  } finally {
    tfModel.dispose();
  }
  if (summary.params > ctx.config.maxModelParams) {
    throw new UnprocessableError(`the model has ${summary.params} parameters; this service accepts at most ${ctx.config.maxModelParams} (MAX_MODEL_PARAMS)`);
  }
  const channels = summary.inputShape[summary.inputShape.length - 1];
  const preprocessing = preprocessingProblem(model.preprocessing, channels);
  if (preprocessing) throw new UnprocessableError(preprocessing);
  const classNames = model.classNames ?? Array.from({ length: summary.numClasses }, (_, i) => String(i));
  if (classNames.length !== summary.numClasses) {
    throw new UnprocessableError(`classNames has ${classNames.length} names but the model has ${summary.numClasses} classes`);
  }
  await ctx.progress(80, 'storing');
  const canonical = await ctx.blobs.putBuffer(packModel(parsed));
  await ctx.record((tx) =>
    markModelReady(tx, model.id, {
      format: parsed.format,
      canonicalBlob: canonical.key,
      inputShape: summary.inputShape,
      numClasses: summary.numClasses,
      params: summary.params,
      layers: summary.layers,
      classNames,
      outputActivation: summary.outputActivation,
      details: { format: parsed.format, kerasVersion: parsed.kerasVersion ?? null, sizeBytes: model.sizeBytes, sha256: model.sha256 },
    }),
  );
  return {
    modelId: model.id,
    format: parsed.format,
    sizeBytes: model.sizeBytes,
    sha256: model.sha256,
    inputShape: summary.inputShape,
    numClasses: summary.numClasses,
    params: summary.params,
  };
}

/** Under the lease, like every write of a run: a run that lost the job removes nothing. */
async function discardModel(ctx: JobContext<'inspect-model'>): Promise<void> {
  const model = await findModelById(ctx.db, ctx.data.modelId).catch(() => undefined);
  if (!model) return;
  await ctx.record((tx) => deleteModel(tx, model.id, { keepJobs: true }));
  await releaseBlobs(ctx.db, ctx.blobs, [model.sourceBlob]);
}
