/**
 * POST /models imports real models (all four formats) and refuses unusable ones with a clear 4xx,
 * leaving no row and no blob behind. A worker runs in-process; the request waits for the import.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import * as tf from '@tensorflow/tfjs';
import { KMNIST_DIR, RESNET_DIR, resnetTfjsZip } from '../support/fixtures';
import { snapshot } from '../support/store-audit';
import { modelArtifacts, rawZip, tfjsZip, zipBomb } from '../support/tfjs-zip';
import { appWithWorkers } from '../support/workers';

describe('POST /models with real model files', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });

  it('imports the FSE Keras 2.2.4 HDF5 model', async () => {
    const res = await request(t.app.server)
      .post('/models')
      .field('name', 'kmnist')
      .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
      .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
      .expect(201);
    expect(res.body).toMatchObject({
      name: 'kmnist',
      format: 'h5',
      status: 'ready',
      inputShape: [28, 28, 1],
      numClasses: 10,
      params: 784 * 49 + 49 + 49 * 10 + 10,
      preprocessing: { scale: 1 / 65025 },
      classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    });
    expect(res.body.layers).toEqual([
      expect.objectContaining({ type: 'Flatten', outputShape: [null, 784] }),
      expect.objectContaining({ type: 'Dense', outputShape: [null, 49] }),
      expect.objectContaining({ type: 'Dense', outputShape: [null, 10] }),
    ]);
  });

  it.each([
    ['model.keras', 'keras', () => fs.readFileSync(path.join(RESNET_DIR, 'model.keras'))],
    ['model.h5', 'h5', () => fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))],
    ['tfjs.zip', 'tfjs', () => resnetTfjsZip()],
  ])('imports ResNet-20 from %s', async (file, format, bytes) => {
    const classNames = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
    const res = await request(t.app.server)
      .post('/models')
      .field('classNames', JSON.stringify(classNames))
      .field('preprocessing', JSON.stringify({ scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }))
      .attach('file', bytes(), file)
      .expect(201);
    expect(res.body).toMatchObject({ format, status: 'ready', inputShape: [32, 32, 3], numClasses: 10, params: 273_658, classNames });
    expect(res.body.layers).toHaveLength(73);
  });
});

describe('POST /models refuses unusable files and keeps nothing', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });

  async function expectRefused(bytes: Buffer, name: string, status: number, detail: RegExp, fields: Record<string, string> = {}) {
    const before = await snapshot(t);
    let req = request(t.app.server).post('/models');
    for (const [k, v] of Object.entries(fields)) req = req.field(k, v);
    const res = await req.attach('file', bytes, name);
    expect({ status: res.status, detail: res.body.detail }).toEqual({ status, detail: expect.stringMatching(detail) });
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await snapshot(t)).toEqual(before);
  }

  async function dense(build: (input: tf.SymbolicTensor) => tf.SymbolicTensor, inputShape = [4]): Promise<tf.io.ModelArtifacts> {
    const input = tf.input({ shape: inputShape });
    return modelArtifacts(tf.model({ inputs: input, outputs: build(input) }));
  }

  it('a truncated HDF5 file: 422', async () => {
    const bytes = fs.readFileSync(path.join(KMNIST_DIR, 'kmnist.h5')).subarray(0, 1000);
    await expectRefused(Buffer.from(bytes), 'kmnist.h5', 422, /hdf5|truncated|corrupt/i);
  });

  it('a file that is not HDF5 nor zip: 415', async () => {
    await expectRefused(Buffer.from('GIF89a not a model'), 'model.h5', 415, /not a Keras/);
  });

  it('a zip without model.json: 415 or 422 naming it', async () => {
    const res = rawZip({ 'readme.txt': Buffer.from('hello') });
    const before = await snapshot(t);
    const r = await request(t.app.server).post('/models').attach('file', res, 'x.zip');
    expect([415, 422]).toContain(r.status);
    expect(r.body.detail).toMatch(/model\.json/);
    expect(await snapshot(t)).toEqual(before);
  });

  it('a zip bomb: 422', async () => {
    await expectRefused(zipBomb('model.json', 300 * 1024 * 1024), 'bomb.zip', 422, /ratio|too large|limit|bomb/i);
  });

  it('path traversal and absolute entry names: 422', async () => {
    const a = await dense((x) => tf.layers.dense({ units: 3, activation: 'softmax' }).apply(x) as tf.SymbolicTensor);
    const json = Buffer.from(JSON.stringify({ modelTopology: a.modelTopology, weightsManifest: [{ paths: ['../w.bin'], weights: a.weightSpecs }] }));
    await expectRefused(rawZip({ 'model.json': json, '../w.bin': Buffer.from(a.weightData as ArrayBuffer) }), 'evil.zip', 422, /path|entry|\.\./i);
    await expectRefused(rawZip({ '/etc/model.json': json }), 'abs.zip', 422, /path|entry|absolute/i);
  });

  it('NaN or Inf weights: 422 naming the weight', async () => {
    const a = await dense((x) => tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' }).apply(x) as tf.SymbolicTensor);
    await expectRefused(
      tfjsZip(a, (w) => (w[2] = NaN)),
      'nan.zip',
      422,
      /NaN|finite/i,
    );
    await expectRefused(
      tfjsZip(a, (w) => (w[5] = Infinity)),
      'inf.zip',
      422,
      /Inf|finite/i,
    );
  });

  it('several inputs: 422', async () => {
    const i1 = tf.input({ shape: [4] });
    const i2 = tf.input({ shape: [4] });
    const sum = tf.layers.add().apply([i1, i2]) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(sum) as tf.SymbolicTensor;
    const a = await modelArtifacts(tf.model({ inputs: [i1, i2], outputs: out }));
    await expectRefused(tfjsZip(a), 'two-in.zip', 422, /inputs/);
  });

  it('several outputs: 422', async () => {
    const input = tf.input({ shape: [8, 8, 1] });
    const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    const o1 = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    const o2 = tf.layers.dense({ units: 2, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    const a = await modelArtifacts(tf.model({ inputs: input, outputs: [o1, o2] }));
    await expectRefused(tfjsZip(a), 'two-out.zip', 422, /outputs/);
  });

  it('a non-classifier output: 422', async () => {
    const input = tf.input({ shape: [8, 8, 1] });
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const a = await modelArtifacts(tf.model({ inputs: input, outputs: conv }));
    await expectRefused(tfjsZip(a), 'conv.zip', 422, /not a class vector|classifier/);
    const sig = await dense((x) => tf.layers.dense({ units: 4, activation: 'sigmoid' }).apply(tf.layers.flatten().apply(x)) as tf.SymbolicTensor, [4, 4, 1]);
    await expectRefused(tfjsZip(sig), 'sigmoid.zip', 422, /sigmoid/);
  });

  it('an unsupported layer: 422 naming it', async () => {
    const input = tf.input({ shape: [6, 4] });
    const conv = tf.layers.conv1d({ filters: 2, kernelSize: 3, name: 'my_conv1d' }).apply(input) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(conv) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    const a = await modelArtifacts(tf.model({ inputs: input, outputs: out }));
    await expectRefused(tfjsZip(a), 'conv1d.zip', 422, /my_conv1d \(Conv1D\)/);
  });

  it('a Keras layer TF.js would compute differently (ReLU with a threshold): 422 naming it', async () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const relu = tf.layers.reLU({ name: 'thresholded' }).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(tf.layers.flatten().apply(relu)) as tf.SymbolicTensor;
    const a = await modelArtifacts(tf.model({ inputs: input, outputs: out }));
    // tfjs' ReLU has no threshold: loading it as it is would silently ignore the user's 0.5.
    const layers = (a.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } }).config.layers;
    const target = layers.find((l) => l.config.name === 'thresholded');
    if (!target) throw new Error('no ReLU layer in the topology');
    target.config.threshold = 0.5;
    await expectRefused(tfjsZip(a), 'threshold.zip', 422, /thresholded \(ReLU with threshold 0.5\)/);
  });

  it('classNames that do not match the class count: 422', async () => {
    // Trailing bytes keep it a valid HDF5 file but give it its own content address (the test
    // database is shared by the run, and a blob another row refers to is rightly kept).
    const bytes = Buffer.concat([fs.readFileSync(path.join(KMNIST_DIR, 'kmnist.h5')), Buffer.from(`${Math.random()}`)]);
    await expectRefused(bytes, 'kmnist.h5', 422, /classNames has 2 names/, {
      classNames: JSON.stringify(['a', 'b']),
    });
  });

  it('preprocessing with a mean or std per channel for other channels than the input has: 422', async () => {
    // KMNIST takes 28x28x1: three means cannot apply (one value, or one per channel, can).
    const bytes = Buffer.concat([fs.readFileSync(path.join(KMNIST_DIR, 'kmnist.h5')), Buffer.from(`${Math.random()}`)]);
    await expectRefused(bytes, 'kmnist.h5', 422, /preprocessing\.mean has 3 values, but the model's input has 1 channel/, {
      preprocessing: JSON.stringify({ scale: 1, mean: [0.1, 0.2, 0.3], std: [1, 1, 1] }),
    });
    await expectRefused(bytes, 'kmnist.h5', 422, /preprocessing\.std has 2 values/, {
      preprocessing: JSON.stringify({ scale: 1, std: [1, 2] }),
    });
  });
});
