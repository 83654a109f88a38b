/**
 * Image-folder datasets: one zip holding `class/image.png|jpg` entries. Class names are the sorted
 * folder names and a class's index is its position, as Keras `image_dataset_from_directory` does.
 * Wrapper folders common to every image (`dataset/cat/1.png`, from zipping a folder) are stripped.
 * Images are taken in (class, file name) order, so the same upload always gives the same tensor.
 * `__MACOSX/` and dotfiles are skipped, and so are files that are not .png/.jpg/.jpeg (Thumbs.db,
 * README); a folder without any image is refused (Keras would count it as a class).
 *
 * Streamed: the zip is read at random through `zip-source.ts` (its central directory, then each
 * image's entry), and images are decoded one at a time into chunks of whole images, so neither the
 * upload nor the tensor is ever whole in memory. The first image, decoded while planning, fixes
 * the shape; an image of another size fails the pass with a 400 naming it.
 */
import { BadRequestError, UnsupportedFormatError } from '../../../errors';
import { isZip, type ZipEntryInfo } from '../zip';
import { decodeImageInto, probeImage, type ImageInfo } from './image-decode';
import { checkImageCount, checkImageTensor, zipLimits, type DatasetLimits } from './limits';
import type { DatasetSource } from './source';
import type { Shape4, TensorPlan } from './types';
import { openZipSource, type ZipSource } from './zip-source';

/** Values per chunk handed out (rounded down to whole images, at least one). */
const CHUNK_VALUES = 1024 * 1024;

const IMAGE_EXTENSION = /\.(png|jpe?g)$/i;

interface ImageEntry {
  readonly entry: ZipEntryInfo;
  readonly className: string;
  readonly fileName: string;
}

/** macOS resource forks and hidden files and folders: neither images nor classes. */
function isSkipped(parts: readonly string[]): boolean {
  return parts[0] === '__MACOSX' || parts.some((p) => p.startsWith('.'));
}

/** True for the entries an image-folder reader would decode. */
export function isImageEntryName(name: string): boolean {
  return !isSkipped(name.split('/')) && IMAGE_EXTENSION.test(name);
}

export async function planImageFolder(files: readonly DatasetSource[], limits: DatasetLimits): Promise<TensorPlan> {
  if (files.length !== 1 || !isZip(files[0]!.head)) {
    throw new UnsupportedFormatError(`image-folder: expected exactly one zip file, got ${files.map((f) => f.name).join(', ')}`);
  }
  const file = files[0]!;
  const zip = await openZipSource(file, zipLimits(limits));
  try {
    return await planImages(file.name, zip, limits);
  } catch (err) {
    zip.close();
    throw err;
  }
}

async function planImages(archive: string, zip: ZipSource, limits: DatasetLimits): Promise<TensorPlan> {
  const images = classify(
    archive,
    [...zip.entries.values()].filter((e) => isImageEntryName(e.name)),
  );
  refuseFoldersWithoutImages(archive, zip, images);
  checkImageCount(archive, images.length, limits);
  const classNames = [...new Set(images.map((i) => i.className))];
  const classIndex = new Map(classNames.map((name, i) => [name, i]));
  const labels = Int32Array.from(images, (i) => classIndex.get(i.className)!);

  const firstName = images[0]!.entry.name;
  const first = probeImage(await entryBytes(zip, firstName), `${archive}:${firstName}`);
  const shape: Shape4 = [images.length, first.height, first.width, first.channels];
  checkImageTensor(`${archive}:${firstName}`, shape, 1, limits);
  const size = first.height * first.width * first.channels;
  const perChunk = Math.max(1, Math.floor(CHUNK_VALUES / size));

  return {
    shape,
    dtype: 'uint8',
    classNames,
    imageSource: archive,
    labelSource: archive,
    // One pass yields each chunk's labels with its images: an image that fails to decode fails
    // both blob writes, so a refused upload leaves nothing stored (labels first would keep them).
    async *records() {
      for (let at = 0; at < images.length; at += perChunk) {
        const count = Math.min(perChunk, images.length - at);
        // A fresh chunk each time: a sink may still hold the last one.
        const out = new Uint8Array(count * size);
        for (let k = 0; k < count; k++) {
          const { name } = images[at + k]!.entry;
          const source = `${archive}:${name}`;
          const bytes = await entryBytes(zip, name);
          const info = probeImage(bytes, source);
          if (info.height !== first.height || info.width !== first.width || info.channels !== first.channels) {
            throw new BadRequestError(
              `ragged image sizes: ${JSON.stringify(name)} is ${describe(info)}, ` +
                `but ${JSON.stringify(firstName)} is ${describe(first)}; all images must share height, width and channels`,
            );
          }
          decodeImageInto(bytes, info, source, out, k * size, limits);
        }
        yield { labels: labels.subarray(at, at + count), images: out };
      }
    },
    close: () => zip.close(),
  };
}

/**
 * Keras's image_dataset_from_directory makes a class of every folder, with images or not. Dropped
 * here, such a folder would shift the index of each class after it, and a model's classes would be
 * read against the wrong labels without a word; so a folder beside the class folders that holds no
 * PNG or JPEG image (only other files, or nothing) is refused.
 */
function refuseFoldersWithoutImages(archive: string, zip: ZipSource, images: readonly ImageEntry[]): void {
  const segments = (name: string) => name.split('/').filter((p) => p.length > 0);
  // The wrapper folders classify() stripped: every image is <wrapper>/<class>/<file>.
  const wrapper = segments(images[0]!.entry.name).slice(0, -2);
  const classes = new Set(images.map((i) => i.className));
  for (const name of [...zip.entries.keys(), ...zip.directories]) {
    const parts = segments(name);
    if (isSkipped(parts)) continue;
    if (!wrapper.every((w, i) => parts[i] === w)) continue;
    const rest = parts.slice(wrapper.length);
    const inFolder = name.endsWith('/') ? rest.length >= 1 : rest.length >= 2;
    if (inFolder && !classes.has(rest[0]!)) {
      throw new BadRequestError(
        `${archive}: folder ${JSON.stringify(rest[0])} holds no PNG or JPEG image; Keras would count it as a class, ` +
          'which numbers the classes after it differently: remove it, or add its images',
      );
    }
  }
}

/** One image file's bytes (a compressed PNG or JPEG: small, and bounded by the zip's budget). */
async function entryBytes(zip: ZipSource, name: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of zip.chunks(name)) parts.push(chunk);
  return Buffer.concat(parts);
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
