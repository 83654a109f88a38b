/**
 * predict: top-5 labels of a composition for a few uploaded inputs (raw pixels, any size: each is
 * resized to the modules' input shape). The inputs arrive as a blob (job data stays small); the
 * blob is dropped once answered.
 */
import { compositionMargins, fitImage, probabilityFromMargin, topK } from '../../engine';
import { UnprocessableError } from '../../errors';
import { releaseBlobs } from '../../store/blob-refs';
import { compositionRuntime } from '../composition-runtime';
import type { Processor } from '../context';

export const predictProcessor: Processor<'predict'> = async (ctx) => {
  const rt = await compositionRuntime(ctx.db, ctx.blobs, ctx.data.compositionId, ctx.pins, ctx.config.maxMaskBytes);
  const bytes = await ctx.blobs.get(ctx.data.inputBlob);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const [h, w, c] = rt.inputShape;
  const per = h * w * c;
  const pixels = new Float32Array(ctx.data.items.length * per);
  let offset = 0;
  ctx.data.items.forEach((it, i) => {
    const n = it.height * it.width * it.channels;
    pixels.set(fitImage(all.subarray(offset, offset + n), it.height, it.width, it.channels, rt.inputShape), i * per);
    offset += n;
  });
  const k = rt.labels.length;
  const margins = compositionMargins(rt.groups, k, pixels, ctx.data.items.length, rt.inputShape);
  // Finite float32 inputs can still overflow inside a module (pixels far off the model's scale):
  // a ranking of NaNs or infinities would be an answer that means nothing.
  const bad = margins.findIndex((m) => !Number.isFinite(m));
  if (bad >= 0) {
    await releaseBlobs(ctx.db, ctx.blobs, [ctx.data.inputBlob]);
    throw new UnprocessableError(`input ${Math.floor(bad / k)} drives the composition to a non-finite value; are its pixels on the dataset's scale?`);
  }
  const predictions = ctx.data.items.map((_, i) => {
    const row = margins.subarray(i * k, (i + 1) * k);
    return topK(row, 5).map((j) => ({ label: rt.labels[j], classIndex: j, probability: probabilityFromMargin(row[j]), margin: row[j] }));
  });
  await releaseBlobs(ctx.db, ctx.blobs, [ctx.data.inputBlob]);
  return { predictions };
};
