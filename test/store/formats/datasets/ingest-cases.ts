/**
 * Dataset uploads built from the shared fixtures (and small generated ones where no fixture has the
 * layout), for proving that streamed ingestion stores what the in-memory parser returns. Each case
 * pins the SHA-256 of the images and labels tensors and the row fields that the in-memory parser
 * produced before ingestion was streamed, so any drift in either path shows up against the original.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { DatasetFile, ParseDatasetOptions } from '../../../../src/store/formats/datasets';
import type { IngestedDataset } from '../../../../src/store/formats/datasets/ingest';
import { CIFAR_DIR, FASHION_DIR, KMNIST_DIR, MNIST_DIR } from '../../../support/fixtures';
import { grayImageFolderZip } from '../../../support/datasets';
import { makeNpy, makeZip } from './helpers';

export interface IngestCase {
  readonly name: string;
  readonly files: () => DatasetFile[];
  readonly options?: ParseDatasetOptions;
}

/** What ingestion returns, with each tensor's blob as the sha256 of its bytes (labels int32 little-endian). */
export type Expected = Omit<IngestedDataset, 'images' | 'labels'> & {
  readonly images: string;
  readonly labels: string;
};

const file = (dir: string, name: string): DatasetFile => ({ name, bytes: fs.readFileSync(path.join(dir, name)) });

/** The first `n` CIFAR-10 test records as CIFAR-100 records: a coarse and a fine label byte, then the pixels. */
function cifar100Batch(n: number): Buffer {
  const src = fs.readFileSync(path.join(CIFAR_DIR, 'test_batch.bin'));
  const out = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    const label = src[i * 3073]!;
    out[i * 3074] = (label * 2 + (i % 2)) % 20;
    out[i * 3074 + 1] = (label * 10 + (i % 10)) % 100;
    src.copy(out, i * 3074 + 2, i * 3073 + 1, (i + 1) * 3073);
  }
  return out;
}

/** The arr_0.npy entry of a KMNIST npz fixture (deflated in the fixture). */
function kmnistArray(name: string): Buffer {
  const zip = fs.readFileSync(path.join(KMNIST_DIR, name));
  // One entry, local header at 0: skip the 30-byte header, the name and the extra field.
  const nameLength = zip.readUInt16LE(26);
  const extraLength = zip.readUInt16LE(28);
  const compressed = zip.readUInt32LE(18);
  const start = 30 + nameLength + extraLength;
  return zlib.inflateRawSync(zip.subarray(start, start + compressed));
}

/** KMNIST's first `n` images as big-endian float32 in [0, 1], with int64 [N, 1] labels. */
function kmnistFloat(n: number): { x: Buffer; y: Buffer } {
  const images = kmnistArray('kmnist-test-imgs.npz');
  const labels = kmnistArray('kmnist-test-labels.npz');
  const imgOffset = images.length - 10000 * 784;
  const lblOffset = labels.length - 10000;
  const x = Buffer.alloc(n * 784 * 4);
  for (let i = 0; i < n * 784; i++) x.writeFloatBE(images[imgOffset + i]! / 255, i * 4);
  const y = Buffer.alloc(n * 8);
  for (let i = 0; i < n; i++) y.writeBigInt64LE(BigInt(labels[lblOffset + i]!), i * 8);
  return { x: makeNpy('>f4', [n, 28, 28], x), y: makeNpy('<i8', [n, 1], y) };
}

/** [N, H, W, C] uint8 values i % 251, written in column-major (Fortran) order. */
function fortranImages(shape: [number, number, number, number]): Buffer {
  const [n, h, w, c] = shape;
  const out = Buffer.alloc(n * h * w * c);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < h; b++)
      for (let d = 0; d < w; d++) for (let e = 0; e < c; e++) out[a + n * (b + h * (d + w * e))] = (((a * h + b) * w + d) * c + e) % 251;
  return makeNpy('|u1', shape, out, true);
}

function imageFolder(): Buffer {
  const img = (seed: number) => new Uint8Array(8 * 8).map((_, i) => (i * 7 + seed * 13) % 256);
  return grayImageFolderZip({ cat: [img(1), img(2), img(3)], dog: [img(4), img(5)] }, 8, 8);
}

const FINE_NAMES = Buffer.from(Array.from({ length: 100 }, (_, i) => `fine_${i}`).join('\n'));

export const INGEST_CASES: IngestCase[] = [
  {
    name: 'CIFAR-10 test batch with class names',
    files: () => [file(CIFAR_DIR, 'test_batch.bin'), file(CIFAR_DIR, 'batches.meta.txt')],
  },
  {
    name: 'CIFAR-10, two batches joined',
    files: () => [file(CIFAR_DIR, 'data_batch_1.bin'), file(CIFAR_DIR, 'test_batch.bin')],
    options: { format: 'cifar-bin' },
  },
  {
    name: 'CIFAR-100 style, fine labels with names',
    files: () => [
      { name: 'train.bin', bytes: cifar100Batch(3000) },
      { name: 'fine_label_names.txt', bytes: FINE_NAMES },
    ],
    options: { labelMode: 'fine' },
  },
  {
    name: 'CIFAR-100 style, coarse labels',
    files: () => [{ name: 'train.bin', bytes: cifar100Batch(3000) }],
    options: { format: 'cifar-bin', labelMode: 'coarse' },
  },
  {
    name: 'MNIST train, gzip IDX',
    files: () => [file(MNIST_DIR, 'train-images-idx3-ubyte.gz'), file(MNIST_DIR, 'train-labels-idx1-ubyte.gz')],
  },
  {
    name: 'Fashion-MNIST t10k, gzip IDX, labels first',
    files: () => [file(FASHION_DIR, 't10k-labels-idx1-ubyte.gz'), file(FASHION_DIR, 't10k-images-idx3-ubyte.gz')],
    options: { format: 'idx' },
  },
  {
    name: 'MNIST t10k, raw IDX',
    files: () => [
      { name: 't10k-images-idx3-ubyte', bytes: zlib.gunzipSync(fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'))) },
      { name: 't10k-labels-idx1-ubyte', bytes: zlib.gunzipSync(fs.readFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz'))) },
    ],
  },
  {
    name: 'KMNIST npz pair (deflated entries)',
    files: () => [file(KMNIST_DIR, 'kmnist-test-imgs.npz'), file(KMNIST_DIR, 'kmnist-test-labels.npz')],
  },
  {
    name: 'KMNIST as one npz of stored x/y entries',
    files: () => [
      {
        name: 'kmnist.npz',
        bytes: makeZip([
          { name: 'y.npy', data: kmnistArray('kmnist-test-labels.npz') },
          { name: 'x.npy', data: kmnistArray('kmnist-test-imgs.npz') },
        ]),
      },
    ],
  },
  {
    name: 'big-endian float32 x_test / int64 [N,1] y_test, deflated',
    files: () => {
      const { x, y } = kmnistFloat(1500);
      return [
        {
          name: 'float.npz',
          bytes: makeZip([
            { name: 'x_test.npy', data: x, deflate: true },
            { name: 'y_test.npy', data: y, deflate: true },
          ]),
        },
      ];
    },
  },
  {
    name: 'bare .npy files, float32 images',
    files: () => {
      const { x, y } = kmnistFloat(700);
      return [
        { name: 'labels.npy', bytes: y },
        { name: 'images.npy', bytes: x },
      ];
    },
  },
  {
    name: 'Fortran-order images in an npz',
    files: () => [
      {
        name: 'fortran.npz',
        bytes: makeZip([
          { name: 'arr_0.npy', data: fortranImages([40, 5, 6, 3]), deflate: true },
          { name: 'arr_1.npy', data: makeNpy('<u2', [40], Buffer.from(new Uint16Array(40).map((_, i) => i % 7).buffer)), deflate: true },
        ]),
      },
    ],
  },
  {
    name: 'image-folder zip',
    files: () => [{ name: 'pets.zip', bytes: imageFolder() }],
  },
];

/** What the in-memory parser returned for each case before ingestion was streamed (by case name). */
export const GOLDEN: Record<string, Expected> = {
  'CIFAR-10 test batch with class names': {
    format: 'cifar-bin',
    count: 10000,
    shape: [10000, 32, 32, 3],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
    classNames: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
    images: 'f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04',
    labels: '46759f9470c7bc483fc69c725b42c97033013de7690e19b600cf30381a76b9e5',
  },
  'CIFAR-10, two batches joined': {
    format: 'cifar-bin',
    count: 20000,
    shape: [20000, 32, 32, 3],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [2005, 1974, 2032, 2016, 1999, 1937, 2030, 2001, 2025, 1981],
    images: 'e32876480aee896b072b5e348174f29af65e2ae49bbf3b27a7dbfd74ab88c79d',
    labels: '90f57f91d1645b300325e71d731b7b967039bf5dbf47754fa24a9ceeb23430bb',
  },
  'CIFAR-100 style, fine labels with names': {
    format: 'cifar-bin',
    count: 3000,
    shape: [3000, 32, 32, 3],
    dtype: 'uint8',
    numClasses: 100,
    classCounts: [
      21, 23, 35, 29, 34, 29, 29, 30, 34, 35, 32, 36, 21, 25, 42, 22, 33, 29, 23, 24, 32, 33, 32, 39, 19, 34, 35, 28, 36, 30, 26, 27, 25, 37, 30, 31, 35, 30,
      31, 23, 36, 30, 23, 37, 25, 41, 23, 24, 35, 25, 30, 33, 29, 21, 23, 27, 21, 31, 41, 34, 27, 30, 47, 29, 27, 33, 25, 29, 19, 41, 37, 27, 25, 20, 24, 30,
      34, 31, 31, 27, 29, 30, 36, 37, 34, 25, 31, 28, 30, 36, 30, 31, 27, 26, 42, 28, 34, 40, 20, 25,
    ],
    classNames: [
      'fine_0',
      'fine_1',
      'fine_2',
      'fine_3',
      'fine_4',
      'fine_5',
      'fine_6',
      'fine_7',
      'fine_8',
      'fine_9',
      'fine_10',
      'fine_11',
      'fine_12',
      'fine_13',
      'fine_14',
      'fine_15',
      'fine_16',
      'fine_17',
      'fine_18',
      'fine_19',
      'fine_20',
      'fine_21',
      'fine_22',
      'fine_23',
      'fine_24',
      'fine_25',
      'fine_26',
      'fine_27',
      'fine_28',
      'fine_29',
      'fine_30',
      'fine_31',
      'fine_32',
      'fine_33',
      'fine_34',
      'fine_35',
      'fine_36',
      'fine_37',
      'fine_38',
      'fine_39',
      'fine_40',
      'fine_41',
      'fine_42',
      'fine_43',
      'fine_44',
      'fine_45',
      'fine_46',
      'fine_47',
      'fine_48',
      'fine_49',
      'fine_50',
      'fine_51',
      'fine_52',
      'fine_53',
      'fine_54',
      'fine_55',
      'fine_56',
      'fine_57',
      'fine_58',
      'fine_59',
      'fine_60',
      'fine_61',
      'fine_62',
      'fine_63',
      'fine_64',
      'fine_65',
      'fine_66',
      'fine_67',
      'fine_68',
      'fine_69',
      'fine_70',
      'fine_71',
      'fine_72',
      'fine_73',
      'fine_74',
      'fine_75',
      'fine_76',
      'fine_77',
      'fine_78',
      'fine_79',
      'fine_80',
      'fine_81',
      'fine_82',
      'fine_83',
      'fine_84',
      'fine_85',
      'fine_86',
      'fine_87',
      'fine_88',
      'fine_89',
      'fine_90',
      'fine_91',
      'fine_92',
      'fine_93',
      'fine_94',
      'fine_95',
      'fine_96',
      'fine_97',
      'fine_98',
      'fine_99',
    ],
    images: '7933e56634ec84f91363a35bc392157a8b1e9c2b84d814235abbc14971ebd00c',
    labels: 'ce962c159afb3b1d245086d9126120ec647ec1ce53886ff846770fb960d854ac',
  },
  'CIFAR-100 style, coarse labels': {
    format: 'cifar-bin',
    count: 3000,
    shape: [3000, 32, 32, 3],
    dtype: 'uint8',
    numClasses: 20,
    classCounts: [153, 146, 151, 136, 154, 164, 147, 148, 142, 157, 144, 146, 145, 162, 151, 135, 160, 156, 153, 150],
    images: '7933e56634ec84f91363a35bc392157a8b1e9c2b84d814235abbc14971ebd00c',
    labels: '5429a3e42e4c903e910279166d28a158365f2ad17cdd4992249f510e3daae3c4',
  },
  'MNIST train, gzip IDX': {
    format: 'idx',
    count: 60000,
    shape: [60000, 28, 28, 1],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    images: '741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757',
    labels: 'ba2e26c82ab7a46fbcd5ec6de8eee4d541cf3829f5050669177da23b515defeb',
  },
  'Fashion-MNIST t10k, gzip IDX, labels first': {
    format: 'idx',
    count: 10000,
    shape: [10000, 28, 28, 1],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
    images: 'c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a',
    labels: '53fdd09ed9cbcd893df0e3b0af7802f2d62457de11c87273d4b4186f4992a40c',
  },
  'MNIST t10k, raw IDX': {
    format: 'idx',
    count: 10000,
    shape: [10000, 28, 28, 1],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    images: '6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161',
    labels: '52aa149c856ca033d02e1d2e5cc61033b4c56ed4a56f0edc328206a178c42126',
  },
  'KMNIST npz pair (deflated entries)': {
    format: 'npz',
    count: 10000,
    shape: [10000, 28, 28, 1],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
    images: 'dc10e73c6e83fb3fb3586eafece217ab6602e7825fa7d49399359bde3fc66f07',
    labels: 'e8b3f403e9b8ea7b3e678b17114cc63dfa4a04e7c1da3eca897cc43196ce11ce',
  },
  'KMNIST as one npz of stored x/y entries': {
    format: 'npz',
    count: 10000,
    shape: [10000, 28, 28, 1],
    dtype: 'uint8',
    numClasses: 10,
    classCounts: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
    images: 'dc10e73c6e83fb3fb3586eafece217ab6602e7825fa7d49399359bde3fc66f07',
    labels: 'e8b3f403e9b8ea7b3e678b17114cc63dfa4a04e7c1da3eca897cc43196ce11ce',
  },
  'big-endian float32 x_test / int64 [N,1] y_test, deflated': {
    format: 'npz',
    count: 1500,
    shape: [1500, 28, 28, 1],
    dtype: 'float32',
    numClasses: 10,
    classCounts: [146, 166, 143, 156, 146, 164, 155, 151, 144, 129],
    images: '0b9c9515c3e4717a0adc645b0cb319d0e57811daab7c40ad756f9944662d2d8b',
    labels: '7ea4bf5d0ea95ed24f64ee15726c411d3f08e58c9d056fcc16e135deef33ec8e',
  },
  'bare .npy files, float32 images': {
    format: 'npz',
    count: 700,
    shape: [700, 28, 28, 1],
    dtype: 'float32',
    numClasses: 10,
    classCounts: [67, 61, 84, 79, 64, 81, 72, 68, 68, 56],
    images: '812b567b717d4a807f7162f864b253fc71c11db6bb7c5d2e745870a5a5badaf2',
    labels: '5d4c851a09236c05b878769b706d1024576c1b6e880e4e67b7ec1b0d7fac9a5e',
  },
  'Fortran-order images in an npz': {
    format: 'npz',
    count: 40,
    shape: [40, 5, 6, 3],
    dtype: 'uint8',
    numClasses: 7,
    classCounts: [6, 6, 6, 6, 6, 5, 5],
    images: '478323b1494ab922f3edab28a4eb1d3f124e75cad2ec913f8b6fe5dcb9441953',
    labels: 'b59544bedb44498962a9864a5aaa214fb7f96137cfdbda9ea00036a607fd4f6d',
  },
  'image-folder zip': {
    format: 'image-folder',
    count: 5,
    shape: [5, 8, 8, 1],
    dtype: 'uint8',
    numClasses: 2,
    classCounts: [3, 2],
    classNames: ['cat', 'dog'],
    images: 'd5e9b037582eb4750438d4ac415deaad6da6918350c571dff2803cc6e082590a',
    labels: 'ab7841e844f83d9a7dc5dc63c757b8d3d4a43940a20bf061e39a4b3d73cce4f7',
  },
};
