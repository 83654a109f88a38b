/**
 * Size guards. Every reader checks the sizes a header *declares* here before allocating anything,
 * so a 20-byte file claiming 1e9 x 1e9 images costs nothing.
 */
import { BadRequestError, PayloadTooLargeError } from '../../../errors';
import type { ZipLimits } from '../zip';
import type { ParseDatasetOptions } from './types';

export interface DatasetLimits {
  readonly maxImages: number;
  readonly maxBytes: number;
  readonly maxImagePixels: number;
}

export const DEFAULT_LIMITS: DatasetLimits = Object.freeze({
  maxImages: 5_000_000,
  maxBytes: 4 * 1024 ** 3,
  maxImagePixels: 4096 * 4096,
});

/** Headroom over the tensor budget for npy headers and PNG/JPEG container overhead. */
const ZIP_SLACK_BYTES = 64 * 1024 * 1024;

/**
 * What a dataset zip may hold: an entry per image plus class folders and some junk (READMEs,
 * `__MACOSX/`), and about the tensor budget in bytes. The guards themselves are the shared zip policy.
 */
export function zipLimits(limits: DatasetLimits): ZipLimits {
  return {
    maxEntries: Math.min(1_000_000, 2 * limits.maxImages + 1024),
    maxUncompressedBytes: limits.maxBytes + ZIP_SLACK_BYTES,
  };
}

/** Channels beyond RGBA mean the array is not an image batch (or its axes are in the wrong order). */
export const MAX_CHANNELS = 4;

export function resolveLimits(options: ParseDatasetOptions): DatasetLimits {
  const pick = (key: keyof DatasetLimits): number => {
    const value = options[key] ?? DEFAULT_LIMITS[key];
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new BadRequestError(`option ${key} must be a positive integer, got ${String(value)}`);
    }
    return value;
  };
  return { maxImages: pick('maxImages'), maxBytes: pick('maxBytes'), maxImagePixels: pick('maxImagePixels') };
}

/**
 * Checks a declared image tensor [n, h, w, c] of `bytesPerElement`-byte elements.
 * @throws BadRequestError for empty or absurd dimensions, PayloadTooLargeError past `maxBytes`.
 */
export function checkImageTensor(source: string, dims: readonly [number, number, number, number], bytesPerElement: number, limits: DatasetLimits): void {
  const [n, h, w, c] = dims;
  if (!dims.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new BadRequestError(`${source}: declares images of shape [${dims.join(', ')}]; every dimension must be positive`);
  }
  if (h * w > limits.maxImagePixels) {
    throw new BadRequestError(`${source}: declares ${h}x${w} images, more than the limit of ${limits.maxImagePixels} pixels per image`);
  }
  if (c > MAX_CHANNELS) {
    throw new BadRequestError(`${source}: declares ${c} channels per pixel; at most ${MAX_CHANNELS} are supported`);
  }
  checkImageCount(source, n, limits);
  if (n * h * w * c * bytesPerElement > limits.maxBytes) throw new PayloadTooLargeError(limits.maxBytes, DECODED);
}

/** What `maxBytes` bounds: the images as decoded, which may be far larger than the upload (compressed, or uint8 to float32). */
const DECODED = 'the decoded dataset';

export function checkImageCount(source: string, n: number, limits: DatasetLimits): void {
  if (n > limits.maxImages) {
    throw new BadRequestError(`${source}: declares ${n} images, more than the limit of ${limits.maxImages}`);
  }
}

/** Allocation can still fail below `maxBytes` (typed-array length caps, memory); that is a 413 too. */
export function allocate<T>(make: () => T, limits: DatasetLimits): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof RangeError) throw new PayloadTooLargeError(limits.maxBytes, DECODED);
    throw err;
  }
}
