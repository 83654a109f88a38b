/**
 * Dataset uploads -> NHWC tensors plus labels. In: the uploaded files (name + bytes) and options.
 * Out: a `ParsedDataset`, or a typed error (400 bad content, 413 over a size limit, 415 unknown
 * format, 422 a damaged or unsafe zip, per the shared reader `../zip.ts`) whose detail names the
 * file, index or value at fault.
 *
 * Every reader checks the sizes its headers declare against the limits before allocating, then
 * `finishDataset` applies the checks all formats share (counts, label range, class counts).
 */
import { BadRequestError, UnsupportedFormatError } from '../../../errors';
import { readCifarBin } from './cifar-bin';
import { detectDatasetFormat } from './detect';
import { readIdx } from './idx';
import { readImageFolder } from './image-folder';
import { finishDataset } from './labels';
import { resolveLimits } from './limits';
import { readNpz } from './npz';
import type { DatasetFile, DatasetFormat, DecodedDataset, ParseDatasetOptions, ParsedDataset } from './types';

export type { DatasetFile, DatasetFormat, ParseDatasetOptions, ParsedDataset } from './types';
export { DEFAULT_LIMITS } from './limits';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['cifar-bin', 'idx', 'npz', 'image-folder'];

export async function parseDataset(files: DatasetFile[], options: ParseDatasetOptions = {}): Promise<ParsedDataset> {
  if (files.length === 0) throw new BadRequestError('no dataset files were uploaded');
  if (options.format !== undefined && !DATASET_FORMATS.includes(options.format)) {
    throw new UnsupportedFormatError(`unknown dataset format ${JSON.stringify(options.format)}`);
  }
  if (options.labelMode !== undefined && options.labelMode !== 'fine' && options.labelMode !== 'coarse') {
    throw new BadRequestError(`labelMode must be fine or coarse, got ${JSON.stringify(options.labelMode)}`);
  }
  const limits = resolveLimits(options);
  const format = options.format ?? (await detectDatasetFormat(files, options.labelMode, limits));
  if (options.labelMode !== undefined && format !== 'cifar-bin') {
    throw new BadRequestError(`labelMode only applies to cifar-bin datasets, not ${format}`);
  }

  let decoded: DecodedDataset;
  switch (format) {
    case 'cifar-bin':
      decoded = readCifarBin(files, options.labelMode, limits);
      break;
    case 'idx':
      decoded = await readIdx(files, limits);
      break;
    case 'npz':
      decoded = await readNpz(files, limits);
      break;
    case 'image-folder':
      decoded = await readImageFolder(files, limits);
      break;
  }
  return finishDataset(format, decoded);
}
