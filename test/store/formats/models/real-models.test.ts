/**
 * The parser on the real fixtures: ResNet-20 as .keras, Keras 3 .h5 and a TF.js zip, and the
 * FSE'20 KMNIST Keras 2.2.4 .h5. Each parses, loads in TF.js with strict weight matching, and
 * computes what the original model computes.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseModelFile, type ParsedModel } from '../../../../src/store/formats/models';
import { KMNIST_DIR, cifarTestImages, loadParsed, readFixture, readNpz, resnetGolden, resnetTfjsEntries, useFastestBackend } from './fixtures';
import { buildZip } from '../../../support/zip-builder';

const N_IMAGES = 16;
const RESNET_PARAMS = 273_658;
// 784*49 + 49 + 49*10 + 10: Flatten -> Dense(49) -> Dense(10).
const KMNIST_PARAMS = 38_965;

async function predict(parsed: ParsedModel, x: tf.Tensor): Promise<{ probs: Float32Array; params: number }> {
  const model = await loadParsed(parsed);
  try {
    const y = model.predict(x) as tf.Tensor;
    const probs = (await y.data()) as Float32Array;
    y.dispose();
    return { probs, params: model.countParams() };
  } finally {
    model.dispose();
  }
}

describe('parseModelFile on the real fixtures', () => {
  let images: tf.Tensor4D;
  const probs: Record<string, Float32Array> = {};

  beforeAll(async () => {
    await useFastestBackend();
    images = cifarTestImages(N_IMAGES);
  });
  afterAll(() => images.dispose());

  const resnetFiles: [string, string, () => Buffer][] = [
    ['keras', 'Keras 3 .keras', () => readFixture('resnet20-cifar10', 'model.keras')],
    ['h5', 'Keras 3 .h5', () => readFixture('resnet20-cifar10', 'model.h5')],
    ['tfjs', 'TF.js zip (model.json at the root)', () => buildZip(resnetTfjsEntries())],
    ['tfjs', 'TF.js zip (model.json in a folder)', () => buildZip(resnetTfjsEntries('resnet20/'))],
  ];

  it.each(resnetFiles)('ResNet-20 %s (%s) gives golden.json softmax within 1e-4', async (format, label, read) => {
    const parsed = await parseModelFile(read());
    expect(parsed.format).toBe(format);
    expect(parsed.kerasVersion).toBe('3.15.1');
    expect(parsed.modelTopology.class_name).toBe('Functional');
    expect(parsed.weightSpecs).toHaveLength(99);
    expect(parsed.weightSpecs.slice(0, 3).map((s) => s.name)).toEqual(['conv1/kernel', 'bn1/gamma', 'bn1/beta']);
    expect(parsed.weightData.byteLength).toBe(parsed.weightSpecs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0));

    const out = await predict(parsed, images);
    expect(out.params).toBe(RESNET_PARAMS);
    const golden = resnetGolden().softmax_first_n;
    let maxDiff = 0;
    for (let i = 0; i < N_IMAGES; i++) for (let c = 0; c < 10; c++) maxDiff = Math.max(maxDiff, Math.abs(out.probs[i * 10 + c]! - golden[i]![c]!));
    console.log(`ResNet-20 ${label}: max |softmax - golden| over ${N_IMAGES} images = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);
    probs[label] = out.probs;
  });

  it('all ResNet-20 formats give identical predictions', () => {
    const labels = Object.keys(probs);
    expect(labels).toHaveLength(resnetFiles.length);
    for (const l of labels.slice(1)) expect(Array.from(probs[l]!)).toEqual(Array.from(probs[labels[0]!]!));
  });

  it('all ResNet-20 formats yield the same weights under the same names', async () => {
    const [keras, h5] = await Promise.all([
      parseModelFile(readFixture('resnet20-cifar10', 'model.keras')),
      parseModelFile(readFixture('resnet20-cifar10', 'model.h5')),
    ]);
    const tfjs = await parseModelFile(buildZip(resnetTfjsEntries()));
    for (const other of [h5, tfjs]) {
      expect(other.weightSpecs).toEqual(keras.weightSpecs);
      expect(Buffer.from(other.weightData).equals(Buffer.from(keras.weightData))).toBe(true);
    }
  });

  it('FSE KMNIST-1 (Keras 2.2.4 .h5) parses, has 38,965 params and its known accuracy', async () => {
    const parsed = await parseModelFile(readFixture('fse-kmnist1', 'kmnist.h5'));
    expect(parsed).toMatchObject({ format: 'h5', kerasVersion: '2.2.4' });
    expect(parsed.modelTopology.class_name).toBe('Sequential');
    expect(parsed.weightSpecs.map((s) => `${s.name}:${s.shape.join('x')}`)).toEqual(['H/kernel:784x49', 'H/bias:49', 'output/kernel:49x10', 'output/bias:10']);

    const imgs = await readNpz(path.join(KMNIST_DIR, 'kmnist-test-imgs.npz'));
    const labels = (await readNpz(path.join(KMNIST_DIR, 'kmnist-test-labels.npz'))).data as Uint8Array;
    expect(imgs.shape).toEqual([10000, 28, 28]);
    // The authors' loader divides by 255 twice (see the fixture README).
    const x = tf.tidy(() =>
      tf
        .tensor4d(Float32Array.from(imgs.data as Uint8Array), [10000, 28, 28, 1])
        .div(255)
        .div(255),
    );
    const out = await predict(parsed, x);
    x.dispose();
    expect(out.params).toBe(KMNIST_PARAMS);
    const correct = (n: number) => {
      let c = 0;
      for (let i = 0; i < n; i++) {
        const row = out.probs.subarray(i * 10, i * 10 + 10);
        if (row.indexOf(Math.max(...row)) === labels[i]) c++;
      }
      return c;
    };
    console.log(`KMNIST-1: ${correct(1000)}/1000 correct on the first 1000 test images, ${correct(10000)}/10000 overall`);
    expect(correct(1000)).toBe(754);
    expect(correct(10000)).toBe(7602); // the paper's 76.02 %
  });
});
