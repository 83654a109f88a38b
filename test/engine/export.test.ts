/**
 * Module export: a decomposed module becomes a standalone TF.js layers model (built-in layers only,
 * preprocessing and masks folded in, one sigmoid output) that plain `tf.loadLayersModel` loads and
 * that gives the service's P_c = probabilityFromMargin(ModuleRunner.margins) on raw pixels.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_DECOMPOSE_OPTIONS,
  ModelPlan,
  ModuleRunner,
  decompose,
  loadModel,
  moduleHead,
  probabilityFromMargin,
  type DecomposedModule,
  type PreprocessingSpec,
} from '../../src/engine';
import { toTensor } from '../../src/engine/activity';
import { exportModule, type ExportedModule } from '../../src/engine/export';
import { SUPPORTED_LAYERS } from '../../src/engine/layers/supported';
import { parseDataset } from '../../src/store/formats/datasets';
import { parseModelFile } from '../../src/store/formats/models';
import { CIFAR_PREPROCESSING, KMNIST_DIR, RESNET_DIR, cifarRecords } from '../support/fixtures';
import { memorySource } from '../support/sample-source';

require('@tensorflow/tfjs-node');

/** model.json + weights.bin as a file server would hand them back, loaded by plain TF.js. */
async function reload(exported: ExportedModule): Promise<tf.LayersModel> {
  const json = JSON.parse(JSON.stringify(exported.modelJson)) as tf.io.ModelJSON;
  expect(json.weightsManifest).toHaveLength(1);
  expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
  const weights = exported.weights.slice(0);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: weights }));
}

function layerClasses(exported: ExportedModule): string[] {
  const topology = exported.modelJson.modelTopology as {
    model_config?: { config: { layers: { class_name: string }[] } };
    config?: { layers: { class_name: string }[] };
  };
  const config = topology.model_config?.config ?? topology.config;
  return (config?.layers ?? []).map((l) => l.class_name);
}

function weightBytes(exported: ExportedModule): number {
  const bytes: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };
  return exported.modelJson.weightsManifest[0].weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * bytes[w.quantization?.dtype ?? w.dtype], 0);
}

/** The service's P_c on the same raw pixels, in float64 from the float32 margins. */
function serviceProbabilities(
  plan: ModelPlan,
  module: { masks: readonly Uint8Array[]; head: DecomposedModule['head'] },
  pixels: Uint8Array,
  n: number,
  shape: number[],
  spec: PreprocessingSpec,
): number[] {
  const runner = new ModuleRunner(plan, [module], 'post-activation');
  const x = toTensor(plan, pixels, n, shape, spec);
  const margins = runner.margins(x);
  const out = Array.from(margins.dataSync(), probabilityFromMargin);
  margins.dispose();
  x.dispose();
  runner.dispose();
  return out;
}

function exportedProbabilities(model: tf.LayersModel, pixels: Uint8Array, n: number, shape: number[]): number[] {
  const x = tf.tensor(Float32Array.from(pixels), [n, ...shape], 'float32');
  const p = model.predict(x) as tf.Tensor;
  expect(p.shape).toEqual([n, 1]);
  const out = Array.from(p.dataSync());
  p.dispose();
  x.dispose();
  return out;
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

describe('module export of the real ResNet-20 (CIFAR-10), class 3', () => {
  const CLASS = 3;
  let model: tf.LayersModel;
  let plan: ModelPlan;
  let mod: DecomposedModule;

  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    model = await loadModel(await parseModelFile(fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))));
    plan = new ModelPlan(model);
    const train = cifarRecords('data_batch_1.bin', 400);
    const opts = { ...DEFAULT_DECOMPOSE_OPTIONS, samplesPerClass: 20, batchSize: 64, classes: [CLASS], preprocessing: CIFAR_PREPROCESSING };
    const result = await decompose(model, memorySource(train.images, [32, 32, 3]), train.labels, opts);
    mod = result.modules[0];
  });
  afterAll(() => model.dispose());

  it('reloads with plain tf.loadLayersModel and gives the service P_c within 1e-5 on 100 test images', async () => {
    const maskedPoints = mod.masks.filter((m) => m.some((v) => v === 0)).length;
    const maskedUnits = mod.masks.reduce((s, m) => s + m.filter((v) => v === 0).length, 0);
    expect(maskedPoints).toBeGreaterThan(0);

    const test = cifarRecords('test_batch.bin', 100);
    const original = (): number[] =>
      tf.tidy(() =>
        Array.from((model.predict(toTensor(plan, test.images.subarray(0, 3072 * 4), 4, [32, 32, 3], CIFAR_PREPROCESSING)) as tf.Tensor).dataSync()),
      );
    const originalBefore = original();
    const layersBefore = model.layers.map((l) => l.inboundNodes.length);
    const tensorsBefore = tf.memory().numTensors;

    const exported = await exportModule(plan, mod, CIFAR_PREPROCESSING, { classIndex: CLASS, className: 'cat' });
    // The export frees everything it made and leaves the original model's graph alone.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(model.layers.map((l) => l.inboundNodes.length)).toEqual(layersBefore);

    const classes = layerClasses(exported);
    expect(classes.every((c) => [...SUPPORTED_LAYERS, 'Multiply'].includes(c))).toBe(true);
    expect(classes.filter((c) => c === 'Multiply')).toHaveLength(maskedPoints);
    expect(classes).toContain('DepthwiseConv2D');
    expect(exported.modelJson).toMatchObject({
      format: 'layers-model',
      convertedBy: 'cnn-modules',
      userDefinedMetadata: { preprocessing: CIFAR_PREPROCESSING, classIndex: CLASS, className: 'cat' },
    });
    const specs = exported.modelJson.weightsManifest[0].weights;
    expect(specs.filter((w) => w.quantization?.dtype === 'uint8')).toHaveLength(maskedPoints);
    expect(exported.weights.byteLength).toBe(weightBytes(exported));

    const loaded = await reload(exported);
    const afterLoad = tf.memory().numTensors;
    const exportedP = exportedProbabilities(loaded, test.images, 100, [32, 32, 3]);
    const serviceP = serviceProbabilities(plan, mod, test.images, 100, [32, 32, 3], CIFAR_PREPROCESSING);
    expect(tf.memory().numTensors).toBe(afterLoad);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    const diff = maxDiff(exportedP, serviceP);
    const jsonBytes = Buffer.byteLength(JSON.stringify(exported.modelJson));
    console.log(
      `ResNet-20 class ${CLASS}: ${maskedUnits} units masked at ${maskedPoints}/${plan.observationPoints.length} points; ` +
        `max |P diff| on 100 test images ${diff.toExponential(2)}; model.json ${jsonBytes} B, weights.bin ${exported.weights.byteLength} B ` +
        `(model params ${model.countParams()} = ${model.countParams() * 4} B float32); ` +
        `P > 0.5 on ${exportedP.filter((p) => p > 0.5).length}, label ${CLASS} on ${Array.from(test.labels).filter((y) => y === CLASS).length}`,
    );
    expect(diff).toBeLessThan(1e-5);
    // The export is not trivially constant: it separates the inputs.
    expect(Math.max(...exportedP) - Math.min(...exportedP)).toBeGreaterThan(0.5);

    // The original model still computes what it did.
    expect(original()).toEqual(originalBefore);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('refuses masks that do not fit the plan', async () => {
    const tensors = tf.memory().numTensors;
    await expect(exportModule(plan, { masks: mod.masks.slice(1), head: mod.head }, CIFAR_PREPROCESSING)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    const short = mod.masks.map((m, i) => (i === 2 ? m.subarray(1) : m));
    await expect(exportModule(plan, { masks: short, head: mod.head }, CIFAR_PREPROCESSING)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

describe('module export of the FSE KMNIST-1 dense model', () => {
  const SPEC: PreprocessingSpec = { scale: 1 / 65025 };

  it('Rescaling + masked Dense(49, relu) + sigmoid head gives the service P_c within 1e-5 on 100 test images', async () => {
    await tf.setBackend('tensorflow');
    const model = await loadModel(await parseModelFile(fs.readFileSync(path.join(KMNIST_DIR, 'kmnist.h5'))));
    const ds = await parseDataset([
      { name: 'kmnist-test-imgs.npz', bytes: fs.readFileSync(path.join(KMNIST_DIR, 'kmnist-test-imgs.npz')) },
      { name: 'kmnist-test-labels.npz', bytes: fs.readFileSync(path.join(KMNIST_DIR, 'kmnist-test-labels.npz')) },
    ]);
    const images = ds.images as Uint8Array;
    // Masks from the first half of the test set; evaluation on 100 images of the second half.
    const half = 5000;
    const opts = { ...DEFAULT_DECOMPOSE_OPTIONS, samplesPerClass: 20, batchSize: 64, classes: [0], preprocessing: SPEC };
    const result = await decompose(model, memorySource(images.subarray(0, half * 784), [28, 28, 1]), ds.labels.subarray(0, half), opts);
    const mod = result.modules[0];
    const masked = mod.masks[0].filter((v) => v === 0).length;
    expect(masked).toBeGreaterThan(0);

    const plan = new ModelPlan(model);
    const tensors = tf.memory().numTensors;
    const exported = await exportModule(plan, mod, SPEC);
    expect(tf.memory().numTensors).toBe(tensors);
    const classes = layerClasses(exported);
    expect(classes).toContain('Rescaling');
    expect(classes).toContain('Multiply');
    expect(classes).not.toContain('DepthwiseConv2D');

    const pixels = images.subarray(half * 784, (half + 100) * 784);
    const loaded = await reload(exported);
    const exportedP = exportedProbabilities(loaded, pixels, 100, [28, 28, 1]);
    loaded.dispose();
    const serviceP = serviceProbabilities(plan, mod, pixels, 100, [28, 28, 1], SPEC);
    expect(tf.memory().numTensors).toBe(tensors);
    const diff = maxDiff(exportedP, serviceP);
    // Plain TF.js (its CPU backend, no tfjs-node) loads and runs the same artifacts.
    const quiet = jest.spyOn(console, 'warn').mockImplementation(() => undefined); // "install the node backend"
    let cpuP: number[];
    try {
      await tf.setBackend('cpu');
      const onCpu = await reload(exported);
      cpuP = exportedProbabilities(onCpu, pixels, 100, [28, 28, 1]);
      onCpu.dispose();
    } finally {
      await tf.setBackend('tensorflow');
      quiet.mockRestore();
    }
    const cpuDiff = maxDiff(cpuP, serviceP);
    console.log(
      `KMNIST-1 class 0: ${masked}/49 hidden units masked; max |P diff| on 100 test images ${diff.toExponential(2)} (tfjs-node), ` +
        `${cpuDiff.toExponential(2)} (plain tfjs cpu backend); weights.bin ${exported.weights.byteLength} B`,
    );
    expect(diff).toBeLessThan(1e-5);
    expect(cpuDiff).toBeLessThan(1e-5);
    model.dispose();
  });
});

describe('module export of a hand-built model with an [N, H, W] input and no masked unit', () => {
  it('takes NHWC pixels, drops the channel axis after preprocessing and adds no mask layer', async () => {
    await tf.setBackend('tensorflow');
    const model = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [6, 5] }),
        tf.layers.dense({ units: 7, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    const plan = new ModelPlan(model);
    const spec: PreprocessingSpec = { scale: 1 / 255, mean: [0.5], std: [0.25] };
    const mod = { masks: plan.observationPoints.map((p) => new Uint8Array(p.units).fill(1)), head: moduleHead(plan.headWeights(), 2) };
    const tensors = tf.memory().numTensors;
    const exported = await exportModule(plan, mod, spec);
    expect(tf.memory().numTensors).toBe(tensors);
    const classes = layerClasses(exported);
    expect(classes).not.toContain('Multiply');
    expect(classes).toContain('Reshape');
    const pixels = Uint8Array.from({ length: 20 * 30 }, (_, i) => (i * 53 + 7) % 256);
    const loaded = await reload(exported);
    const exportedP = exportedProbabilities(loaded, pixels, 20, [6, 5, 1]);
    loaded.dispose();
    const serviceP = serviceProbabilities(plan, mod, pixels, 20, [6, 5, 1], spec);
    expect(maxDiff(exportedP, serviceP)).toBeLessThan(1e-6);
    model.dispose();
    expect(tf.memory().numTensors).toBeLessThan(tensors);
  });
});
