/**
 * `npz` datasets: NumPy zips of `.npy` arrays, optionally with a second file for the labels.
 * Accepted layouts, tried in order:
 *  1. one pair `x{suffix}` / `y{suffix}` across the files (`x`/`y`, or Keras-style `x_test`/`y_test`
 *     when that split is the only one present);
 *  2. exactly two arrays in all (`arr_0` in an images npz plus `arr_0` in a labels npz or a bare
 *     `.npy`, or `arr_0`/`arr_1` in one npz): the one with 3 or 4 dimensions is the images.
 * Names never decide between images and labels in layout 2; the array ranks do.
 *
 * Headers are read from each array's first bytes and checked against its declared length before
 * any data is read; then each pass streams one array (inflating it, for a deflated entry).
 */
import { BadRequestError, UnsupportedFormatError } from '../../../errors';
import { isZip } from '../zip';
import { skipBytes, takeBytes } from './byte-chunks';
import { zipLimits, type DatasetLimits } from './limits';
import {
  checkPayloadLength,
  isNpy,
  NPY_PREFIX_BYTES,
  npyImageChunks,
  npyImageShape,
  npyLabelChunks,
  npyLabelCount,
  readNpyHeader,
  type NpyHeader,
} from './npy';
import type { DatasetSource } from './source';
import type { TensorPlan } from './types';
import { openZipSource, type ZipSource } from './zip-source';

interface ArrayRef {
  /** The array's key: entry name without `.npy`, or the bare file's name. */
  readonly key: string;
  /** `file` or `file:entry`, for error details. */
  readonly source: string;
  /** Bytes of the whole .npy: the file's size, or the entry's declared size (yauzl fails an entry that lies). */
  readonly size: number;
  /** The header, read from the array's first bytes. */
  header(): Promise<NpyHeader>;
  /** The whole .npy, streamed. */
  chunks(): AsyncIterable<Uint8Array>;
}

export async function planNpz(files: readonly DatasetSource[], limits: DatasetLimits): Promise<TensorPlan> {
  const zips: ZipSource[] = [];
  const close = () => {
    for (const zip of zips) zip.close();
  };
  try {
    const arrays = await listArrays(files, limits, zips);
    const { images, labels } = await pickImagesAndLabels(arrays);

    // Image header first (the size guard), then the labels, so a count mismatch is reported
    // before anything is streamed.
    const imageHeader = await images.header();
    const shape = npyImageShape(imageHeader, limits);
    const labelHeader = await labels.header();
    const n = npyLabelCount(labelHeader, labels.size - labelHeader.dataOffset, limits);
    if (shape[0] !== n) {
      throw new BadRequestError(`image/label count mismatch: ${shape[0]} images in ${images.source}, ${n} labels in ${labels.source}`);
    }
    checkPayloadLength(images.size - imageHeader.dataOffset, imageHeader, shape[0] * shape[1] * shape[2] * shape[3]);
    return {
      shape,
      dtype: imageHeader.kind === 'u' ? 'uint8' : 'float32',
      imageSource: images.source,
      labelSource: labels.source,
      labels: () => npyLabelChunks(labelHeader, skipBytes(labels.chunks(), labelHeader.dataOffset)),
      images: () => npyImageChunks(imageHeader, shape, skipBytes(images.chunks(), imageHeader.dataOffset), limits),
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}

async function pickImagesAndLabels(arrays: readonly ArrayRef[]): Promise<{ images: ArrayRef; labels: ArrayRef }> {
  const pair = pickPair(arrays);
  if (pair) return { images: pair[0], labels: pair[1] };
  if (arrays.length === 2) {
    const ranks = [(await arrays[0]!.header()).shape.length, (await arrays[1]!.header()).shape.length];
    const imageIndex = ranks.findIndex((r) => r === 3 || r === 4);
    if (imageIndex < 0 || ranks[1 - imageIndex] === 3 || ranks[1 - imageIndex] === 4) {
      throw new BadRequestError(
        `npz: cannot tell images from labels: ${arrays.map((a, i) => `${a.source} has ${ranks[i]} dimensions`).join(', ')}; ` +
          'images need 3 or 4 dimensions, labels 1 (or [N, 1])',
      );
    }
    return { images: arrays[imageIndex]!, labels: arrays[1 - imageIndex]! };
  }
  throw new BadRequestError(
    'npz: expected arrays x and y, or exactly two arrays (images and labels); found ' + (arrays.length === 0 ? 'none' : arrays.map((a) => a.source).join(', ')),
  );
}

function arrayRef(key: string, source: string, size: number, prefix: () => Promise<Buffer>, chunks: () => AsyncIterable<Uint8Array>): ArrayRef {
  let header: Promise<NpyHeader> | undefined;
  return {
    key,
    source,
    size,
    header: () => (header ??= prefix().then((bytes) => readNpyHeader(bytes, source))),
    chunks,
  };
}

async function listArrays(files: readonly DatasetSource[], limits: DatasetLimits, zips: ZipSource[]): Promise<ArrayRef[]> {
  const arrays: ArrayRef[] = [];
  for (const file of files) {
    if (isNpy(file.head)) {
      const key = file.name.replace(/^.*[\\/]/, '').replace(/\.npy$/i, '');
      arrays.push(
        arrayRef(
          key,
          file.name,
          file.size,
          () => takeBytes(file.stream(0, NPY_PREFIX_BYTES), NPY_PREFIX_BYTES),
          () => file.stream(),
        ),
      );
    } else if (isZip(file.head)) {
      const zip = await openZipSource(file, zipLimits(limits));
      zips.push(zip);
      for (const [name, entry] of zip.entries) {
        if (!name.toLowerCase().endsWith('.npy')) continue;
        arrays.push(
          arrayRef(
            name.slice(0, -4),
            `${file.name}:${name}`,
            entry.uncompressedSize,
            () => zip.head(name, NPY_PREFIX_BYTES),
            () => zip.chunks(name),
          ),
        );
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
