/**
 * The checks every format shares once its tensors are decoded: image/label counts agree, labels lie
 * in the class range, and the class count and per-class counts are derived the same way for all.
 */
import { BadRequestError } from '../../../errors';
import type { DatasetFile, DatasetFormat, DecodedDataset, ParsedDataset } from './types';

/** Without class names, numClasses is max label + 1; this keeps a stray huge label from sizing arrays. */
export const MAX_CLASSES = 100_000;

/** One name per line, as in CIFAR's `batches.meta.txt`; copies in the wild carry blank lines and spaces. */
export function parseClassNames(file: DatasetFile): string[] {
  const names = file.bytes
    .toString('utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length === 0) throw new BadRequestError(`${file.name}: lists no class names`);
  if (names.length > MAX_CLASSES) {
    throw new BadRequestError(`${file.name}: lists ${names.length} class names, more than ${MAX_CLASSES}`);
  }
  return names;
}

export function finishDataset(format: DatasetFormat, d: DecodedDataset): ParsedDataset {
  const [n, h, w, c] = d.shape;
  if (n === 0) throw new BadRequestError(`${d.imageSource}: holds no images`);
  if (d.labels.length !== n) {
    throw new BadRequestError(`image/label count mismatch: ${n} images in ${d.imageSource}, ${d.labels.length} labels in ${d.labelSource}`);
  }
  if (d.images.length !== n * h * w * c) {
    // A reader bug, not bad input: fail loudly rather than hand out a tensor of the wrong size.
    throw new Error(`dataset reader produced ${d.images.length} values for shape [${d.shape.join(', ')}]`);
  }

  const { limit, why } = labelLimit(d);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const label = d.labels[i]!;
    if (label < 0 || label >= limit) {
      throw new BadRequestError(`label ${label} at index ${i} in ${d.labelSource} is out of range: labels must be in [0, ${limit - 1}] (${why})`);
    }
    if (label > max) max = label;
  }

  const numClasses = d.classNames?.length ?? max + 1;
  const classCounts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < n; i++) classCounts[d.labels[i]!]! += 1;

  return {
    format,
    count: n,
    shape: [n, h, w, c],
    dtype: d.dtype,
    images: d.images,
    labels: d.labels,
    numClasses,
    classCounts,
    ...(d.classNames ? { classNames: d.classNames } : {}),
  };
}

function labelLimit(d: DecodedDataset): { limit: number; why: string } {
  if (d.classNames && d.classNames.length <= (d.maxClasses ?? MAX_CLASSES)) {
    return { limit: d.classNames.length, why: `${d.classNames.length} class names were given` };
  }
  if (d.maxClasses !== undefined) return { limit: d.maxClasses, why: `the format has ${d.maxClasses} classes` };
  return { limit: MAX_CLASSES, why: `at most ${MAX_CLASSES} classes are supported` };
}
