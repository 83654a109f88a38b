/**
 * The one dispatch from uploaded files to a format reader's `TensorPlan`: options checked, the
 * format detected when not given, the limits resolved. Both sinks (`parseDataset`, `ingestDataset`)
 * start here, so they accept and refuse the same inputs with the same errors.
 */
import { BadRequestError, UnsupportedFormatError } from '../../../errors';
import { planCifarBin } from './cifar-bin';
import { detectDatasetFormat } from './detect';
import { planIdx } from './idx';
import { planImageFolder } from './image-folder';
import { resolveLimits, type DatasetLimits } from './limits';
import { planNpz } from './npz';
import type { DatasetSource } from './source';
import type { DatasetFormat, ParseDatasetOptions, TensorPlan } from './types';

export const DATASET_FORMATS: readonly DatasetFormat[] = ['cifar-bin', 'idx', 'npz', 'image-folder'];

export interface PlannedDataset {
  readonly format: DatasetFormat;
  readonly limits: DatasetLimits;
  readonly plan: TensorPlan;
}

/** Checks the options, detects the format when not given and has its reader plan the tensors. The caller closes the plan. */
export async function planDataset(files: readonly DatasetSource[], options: ParseDatasetOptions = {}): Promise<PlannedDataset> {
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

  let plan: TensorPlan;
  switch (format) {
    case 'cifar-bin':
      plan = await planCifarBin(files, options.labelMode, limits);
      break;
    case 'idx':
      plan = await planIdx(files, limits);
      break;
    case 'npz':
      plan = await planNpz(files, limits);
      break;
    case 'image-folder':
      plan = await planImageFolder(files, limits);
      break;
  }
  return { format, limits, plan };
}
