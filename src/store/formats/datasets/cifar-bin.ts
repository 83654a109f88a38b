/**
 * CIFAR binary batches: headerless records of label byte(s) + 3072 pixel bytes as R, G, B planes of
 * 32x32 (CHW). CIFAR-10 has 1 label byte; CIFAR-100 has 2 (coarse, fine), chosen by `labelMode`.
 * Several batch files form one dataset in the order given. Class names come from the official
 * text files when uploaded alongside: `batches.meta.txt` (CIFAR-10), `fine_label_names.txt` /
 * `coarse_label_names.txt` (CIFAR-100).
 *
 * Records have no header: the batches are streamed once, regrouped into whole records, and each
 * piece of records gives a piece of the labels and one of the images.
 */
import { BadRequestError } from '../../../errors';
import { wholeUnits } from './byte-chunks';
import { readClassNames } from './labels';
import { checkImageTensor, type DatasetLimits } from './limits';
import type { DatasetSource } from './source';
import type { TensorPlan } from './types';

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
export function isCifarMeta(file: { readonly name: string }): boolean {
  return META_NAMES.includes(baseName(file.name));
}

export async function planCifarBin(files: readonly DatasetSource[], labelMode: CifarLabelMode, limits: DatasetLimits): Promise<TensorPlan> {
  const record = cifarRecordBytes(labelMode);
  const dataset = labelMode ? `CIFAR-100 (${labelMode} labels)` : 'CIFAR-10';
  const batches = files.filter((f) => !isCifarMeta(f));
  if (batches.length === 0) throw new BadRequestError('cifar-bin: no batch files, only class-name files');
  for (const f of batches) {
    if (f.size === 0 || f.size % record !== 0) {
      const hint = !labelMode && f.size > 0 && f.size % cifarRecordBytes('fine') === 0 ? '; it looks like CIFAR-100, pass labelMode fine or coarse' : '';
      throw new BadRequestError(`${f.name}: ${f.size} bytes is not a positive multiple of the ${record}-byte ${dataset} record${hint}`);
    }
  }
  const n = batches.reduce((sum, f) => sum + f.size / record, 0);
  const source = batches.map((f) => f.name).join(' + ');
  checkImageTensor(source, [n, SIDE, SIDE, 3], 1, limits);

  const meta = findMeta(files, labelMode);
  const classNames = meta ? await readClassNames(meta) : undefined;
  const maxClasses = labelMode === 'coarse' ? 20 : labelMode === 'fine' ? 100 : 10;
  const limit = Math.min(classNames?.length ?? maxClasses, maxClasses);
  const why = classNames && classNames.length < maxClasses ? `${meta!.name} lists ${limit} classes` : `${dataset} has ${maxClasses} classes`;
  // CIFAR-100 records are (coarse, fine); fine is the second byte.
  const labelOffset = labelMode === 'fine' ? 1 : 0;
  const pixelOffset = record - CIFAR_PIXEL_BYTES;

  return {
    shape: [n, SIDE, SIDE, 3],
    dtype: 'uint8',
    ...(classNames ? { classNames } : {}),
    maxClasses,
    imageSource: source,
    labelSource: source,
    // One pass yields both tensors (drained side by side), so the upload is read once.
    async *records() {
      for (const f of batches) {
        let index = 0;
        for await (const records of wholeUnits(f.stream(), record)) {
          const count = records.length / record;
          const labels = new Int32Array(count);
          const images = new Uint8Array(count * CIFAR_PIXEL_BYTES);
          for (let r = 0; r < count; r++, index++) {
            const label = records[r * record + labelOffset]!;
            if (label >= limit) {
              throw new BadRequestError(`${f.name}: record ${index} has label ${label}; ${why}, so labels must be 0..${limit - 1}`);
            }
            labels[r] = label;
            const src = r * record + pixelOffset;
            const dst = r * CIFAR_PIXEL_BYTES;
            // CHW planes -> HWC: hwc[p*3 + c] = chw[c*1024 + p].
            for (let p = 0; p < PLANE; p++) {
              images[dst + p * 3] = records[src + p]!;
              images[dst + p * 3 + 1] = records[src + PLANE + p]!;
              images[dst + p * 3 + 2] = records[src + 2 * PLANE + p]!;
            }
          }
          yield { labels, images };
        }
      }
    },
    close() {},
  };
}

/** The mode's own names file wins; `batches.meta.txt` is the CIFAR-10 one and a fallback for fine labels. */
function findMeta(files: readonly DatasetSource[], labelMode: CifarLabelMode): DatasetSource | undefined {
  const byName = (name: string) => files.find((f) => baseName(f.name) === name);
  if (labelMode === 'coarse') return byName('coarse_label_names.txt');
  if (labelMode === 'fine') return byName('fine_label_names.txt') ?? byName('batches.meta.txt');
  return byName('batches.meta.txt');
}
