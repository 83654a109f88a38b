/**
 * CIFAR binary batches: headerless records of label byte(s) + 3072 pixel bytes as R, G, B planes of
 * 32x32 (CHW). CIFAR-10 has 1 label byte; CIFAR-100 has 2 (coarse, fine), chosen by `labelMode`.
 * Several batch files form one dataset in the order given. Class names come from the official
 * text files when uploaded alongside: `batches.meta.txt` (CIFAR-10), `fine_label_names.txt` /
 * `coarse_label_names.txt` (CIFAR-100).
 */
import { BadRequestError } from '../../../errors';
import { parseClassNames } from './labels';
import { allocate, checkImageTensor, type DatasetLimits } from './limits';
import type { DatasetFile, DecodedDataset } from './types';

const SIDE = 32;
const PLANE = SIDE * SIDE;
export const CIFAR_PIXEL_BYTES = 3 * PLANE;

export type CifarLabelMode = 'fine' | 'coarse' | undefined;

export function cifarRecordBytes(labelMode: CifarLabelMode): number {
  return (labelMode ? 2 : 1) + CIFAR_PIXEL_BYTES;
}

const META_NAMES = ['batches.meta.txt', 'fine_label_names.txt', 'coarse_label_names.txt'];

function baseName(name: string): string {
  return name.replace(/^.*[\\/]/, '').toLowerCase();
}

/** True for the class-name text files of either CIFAR distribution. */
export function isCifarMeta(file: DatasetFile): boolean {
  return META_NAMES.includes(baseName(file.name));
}

export function readCifarBin(files: readonly DatasetFile[], labelMode: CifarLabelMode, limits: DatasetLimits): DecodedDataset {
  const record = cifarRecordBytes(labelMode);
  const dataset = labelMode ? `CIFAR-100 (${labelMode} labels)` : 'CIFAR-10';
  const batches = files.filter((f) => !isCifarMeta(f));
  if (batches.length === 0) throw new BadRequestError('cifar-bin: no batch files, only class-name files');
  for (const f of batches) {
    if (f.bytes.length === 0 || f.bytes.length % record !== 0) {
      const hint =
        !labelMode && f.bytes.length > 0 && f.bytes.length % cifarRecordBytes('fine') === 0 ? '; it looks like CIFAR-100, pass labelMode fine or coarse' : '';
      throw new BadRequestError(`${f.name}: ${f.bytes.length} bytes is not a positive multiple of the ${record}-byte ${dataset} record${hint}`);
    }
  }
  const n = batches.reduce((sum, f) => sum + f.bytes.length / record, 0);
  const source = batches.map((f) => f.name).join(' + ');
  checkImageTensor(source, [n, SIDE, SIDE, 3], 1, limits);

  const meta = findMeta(files, labelMode);
  const classNames = meta ? parseClassNames(meta) : undefined;
  const maxClasses = labelMode === 'coarse' ? 20 : labelMode === 'fine' ? 100 : 10;
  const limit = Math.min(classNames?.length ?? maxClasses, maxClasses);
  const why = classNames && classNames.length < maxClasses ? `${meta!.name} lists ${limit} classes` : `${dataset} has ${maxClasses} classes`;

  const images = allocate(() => new Uint8Array(n * CIFAR_PIXEL_BYTES), limits);
  const labels = new Int32Array(n);
  // CIFAR-100 records are (coarse, fine); fine is the second byte.
  const labelOffset = labelMode === 'fine' ? 1 : 0;
  const pixelOffset = record - CIFAR_PIXEL_BYTES;
  let i = 0;
  for (const f of batches) {
    const bytes = f.bytes;
    for (let at = 0; at < bytes.length; at += record, i++) {
      const label = bytes[at + labelOffset]!;
      if (label >= limit) {
        throw new BadRequestError(`${f.name}: record ${at / record} has label ${label}; ${why}, so labels must be 0..${limit - 1}`);
      }
      labels[i] = label;
      const src = at + pixelOffset;
      const dst = i * CIFAR_PIXEL_BYTES;
      // CHW planes -> HWC: hwc[p*3 + c] = chw[c*1024 + p].
      for (let p = 0; p < PLANE; p++) {
        images[dst + p * 3] = bytes[src + p]!;
        images[dst + p * 3 + 1] = bytes[src + PLANE + p]!;
        images[dst + p * 3 + 2] = bytes[src + 2 * PLANE + p]!;
      }
    }
  }

  return {
    shape: [n, SIDE, SIDE, 3],
    dtype: 'uint8',
    images,
    labels,
    ...(classNames ? { classNames } : {}),
    maxClasses,
    imageSource: source,
    labelSource: source,
  };
}

/** The mode's own names file wins; `batches.meta.txt` is the CIFAR-10 one and a fallback for fine labels. */
function findMeta(files: readonly DatasetFile[], labelMode: CifarLabelMode): DatasetFile | undefined {
  const byName = (name: string) => files.find((f) => baseName(f.name) === name);
  if (labelMode === 'coarse') return byName('coarse_label_names.txt');
  if (labelMode === 'fine') return byName('fine_label_names.txt') ?? byName('batches.meta.txt');
  return byName('batches.meta.txt');
}
