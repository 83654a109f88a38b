/**
 * Trains the small models the inter-dataset and replace tests decompose, and saves each as a TF.js
 * layers model (model.json + one weight shard) under test/fixtures/trained/<name>/.
 *
 *   npx tsx scripts/train-fixtures.ts [--only mnist-cnn,fashion-cnn,cifar10-weak]
 *       [--fashion-dir /usr/share/datasets/fashion-mnist] [--out test/fixtures/trained]
 *
 * Inputs: MNIST (../shared/data/mnist, 60k train + 10k test), Fashion-MNIST training files from the
 * Debian package `dataset-fashion-mnist` (or --fashion-dir / FASHION_MNIST_DIR) with the test set of
 * ../shared/data/fashion-mnist, CIFAR-10 data_batch_1 + test_batch (../shared/fixtures/cifar10-bin).
 * Outputs: the model folders and, on stdout, one JSON line per model (test accuracy, sizes, seconds).
 * Pixels are preprocessed with the service's own function and spec (scale 1/255), so the models
 * see in training exactly what the service feeds them. Initial weights and the batch order are
 * seeded; libtensorflow's multithreaded kernels may still differ in the last bits between runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { initTfjsRuntime } from '../src/config/tfjs-runtime';
import { preprocess } from '../src/engine/preprocess';
// The service's own seeded generator (mulberry32): the batch order, since tfjs's shuffle is unseeded.
import { rng } from '../src/engine/random';

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
const DEFAULT_OUT = path.join(ROOT, 'test', 'fixtures', 'trained');
const DEBIAN_FASHION = '/usr/share/datasets/fashion-mnist';

/** The preprocessing every fixture model is trained with and uploaded with. */
export const FIXTURE_PREPROCESSING = { scale: 1 / 255 };

interface Split {
  images: Uint8Array;
  labels: Int32Array;
  shape: [number, number, number];
}

interface Recipe {
  name: string;
  seed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  data: () => { train: Split; test: Split; source: string };
  build: (seed: number) => tf.Sequential;
}

function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  let buf = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  const rank = buf[3];
  const dims = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  return {
    dims,
    data: new Uint8Array(
      buf.buffer,
      buf.byteOffset + 4 + 4 * rank,
      dims.reduce((a, b) => a * b, 1),
    ),
  };
}

function idxSplit(dir: string, prefix: 'train' | 't10k'): Split {
  const images = readIdx(path.join(dir, `${prefix}-images-idx3-ubyte.gz`));
  const labels = readIdx(path.join(dir, `${prefix}-labels-idx1-ubyte.gz`));
  return { images: images.data, labels: Int32Array.from(labels.data), shape: [28, 28, 1] };
}

/** CIFAR-10 binary batch (README layout: label byte, then R, G, B planes) as NHWC. */
function cifarSplit(file: string): Split {
  const buf = fs.readFileSync(path.join(SHARED, 'fixtures', 'cifar10-bin', file));
  const n = buf.length / 3073;
  const images = new Uint8Array(n * 3072);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rec = i * 3073;
    labels[i] = buf[rec];
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) images[i * 3072 + p * 3 + c] = buf[rec + 1 + c * 1024 + p];
  }
  return { images, labels, shape: [32, 32, 3] };
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function fashionDir(): string {
  const dir = option('fashion-dir') ?? process.env.FASHION_MNIST_DIR ?? DEBIAN_FASHION;
  if (!fs.existsSync(path.join(dir, 'train-images-idx3-ubyte.gz'))) {
    throw new Error(`no Fashion-MNIST training files in ${dir}: apt-get install -y dataset-fashion-mnist, or pass --fashion-dir`);
  }
  return dir;
}

/** Conv/pool/dense with ReLU and a softmax head: only layers the engine decomposes. */
function smallCnn(seed: number, input: [number, number, number], filters: [number, number], dense: number): tf.Sequential {
  let s = seed;
  const init = () => tf.initializers.glorotUniform({ seed: s++ });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: input, filters: filters[0], kernelSize: 3, activation: 'relu', kernelInitializer: init(), name: 'conv1' }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tf.layers.conv2d({ filters: filters[1], kernelSize: 3, activation: 'relu', kernelInitializer: init(), name: 'conv2' }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ units: dense, activation: 'relu', kernelInitializer: init(), name: 'fc1' }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(), name: 'predictions' }),
    ],
  });
}

const RECIPES: Recipe[] = [
  {
    name: 'mnist-cnn',
    seed: 1,
    epochs: 3,
    batchSize: 64,
    learningRate: 1e-3,
    data: () => {
      const dir = path.join(SHARED, 'data', 'mnist');
      return { train: idxSplit(dir, 'train'), test: idxSplit(dir, 't10k'), source: `${dir} (train 60k, test 10k)` };
    },
    build: (seed) => smallCnn(seed, [28, 28, 1], [8, 16], 32),
  },
  {
    name: 'fashion-cnn',
    seed: 2,
    epochs: 3,
    batchSize: 64,
    learningRate: 1e-3,
    data: () => {
      const dir = fashionDir();
      return {
        train: idxSplit(dir, 'train'),
        test: idxSplit(path.join(SHARED, 'data', 'fashion-mnist'), 't10k'),
        source: `${dir} (train 60k), shared test 10k`,
      };
    },
    build: (seed) => smallCnn(seed, [28, 28, 1], [8, 16], 32),
  },
  {
    name: 'cifar10-weak',
    seed: 3,
    epochs: 8,
    batchSize: 64,
    learningRate: 1e-3,
    data: () => ({ train: cifarSplit('data_batch_1.bin'), test: cifarSplit('test_batch.bin'), source: 'cifar10-bin data_batch_1 (10k) / test_batch (10k)' }),
    build: (seed) => smallCnn(seed, [32, 32, 3], [16, 32], 64),
  },
];

function tensors(split: Split): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const n = split.labels.length;
  const x = tf.tensor4d(preprocess(split.images, split.shape[2], FIXTURE_PREPROCESSING), [n, ...split.shape]);
  const y = tf.oneHot(tf.tensor1d(split.labels, 'int32'), 10).toFloat() as tf.Tensor2D;
  return { x, y };
}

async function train(r: Recipe): Promise<Record<string, unknown>> {
  const { train: trainSplit, test: testSplit, source } = r.data();
  const model = r.build(r.seed);
  model.compile({ optimizer: tf.train.adam(r.learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const train = tensors(trainSplit);
  const random = rng(r.seed);
  const started = Date.now();
  for (let epoch = 0; epoch < r.epochs; epoch++) {
    // Seeded Fisher-Yates order per epoch, then fit without tfjs's unseeded shuffle.
    const order = Int32Array.from(trainSplit.labels.keys());
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const idx = tf.tensor1d(order, 'int32');
    const x = tf.gather(train.x, idx);
    const y = tf.gather(train.y, idx);
    const h = await model.fit(x, y, { epochs: 1, batchSize: r.batchSize, shuffle: false, verbose: 0 });
    tf.dispose([idx, x, y]);
    console.error(`${r.name} epoch ${epoch + 1}/${r.epochs}: loss ${Number(h.history.loss[0]).toFixed(4)} acc ${Number(h.history.acc[0]).toFixed(4)}`);
  }
  const trainSeconds = (Date.now() - started) / 1000;
  tf.dispose([train.x, train.y]);

  const test = tensors(testSplit);
  const pred = tf.tidy(() => (model.predict(test.x) as tf.Tensor).argMax(-1));
  const predicted = Array.from(await pred.data());
  tf.dispose([pred, test.x, test.y]);
  const correct = predicted.filter((p, i) => p === testSplit.labels[i]).length;

  const dir = path.join(path.resolve(option('out') ?? DEFAULT_OUT), r.name);
  const files = await save(model, dir);
  const params = model.countParams();
  model.dispose();
  return {
    name: r.name,
    source,
    seed: r.seed,
    epochs: r.epochs,
    params,
    trainSeconds,
    testCount: testSplit.labels.length,
    testAccuracy: correct / testSplit.labels.length,
    files,
  };
}

/** model.json + group1-shard1of1.bin, the layout tensorflowjs_converter writes. */
async function save(model: tf.LayersModel, dir: string): Promise<Record<string, number>> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = artifacts!;
  fs.mkdirSync(dir, { recursive: true });
  const shard = 'group1-shard1of1.bin';
  const json = {
    format: 'layers-model',
    generatedBy: a.generatedBy,
    convertedBy: null,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: [shard], weights: a.weightSpecs }],
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, shard), Buffer.from(a.weightData as ArrayBuffer));
  return Object.fromEntries(['model.json', shard].map((f) => [f, fs.statSync(path.join(dir, f)).size]));
}

async function main(): Promise<void> {
  const runtime = await initTfjsRuntime('auto');
  console.error(`TF.js ${runtime.backend} (${runtime.package} ${runtime.version})`);
  const only = option('only')?.split(',');
  for (const r of RECIPES) {
    if (only && !only.includes(r.name)) continue;
    console.log(JSON.stringify(await train(r)));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
