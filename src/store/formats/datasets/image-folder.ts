/**
 * Image-folder datasets: one zip holding `class/image.png|jpg` entries. Class names are the sorted
 * folder names and a class's index is its position, as Keras `image_dataset_from_directory` does.
 * Wrapper folders common to every image (`dataset/cat/1.png`, from zipping a folder) are stripped.
 * Images are taken in (class, file name) order, so the same upload always gives the same tensor.
 * `__MACOSX/` and dotfiles are skipped, and so are files that are not .png/.jpg/.jpeg (Thumbs.db,
 * README); a class is a folder holding at least one image.
 *
 * Not streamed: the zip is read into memory and every image decoded into one tensor, which is then
 * handed out in chunks like the streamed formats'. Decoding image by image from the zip read at
 * random (zip-source.ts) would bound this too, but costs ranged reads per image, slow on S3; the
 * large datasets come as raw bytes (CIFAR, IDX, npz), which stream.
 */
import { BadRequestError, UnsupportedFormatError } from '../../../errors';
import { isZip, openZip, type ZipEntryInfo } from '../zip';
import { decodeImageInto, probeImage, type ImageInfo } from './image-decode';
import { allocate, checkImageCount, checkImageTensor, zipLimits, type DatasetLimits } from './limits';
import { readWhole, type DatasetSource } from './source';
import type { DecodedDataset, TensorPlan } from './types';

/** Chunks the decoded tensor is handed out in, so a blob store gets them as from a streamed format. */
const CHUNK_VALUES = 1024 * 1024;

const IMAGE_EXTENSION = /\.(png|jpe?g)$/i;

interface ImageEntry {
  readonly entry: ZipEntryInfo;
  readonly className: string;
  readonly fileName: string;
}

/** True for the entries an image-folder reader would decode. */
export function isImageEntryName(name: string): boolean {
  const parts = name.split('/');
  if (parts[0] === '__MACOSX' || parts.some((p) => p.startsWith('.'))) return false;
  return IMAGE_EXTENSION.test(name);
}

export async function planImageFolder(files: readonly DatasetSource[], limits: DatasetLimits): Promise<TensorPlan> {
  if (files.length !== 1 || !isZip(files[0]!.head)) {
    throw new UnsupportedFormatError(`image-folder: expected exactly one zip file, got ${files.map((f) => f.name).join(', ')}`);
  }
  const decoded = await decodeImageFolder(files[0]!.name, await readWhole(files[0]!), limits);
  return {
    ...decoded,
    async *images() {
      for (let at = 0; at < decoded.images.length; at += CHUNK_VALUES) yield decoded.images.subarray(at, at + CHUNK_VALUES);
    },
    async *labels() {
      yield decoded.labels;
    },
    close() {},
  };
}

async function decodeImageFolder(name: string, bytes: Buffer, limits: DatasetLimits): Promise<DecodedDataset> {
  const file = { name, bytes };
  const zip = await openZip(file.bytes, zipLimits(limits), file.name);
  const images = classify(
    file.name,
    [...zip.entries.values()].filter((e) => isImageEntryName(e.name)),
  );
  checkImageCount(file.name, images.length, limits);
  const classNames = [...new Set(images.map((i) => i.className))];
  const classIndex = new Map(classNames.map((name, i) => [name, i]));

  let first: { info: ImageInfo; name: string } | undefined;
  let out: Uint8Array | undefined;
  const labels = new Int32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const { entry, className } = images[i]!;
    const source = `${file.name}:${entry.name}`;
    const bytes = await zip.read(entry.name);
    const info = probeImage(bytes, source);
    if (!first) {
      first = { info, name: entry.name };
      const dims = [images.length, info.height, info.width, info.channels] as const;
      checkImageTensor(source, dims, 1, limits);
      out = allocate(() => new Uint8Array(dims[0] * dims[1] * dims[2] * dims[3]), limits);
    } else if (info.height !== first.info.height || info.width !== first.info.width || info.channels !== first.info.channels) {
      throw new BadRequestError(
        `ragged image sizes: ${JSON.stringify(entry.name)} is ${describe(info)}, ` +
          `but ${JSON.stringify(first.name)} is ${describe(first.info)}; all images must share height, width and channels`,
      );
    }
    const size = info.height * info.width * info.channels;
    decodeImageInto(bytes, info, source, out!, i * size, limits);
    labels[i] = classIndex.get(className)!;
  }
  if (!first || !out) throw new BadRequestError(`${file.name}: no PNG or JPEG images in class folders`);
  return {
    shape: [images.length, first.info.height, first.info.width, first.info.channels],
    dtype: 'uint8',
    images: out,
    labels,
    classNames,
    imageSource: file.name,
    labelSource: file.name,
  };
}

function describe(info: ImageInfo): string {
  return `${info.height}x${info.width}x${info.channels}`;
}

/** Splits names into class and file after stripping shared wrapper folders; sorts by both. */
function classify(archive: string, entries: readonly ZipEntryInfo[]): ImageEntry[] {
  if (entries.length === 0) throw new BadRequestError(`${archive}: no PNG or JPEG images in class folders`);
  let paths = entries.map((e) => e.name.split('/').filter((p) => p.length > 0));
  while (paths.every((p) => p.length >= 3 && p[0] === paths[0]![0])) paths = paths.map((p) => p.slice(1));
  const images = entries.map((entry, i): ImageEntry => {
    const parts = paths[i]!;
    if (parts.length !== 2) {
      throw new BadRequestError(`${archive}: ${JSON.stringify(entry.name)} is not in a class folder; expected <class>/<image> (one folder level per class)`);
    }
    return { entry, className: parts[0]!, fileName: parts[1]! };
  });
  // Code-unit order, not localeCompare: class indices must not depend on the server's locale.
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return images.sort((a, b) => cmp(a.className, b.className) || cmp(a.fileName, b.fileName));
}
