/** Builds dataset upload files in tests (IDX is the simplest format to write). */
import fs from 'node:fs';
import path from 'node:path';
import { CIFAR_DIR } from './fixtures';

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
