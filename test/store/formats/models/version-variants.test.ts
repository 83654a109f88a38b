/**
 * Files whose Keras version writes a model differently from what tfjs reads (issue 13):
 * - Keras 3 `.h5` names a DepthwiseConv2D's kernel `kernel` (tfjs: `depthwise_kernel`); the file
 *   is built by scripts/fixtures/keras3-depthwise.py with its golden outputs;
 * - Keras <= 2.1 (and tensorflowjs_converter on such models) writes a Sequential's config as the
 *   bare list of its layers; built here from a TF.js model saved by tfjs itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { parseModelFile } from '../../../../src/store/formats/models';
import { TRAINED_DIR } from '../../../support/fixtures';
import { buildZip } from '../../../support/zip-builder';
import { loadParsed } from './fixtures';

const KERAS_FORMATS = path.resolve(__dirname, '../../../fixtures/keras-formats');

interface Golden {
  inputShape: [number, number, number, number];
  probs: number[][];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('a Keras 3 model with a DepthwiseConv2D input normalisation', () => {
  const golden = JSON.parse(fs.readFileSync(path.join(KERAS_FORMATS, 'depthwise-norm.golden.json'), 'utf8')) as Golden;
  const [n, h, w, c] = golden.inputShape;
  const x = () =>
    tf.tensor4d(
      Float32Array.from({ length: n * h * w * c }, (_, i) => (i * 37) % 256),
      golden.inputShape,
    );

  it.each(['depthwise-norm.h5', 'depthwise-norm.keras'])('%s loads and gives the golden softmax', async (file) => {
    const parsed = await parseModelFile(fs.readFileSync(path.join(KERAS_FORMATS, file)));
    expect(parsed.weightSpecs.map((s) => s.name)).toContain('normalize/depthwise_kernel');
    const model = await loadParsed(parsed);
    const input = x();
    const probs = (model.predict(input) as tf.Tensor).dataSync();
    input.dispose();
    model.dispose();
    const diff = maxAbsDiff(probs, golden.probs.flat());
    console.log(`${file}: max |softmax - golden| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('.h5 and .keras hold the same weights under the same names', async () => {
    const [a, b] = await Promise.all(['depthwise-norm.h5', 'depthwise-norm.keras'].map((f) => parseModelFile(fs.readFileSync(path.join(KERAS_FORMATS, f)))));
    expect(a.weightSpecs).toEqual(b.weightSpecs);
    expect(Buffer.from(a.weightData as ArrayBuffer).equals(Buffer.from(b.weightData as ArrayBuffer))).toBe(true);
  });
});

describe('a TF.js model whose Sequential config is the Keras <= 2.1 list of layers', () => {
  const dir = path.join(TRAINED_DIR, 'mnist-cnn');
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as {
    modelTopology: { class_name: string; config: { layers: unknown[] } };
    weightsManifest: unknown;
  };
  const shard = fs.readFileSync(path.join(dir, 'group1-shard1of1.bin'));
  // As tensorflowjs_converter wrote a Keras 2.1 model: model_config holds the list, no format fields.
  const legacy = {
    modelTopology: {
      keras_version: '2.1.6',
      backend: 'tensorflow',
      model_config: { class_name: 'Sequential', config: modelJson.modelTopology.config.layers },
    },
    weightsManifest: modelJson.weightsManifest,
  };
  const zip = (json: object) =>
    buildZip([
      { name: 'model.json', data: Buffer.from(JSON.stringify(json)) },
      { name: 'group1-shard1of1.bin', data: shard },
    ]);

  it('loads and predicts exactly what the model.save() original does', async () => {
    expect(modelJson.modelTopology.class_name).toBe('Sequential');
    const [parsedLegacy, parsedOriginal] = await Promise.all([parseModelFile(zip(legacy)), parseModelFile(zip(modelJson))]);
    const [a, b] = await Promise.all([loadParsed(parsedLegacy), loadParsed(parsedOriginal)]);
    const input = tf.tensor4d(
      Float32Array.from({ length: 4 * 28 * 28 }, (_, i) => ((i * 37) % 256) / 255),
      [4, 28, 28, 1],
    );
    const pa = (a.predict(input) as tf.Tensor).dataSync();
    const pb = (b.predict(input) as tf.Tensor).dataSync();
    expect(maxAbsDiff(pa, pb)).toBe(0);
    // tfjs' own loader takes the list form as it is: the translation agrees with it.
    const own = await tf.models.modelFromJSON({ modelTopology: legacy.modelTopology as never });
    expect(own.layers.map((l) => l.getClassName())).toEqual(a.layers.map((l) => l.getClassName()));
    for (const m of [a, b, own]) m.dispose();
    input.dispose();
  });
});
