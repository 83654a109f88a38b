/** Builds dataset upload files in tests (IDX is the simplest format to write). */
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { CIFAR_DIR } from './fixtures';
import { rawZip } from './tfjs-zip';

/** An uncompressed IDX images file [N, H, W] and labels file. */
export function idxFiles(images: Uint8Array, labels: ArrayLike<number>, h: number, w: number): { images: Buffer; labels: Buffer } {
  const n = labels.length;
  const img = Buffer.alloc(16 + n * h * w);
  img.writeUInt32BE(0x803, 0);
  img.writeUInt32BE(n, 4);
  img.writeUInt32BE(h, 8);
  img.writeUInt32BE(w, 12);
  img.set(images.subarray(0, n * h * w), 16);
  const lab = Buffer.alloc(8 + n);
  lab.writeUInt32BE(0x801, 0);
  lab.writeUInt32BE(n, 4);
  for (let i = 0; i < n; i++) lab[8 + i] = labels[i];
  return { images: img, labels: lab };
}

/** The first `n` records of a CIFAR-10 binary batch, as a batch file of its own. */
export function cifarHead(file: string, n: number): Buffer {
  return fs.readFileSync(path.join(CIFAR_DIR, file)).subarray(0, n * 3073);
}

/** An 8-bit grayscale PNG of an [H,W] uint8 image. */
export function grayPng(img: Uint8Array, h: number, w: number): Buffer {
  const png = new PNG({ width: w, height: h, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  png.data = Buffer.from(img);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** An image-folder zip (`<class>/<i>.png`, 8-bit grayscale) from [N,H,W] uint8 images per class. */
export function grayImageFolderZip(classes: Record<string, Uint8Array[]>, h: number, w: number): Buffer {
  const entries: Record<string, Buffer> = {};
  for (const [name, images] of Object.entries(classes)) {
    images.forEach((img, i) => {
      entries[`${name}/${String(i).padStart(5, '0')}.png`] = grayPng(img, h, w);
    });
  }
  return rawZip(entries);
}
