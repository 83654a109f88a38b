/** One PNG or JPEG image into HWC uint8 pixels, with the dataset reader's header checks. */
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
