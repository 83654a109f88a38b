/**
 * The engine on the real fixtures: every format of ResNet-20 gives golden.json's softmax, the
 * formats agree exactly, the FSE KMNIST model scores its published accuracy, and the tfjs-node and
 * wasm backends agree.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeModel, evaluate, loadModel, predictScores, type LabelledBatch } from '../../src/engine';
import { parseModelFile } from '../../src/store/formats/models';
import { CIFAR_PREPROCESSING, KMNIST_DIR, RESNET_DIR, cifarRecords, golden, resnetTfjsZip } from '../support/fixtures';
import { parseDataset } from '../../src/store/formats/datasets';

const N = 64;

async function useBackend(name: 'tensorflow' | 'wasm'): Promise<boolean> {
  try {
    if (name === 'tensorflow') require('@tensorflow/tfjs-node');
    else require('@tensorflow/tfjs-backend-wasm');
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function resnetScores(bytes: Buffer): Promise<Float32Array> {
  const model = await loadModel(await parseModelFile(bytes));
  try {
    const { images, labels } = cifarRecords('test_batch.bin', N);
    return predictScores(model, { images, labels }, { imageShape: [32, 32, 3], preprocessing: CIFAR_PREPROCESSING });
  } finally {
    model.dispose();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmaxRows(scores: Float32Array, k: number): number[] {
  const out = [];
  for (let i = 0; i < scores.length / k; i++) {
    const row = Array.from(scores.subarray(i * k, (i + 1) * k));
    out.push(row.indexOf(Math.max(...row)));
  }
  return out;
}

describe('ResNet-20 (CIFAR-10) in every shipped format', () => {
  const g = golden();
  const expected = new Float32Array(g.softmax_first_n.slice(0, N).flat());
  const formats: Record<string, () => Buffer> = {
    keras: () => fs.readFileSync(path.join(RESNET_DIR, 'model.keras')),
    h5: () => fs.readFileSync(path.join(RESNET_DIR, 'model.h5')),
    tfjs: () => resnetTfjsZip(),
  };
  const scores: Record<string, Float32Array> = {};

  beforeAll(async () => {
    expect(await useBackend('tensorflow')).toBe(true);
  });

  it.each(Object.keys(formats))('%s matches golden.json softmax within 1e-4', async (format) => {
    scores[format] = await resnetScores(formats[format]());
    expect(maxAbsDiff(scores[format], expected)).toBeLessThan(1e-4);
    expect(argmaxRows(scores[format], 10)).toEqual(g.pred_first_n.slice(0, N));
  });

  it('gives identical predictions across formats', () => {
    expect(Object.keys(scores)).toHaveLength(3);
    expect(maxAbsDiff(scores.keras, scores.h5)).toBe(0);
    expect(maxAbsDiff(scores.keras, scores.tfjs)).toBe(0);
  });

  it('describes the model as its README does', async () => {
    const model = await loadModel(await parseModelFile(formats.keras()));
    const s = describeModel(model);
    model.dispose();
    expect(s).toMatchObject({ inputShape: [32, 32, 3], numClasses: 10, params: 273_658, outputActivation: 'softmax' });
    expect(s.layers).toHaveLength(73);
  });

  it('gives the same softmax on tfjs-node and wasm within 1e-4', async () => {
    const bytes = formats.h5();
    expect(await useBackend('tensorflow')).toBe(true);
    const onNode = await resnetScores(bytes);
    expect(await useBackend('wasm')).toBe(true);
    try {
      const onWasm = await resnetScores(bytes);
      expect(maxAbsDiff(onNode, onWasm)).toBeLessThan(1e-4);
    } finally {
      await useBackend('tensorflow');
    }
  });

  it('leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    await resnetScores(formats.tfjs());
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('FSE KMNIST-1 (Keras 2.2.4 HDF5)', () => {
  it('scores top-1 0.7602 (7602/10000) and top-5 0.9672 with pixel/65025', async () => {
    expect(await useBackend('tensorflow')).toBe(true);
    const model = await loadModel(await parseModelFile(fs.readFileSync(path.join(KMNIST_DIR, 'kmnist.h5'))));
    const ds = await parseDataset([
      { name: 'kmnist-test-imgs.npz', bytes: fs.readFileSync(path.join(KMNIST_DIR, 'kmnist-test-imgs.npz')) },
      { name: 'kmnist-test-labels.npz', bytes: fs.readFileSync(path.join(KMNIST_DIR, 'kmnist-test-labels.npz')) },
    ]);
    async function* batches(): AsyncGenerator<LabelledBatch> {
      const per = 28 * 28;
      for (let s = 0; s < ds.count; s += 1000) {
        yield { images: ds.images.subarray(s * per, (s + 1000) * per), labels: ds.labels.subarray(s, s + 1000) };
      }
    }
    const r = await evaluate(model, batches(), { imageShape: [28, 28, 1], preprocessing: { scale: 1 / 65025 } });
    model.dispose();
    expect(r.count).toBe(10_000);
    expect(Math.round(r.top1 * 10_000)).toBe(7602);
    expect(Math.round(r.top5 * 10_000)).toBe(9672);
    expect(r.confusion.flat().reduce((a, b) => a + b, 0)).toBe(10_000);
  });
});
