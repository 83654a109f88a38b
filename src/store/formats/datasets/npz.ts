/**
 * `npz` datasets: NumPy zips of `.npy` arrays, optionally with a second file for the labels.
 * Accepted layouts, tried in order:
 *  1. one pair `x{suffix}` / `y{suffix}` across the files (`x`/`y`, or Keras-style `x_test`/`y_test`
 *     when that split is the only one present);
 *  2. exactly two arrays in all (`arr_0` in an images npz plus `arr_0` in a labels npz or a bare
 *     `.npy`, or `arr_0`/`arr_1` in one npz): the one with 3 or 4 dimensions is the images.
 * Names never decide between images and labels in layout 2; the array ranks do.
 */
import { BadRequestError, UnsupportedFormatError } from '../../../errors';
import { isZip, openZip } from '../zip';
import { zipLimits, type DatasetLimits } from './limits';
import { isNpy, npyImageShape, readNpyHeader, readNpyImages, readNpyLabels } from './npy';
import type { DatasetFile, DecodedDataset } from './types';

interface ArrayRef {
  /** The array's key: entry name without `.npy`, or the bare file's name. */
  readonly key: string;
  /** `file` or `file:entry`, for error details. */
  readonly source: string;
  load(): Promise<Buffer>;
}

export async function readNpz(files: readonly DatasetFile[], limits: DatasetLimits): Promise<DecodedDataset> {
  const arrays = await listArrays(files, limits);
  const pair = pickPair(arrays);
  let images: ArrayRef;
  let labels: ArrayRef;
  let imageBytes: Buffer;
  let labelBytes: Buffer;
  if (pair) {
    [images, labels] = pair;
    [imageBytes, labelBytes] = [await images.load(), await labels.load()];
  } else if (arrays.length === 2) {
    const loaded = [await arrays[0]!.load(), await arrays[1]!.load()] as const;
    const ranks = loaded.map((bytes, i) => readNpyHeader(bytes, arrays[i]!.source).shape.length);
    const imageIndex = ranks.findIndex((r) => r === 3 || r === 4);
    if (imageIndex < 0 || ranks[1 - imageIndex] === 3 || ranks[1 - imageIndex] === 4) {
      throw new BadRequestError(
        `npz: cannot tell images from labels: ${arrays.map((a, i) => `${a.source} has ${ranks[i]} dimensions`).join(', ')}; ` +
          'images need 3 or 4 dimensions, labels 1 (or [N, 1])',
      );
    }
    images = arrays[imageIndex]!;
    labels = arrays[1 - imageIndex]!;
    imageBytes = loaded[imageIndex]!;
    labelBytes = loaded[1 - imageIndex]!;
  } else {
    throw new BadRequestError(
      'npz: expected arrays x and y, or exactly two arrays (images and labels); found ' +
        (arrays.length === 0 ? 'none' : arrays.map((a) => a.source).join(', ')),
    );
  }

  // Image header first (the size guard), then the small labels, so a count mismatch is reported
  // before the big copy.
  const imageHeader = readNpyHeader(imageBytes, images.source);
  const [n] = npyImageShape(imageHeader, limits);
  const labelValues = readNpyLabels(labelBytes, readNpyHeader(labelBytes, labels.source), limits);
  if (n !== labelValues.length) {
    throw new BadRequestError(`image/label count mismatch: ${n} images in ${images.source}, ${labelValues.length} labels in ${labels.source}`);
  }
  const decoded = readNpyImages(imageBytes, imageHeader, limits);
  return { ...decoded, labels: labelValues, imageSource: images.source, labelSource: labels.source };
}

async function listArrays(files: readonly DatasetFile[], limits: DatasetLimits): Promise<ArrayRef[]> {
  const arrays: ArrayRef[] = [];
  for (const file of files) {
    if (isNpy(file.bytes)) {
      const key = file.name.replace(/^.*[\\/]/, '').replace(/\.npy$/i, '');
      arrays.push({ key, source: file.name, load: () => Promise.resolve(file.bytes) });
    } else if (isZip(file.bytes)) {
      const zip = await openZip(file.bytes, zipLimits(limits), file.name);
      for (const name of zip.entries.keys()) {
        if (!name.toLowerCase().endsWith('.npy')) continue;
        arrays.push({ key: name.slice(0, -4), source: `${file.name}:${name}`, load: () => zip.read(name) });
      }
    } else {
      throw new UnsupportedFormatError(`${file.name}: neither an .npz (zip) nor an .npy file`);
    }
  }
  return arrays;
}

function pickPair(arrays: readonly ArrayRef[]): [ArrayRef, ArrayRef] | undefined {
  const pairs: [ArrayRef, ArrayRef][] = [];
  for (const x of arrays) {
    const m = /^x(_\w+)?$/.exec(x.key);
    if (!m) continue;
    const y = arrays.find((a) => a.key === `y${m[1] ?? ''}`);
    if (y) pairs.push([x, y]);
  }
  if (pairs.length > 1) {
    throw new BadRequestError(`npz: several image/label pairs (${pairs.map(([x, y]) => `${x.key}/${y.key}`).join(', ')}); upload one split as x and y`);
  }
  return pairs[0];
}
