/** Readers for the shared fixtures used by several tests (independent of the service's parsers). */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { REPO_ROOT, SHARED } from './test-env';

export const RESNET_DIR = path.join(SHARED, 'fixtures', 'resnet20-cifar10');
export const KMNIST_DIR = path.join(SHARED, 'fixtures', 'fse-kmnist1');
export const CIFAR_DIR = path.join(SHARED, 'fixtures', 'cifar10-bin');

export const MNIST_DIR = path.join(SHARED, 'data', 'mnist');
export const FASHION_DIR = path.join(SHARED, 'data', 'fashion-mnist');
/** Small models trained by scripts/train-fixtures.ts (see test/fixtures/trained/README.md). */
export const TRAINED_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'trained');
/** The preprocessing those models were trained with. */
export const TRAINED_PREPROCESSING = { scale: 1 / 255 };
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export const CIFAR_PREPROCESSING = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

export interface Golden {
  n: number;
  labels_first_n: number[];
  pred_first_n: number[];
  softmax_first_n: number[][];
  accuracy_first_2000: number;
  pred_test_10000: number[];
}

export function golden(): Golden {
  return JSON.parse(fs.readFileSync(path.join(RESNET_DIR, 'golden.json'), 'utf8'));
}

/** The first `n` records of a CIFAR-10 binary batch as NHWC uint8 plus labels (README's byte layout). */
export function cifarRecords(file: string, n: number): { images: Uint8Array; labels: Int32Array } {
  const buf = fs.readFileSync(path.join(CIFAR_DIR, file));
  const images = new Uint8Array(n * 3072);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rec = buf.subarray(i * 3073, (i + 1) * 3073);
    labels[i] = rec[0];
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        for (let c = 0; c < 3; c++) images[i * 3072 + (y * 32 + x) * 3 + c] = rec[1 + c * 1024 + y * 32 + x];
      }
    }
  }
  return { images, labels };
}

/** The fixture's TF.js model folder as a zip (built with the zip CLI, as a user would). */
export function resnetTfjsZip(): Buffer {
  const out = path.join(require('node:os').tmpdir(), `resnet-tfjs-${process.pid}.zip`);
  if (!fs.existsSync(out)) {
    require('node:child_process').execFileSync('zip', ['-q', '-j', out, 'model.json', 'group1-shard1of1.bin'], { cwd: path.join(RESNET_DIR, 'tfjs') });
  }
  return fs.readFileSync(out);
}

/** A trained fixture model folder (model.json + one shard) as the zip users upload. */
export function trainedZip(name: 'mnist-cnn' | 'fashion-cnn' | 'cifar10-weak'): Buffer {
  const out = path.join(require('node:os').tmpdir(), `trained-${name}-${process.pid}.zip`);
  if (!fs.existsSync(out)) {
    require('node:child_process').execFileSync('zip', ['-q', '-j', out, 'model.json', 'group1-shard1of1.bin'], { cwd: path.join(TRAINED_DIR, name) });
  }
  return fs.readFileSync(out);
}

/** A gzip'ed IDX file of the shared data (MNIST layout): [N,28,28] uint8 images or [N] labels. */
export function readIdxGz(dir: string, file: string): Uint8Array {
  const buf = zlib.gunzipSync(fs.readFileSync(path.join(dir, file)));
  const rank = buf[3];
  return new Uint8Array(buf.buffer, buf.byteOffset + 4 + 4 * rank, buf.length - 4 - 4 * rank);
}
