/** One PNG or JPEG image into HWC uint8 pixels, with the dataset reader's header checks; and pixels back into a PNG. */
import { PNG } from 'pngjs';
import { DEFAULT_LIMITS } from './datasets/limits';
import { decodeImageInto, probeImage } from './datasets/image-decode';

export interface DecodedImage {
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  readonly pixels: Uint8Array;
}

/** @throws BadRequestError for anything that is not a sane PNG/JPEG (checked from its header first). */
export function decodeImage(bytes: Buffer, source: string): DecodedImage {
  const info = probeImage(bytes, source);
  const pixels = new Uint8Array(info.height * info.width * info.channels);
  decodeImageInto(bytes, info, source, pixels, 0, DEFAULT_LIMITS);
  return { height: info.height, width: info.width, channels: info.channels, pixels };
}

/**
 * HWC pixels (1 to 4 channels) as a PNG file. uint8 pixels are written as they are; float pixels
 * (a float32 dataset may hold 0..1 or 0..255 or standardised values) are stretched from their own
 * min..max to 0..255 so any of them shows.
 */
export function encodePng(pixels: Uint8Array | Float32Array, height: number, width: number, channels: number): Buffer {
  let bytes: ArrayLike<number> = pixels;
  if (pixels instanceof Float32Array) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const v of pixels) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const span = hi > lo ? hi - lo : 1;
    bytes = Uint8Array.from(pixels, (v) => Math.round(((v - lo) / span) * 255));
  }
  const png = new PNG({ width, height });
  for (let p = 0; p < height * width; p++) {
    const at = p * channels;
    const gray = channels < 3;
    png.data[p * 4] = bytes[at];
    png.data[p * 4 + 1] = gray ? bytes[at] : bytes[at + 1];
    png.data[p * 4 + 2] = gray ? bytes[at] : bytes[at + 2];
    png.data[p * 4 + 3] = channels === 2 ? bytes[at + 1] : channels === 4 ? bytes[at + 3] : 255;
  }
  return PNG.sync.write(png);
}
