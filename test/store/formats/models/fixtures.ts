/** Readers for the shared fixtures (models, CIFAR-10 binary, KMNIST npz) and a TF.js loader for parsed models. */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parse as parseNpy, type NpyArray } from 'npyjs';
import yauzl from 'yauzl';
import type { ParsedModel } from '../../../../src/store/formats/models';
import type { ZipEntrySpec } from '../../../support/zip-builder';

export const FIXTURES = path.resolve(__dirname, '../../../../../shared/fixtures');
export const RESNET_DIR = path.join(FIXTURES, 'resnet20-cifar10');
export const KMNIST_DIR = path.join(FIXTURES, 'fse-kmnist1');

export const readFixture = (...parts: string[]): Buffer => fs.readFileSync(path.join(FIXTURES, ...parts));

/** The ResNet TF.js folder as zip entries, optionally under a folder (as zipping a folder produces). */
export function resnetTfjsEntries(folder = ''): ZipEntrySpec[] {
  const dir = path.join(RESNET_DIR, 'tfjs');
  const files = fs.readdirSync(dir).sort();
  const entries = files.map((f) => ({ name: folder + f, data: fs.readFileSync(path.join(dir, f)) }));
  return folder ? [{ name: folder, data: Buffer.alloc(0), store: true }, ...entries] : entries;
}

export interface ResnetGolden {
  softmax_first_n: number[][];
  labels_first_n: number[];
}
export const resnetGolden = (): ResnetGolden => JSON.parse(readFixture('resnet20-cifar10', 'golden.json').toString('utf8')) as ResnetGolden;

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** The first n CIFAR-10 test images as NHWC float32, preprocessed as the ResNet README says (in float32, /255, -mean, /std). */
export function cifarTestImages(n: number): tf.Tensor4D {
  const bin = readFixture('cifar10-bin', 'test_batch.bin');
  const hwc = new Float32Array(n * 3072);
  for (let i = 0; i < n; i++) {
    const rec = i * 3073 + 1;
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) hwc[i * 3072 + p * 3 + c] = bin[rec + c * 1024 + p]!;
  }
  return tf.tidy(() => tf.tensor4d(hwc, [n, 32, 32, 3]).div(255).sub(tf.tensor1d(MEAN)).div(tf.tensor1d(STD)));
}

/** One entry of a zip, read with yauzl so that the parser under test is not involved. */
export function readZipEntry(zipBytes: Buffer, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zipBytes, { lazyEntries: true, autoClose: false }, (err, zip) => {
      if (err || !zip) return reject(err);
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== name) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            zip.close();
            resolve(Buffer.concat(chunks));
          });
          stream.on('error', reject);
        });
      });
      zip.on('end', () => {
        zip.close();
        reject(new Error(`${name} is not in the zip`));
      });
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/** One array of an .npz (a zip of .npy files). */
export async function readNpz(file: string, key = 'arr_0'): Promise<NpyArray> {
  const b = await readZipEntry(fs.readFileSync(file), `${key}.npy`);
  return parseNpy(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

/** tfjs-node when it loads (fast), else the pure-JS cpu backend. */
export async function useFastestBackend(): Promise<string> {
  try {
    require('@tensorflow/tfjs-node');
    await tf.setBackend('tensorflow');
  } catch {
    await tf.setBackend('cpu');
  }
  await tf.ready();
  return tf.getBackend();
}

export function loadParsed(p: ParsedModel): Promise<tf.LayersModel> {
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: p.modelTopology as tf.io.ModelArtifacts['modelTopology'],
      weightSpecs: p.weightSpecs,
      weightData: p.weightData,
    }),
  );
}
