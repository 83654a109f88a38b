/**
 * PNG and JPEG decoding for image-folder datasets. Dimensions and channels are read from the header
 * (PNG IHDR, JPEG SOF) first: pngjs allocates width*height*4 bytes with no limit of its own, so a
 * tiny PNG declaring 100000x100000 must be stopped before it reaches the decoder.
 *
 * Channels: grayscale PNG (with or without alpha) and single-component JPEG give C=1, everything
 * else C=3. Alpha is dropped, not composited: classifiers take 1 or 3 channels, and compositing
 * would need a background colour the upload cannot state.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { BadRequestError } from '../../../errors';
import type { DatasetLimits } from './limits';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** jpeg-js keeps its own working buffers besides the output; this caps them per image. */
const JPEG_MAX_MEMORY_MB = 1024;

export interface ImageInfo {
  readonly kind: 'png' | 'jpeg';
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
}

export function probeImage(bytes: Buffer, source: string): ImageInfo {
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return probePng(bytes, source);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return probeJpeg(bytes, source);
  throw new BadRequestError(`${source}: not a PNG or JPEG image`);
}

function probePng(bytes: Buffer, source: string): ImageInfo {
  if (bytes.length < 33 || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new BadRequestError(`${source}: truncated PNG header`);
  }
  const colorType = bytes[25]!;
  // 0 gray, 4 gray+alpha; 2 RGB, 3 palette, 6 RGBA.
  const channels = colorType === 0 || colorType === 4 ? 1 : 3;
  return { kind: 'png', width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), channels };
}

/** Walks the marker segments up to the first SOF (start of frame), which holds size and components. */
function probeJpeg(bytes: Buffer, source: string): ImageInfo {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image, start of scan: no frame header seen
    const length = bytes.readUInt16BE(at + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (at + 10 > bytes.length) break;
      const components = bytes[at + 9]!;
      return {
        kind: 'jpeg',
        height: bytes.readUInt16BE(at + 5),
        width: bytes.readUInt16BE(at + 7),
        channels: components === 1 ? 1 : 3,
      };
    }
    at += 2 + length;
  }
  throw new BadRequestError(`${source}: truncated or malformed JPEG (no frame header)`);
}

/**
 * Decodes into `out` at `offset` as HWC with `info.channels` channels.
 * @throws BadRequestError for corrupt data or an image over `maxImagePixels`.
 */
export function decodeImageInto(bytes: Buffer, info: ImageInfo, source: string, out: Uint8Array, offset: number, limits: DatasetLimits): void {
  const pixels = info.width * info.height;
  if (pixels === 0 || pixels > limits.maxImagePixels) {
    throw new BadRequestError(`${source}: ${info.height}x${info.width} image; images must have 1 to ${limits.maxImagePixels} pixels`);
  }
  let rgba: Uint8Array;
  let step: number;
  try {
    if (info.kind === 'png') {
      rgba = PNG.sync.read(bytes).data;
      step = 4;
    } else {
      rgba = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        maxResolutionInMP: limits.maxImagePixels / 1e6,
        maxMemoryUsageInMB: JPEG_MAX_MEMORY_MB,
      }).data;
      step = 3;
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new BadRequestError(`${source}: cannot decode ${info.kind.toUpperCase()} (${reason})`);
  }
  if (rgba.length !== pixels * step) {
    throw new BadRequestError(`${source}: decoded size does not match its ${info.height}x${info.width} header`);
  }
  if (info.channels === 1) {
    // Gray decodes as R=G=B; keep one.
    for (let p = 0; p < pixels; p++) out[offset + p] = rgba[p * step]!;
  } else {
    for (let p = 0; p < pixels; p++) {
      out[offset + p * 3] = rgba[p * step]!;
      out[offset + p * 3 + 1] = rgba[p * step + 1]!;
      out[offset + p * 3 + 2] = rgba[p * step + 2]!;
    }
  }
}
