/**
 * inspect-model: verifies an uploaded model blob (checksum = content address), detects its format
 * from its bytes and records size, checksum and format on the model row.
 */
import { createHash } from 'node:crypto';
import { UnprocessableError } from '../../errors';
import { findModelById } from '../../store/models';
import { updateModel } from '../../store/models';
import { listZipEntries, sniff, zipModelFormat, type ModelFormat } from '../../store/formats/detect';
import type { Processor } from '../context';

export const inspectModel: Processor<'inspect-model'> = async (ctx) => {
  const model = await findModelById(ctx.db, ctx.data.modelId);
  await ctx.progress(5, 'reading');

  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.blobs.openRead(model.sourceBlob)) {
    const b = chunk as Buffer;
    hash.update(b);
    chunks.push(b);
    size += b.length;
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== model.sourceBlob) {
    throw new UnprocessableError(`stored model file is corrupt: checksum ${sha256} != ${model.sourceBlob}`);
  }
  await ctx.progress(50, 'detecting');

  const bytes = Buffer.concat(chunks, size);
  let format: ModelFormat | undefined;
  let entries: string[] | undefined;
  const kind = sniff(bytes.subarray(0, 8));
  if (kind === 'hdf5') format = 'h5';
  else if (kind === 'zip') {
    const list = await listZipEntries(bytes).catch((err: Error) => {
      throw new UnprocessableError(`model zip is unreadable: ${err.message}`);
    });
    format = zipModelFormat(list);
    entries = list.map((e) => e.name);
  }
  if (!format) throw new UnprocessableError('model file is neither a Keras HDF5 file nor a .keras / TF.js zip');
  await ctx.progress(90, 'recording');

  const inspection = { format, sizeBytes: size, sha256, ...(entries ? { entries } : {}) };
  await updateModel(ctx.db, model.id, { status: 'ready', format, inspection });
  return { modelId: model.id, format, sizeBytes: size, sha256 };
};
