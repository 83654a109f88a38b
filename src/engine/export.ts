/**
 * Exporting one module (ALGORITHM.md sections 3-5) as a standalone TF.js layers model that plain
 * `tf.loadLayersModel` loads: built-in layers only, no custom layer, no service code at run time.
 *
 * The exported model maps raw pixels [N, H, W, C] (0..255 as float32) to P_c(x), shape [N, 1]:
 *  1. preprocessing folded into the first layer: x = pixel * (scale / std[c]) - mean[c] / std[c]
 *     (`Rescaling` when one factor serves every channel, else a 1x1 `DepthwiseConv2D`);
 *  2. the model's layers up to the head's input, rebuilt from their configs (same names, the
 *     original weights) so the original model's graph and weights are never touched;
 *  3. post-activation masking: every ReLU output with a masked unit is multiplied by its mask,
 *     an input-independent constant made of built-in layers:
 *       GlobalAveragePooling2D(pixels) -> Dense(1, kernel 0, bias 1)  = exactly 1 for finite pixels
 *       -> Dense(units, kernel = mask, no bias) -> Reshape(shape)    = exactly the mask
 *       -> Multiply([reluOut, mask]);
 *     the mask kernels are written uint8-quantized (scale 1, min 0: exact) to keep the file small;
 *  4. the 2-unit head as one sigmoid unit: P_c = softmax([z_c, z_uc])[0] = sigmoid(d . f + e).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';
import type { ModelPlan } from './graph';
import { marginWeights, type ModuleHead } from './head';
import { cloneLayer } from './layer-clone';
import { preprocessingProblem, type PreprocessingSpec } from './preprocess';
import { encodeWeights } from './weights';

type Layer = tf.layers.Layer;
type SymbolicTensor = tf.SymbolicTensor;

export interface ExportableModule {
  /** Per observation point, per unit: 1 kept, 0 masked. */
  readonly masks: readonly Uint8Array[];
  readonly head: ModuleHead;
}

export interface ExportedModule {
  /** The model.json content (TF.js `layers-model` format); its weights file is `weights.bin`. */
  readonly modelJson: ExportedModelJson;
  /** The content of `weights.bin`. */
  readonly weights: ArrayBuffer;
}

export interface ExportedModelJson {
  readonly format: 'layers-model';
  readonly generatedBy: string;
  readonly convertedBy: 'cnn-modules';
  readonly modelTopology: object;
  readonly weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  readonly userDefinedMetadata: Record<string, unknown>;
}

export const EXPORT_WEIGHTS_FILE = 'weights.bin';

const PREFIX = 'cnn_module';

/**
 * Builds the module as a standalone TF.js layers model and serializes it.
 * @param plan the model's plan (its model, layers and weights are left untouched)
 * @param module the module's masks (post-activation) and 2-unit head
 * @param preprocessing the model's input preprocessing, folded into the exported model
 * @param meta extra entries for `userDefinedMetadata` (e.g. class index and name)
 * @returns model.json content and the weights.bin bytes; every temporary tensor is freed
 * @throws EngineError SHAPE_MISMATCH when the masks or head do not fit the plan
 */
export async function exportModule(
  plan: ModelPlan,
  module: ExportableModule,
  preprocessing: PreprocessingSpec,
  meta?: Record<string, unknown>,
): Promise<ExportedModule> {
  checkModule(plan, module);
  const { model, maskWeights } = buildModel(plan, module, preprocessing);
  try {
    // What `model.save` writes, encoded here: tfjs-core's encodeWeights type-checks the tensor data
    // with `instanceof`, which fails for tfjs-node data under a foreign realm (jest's sandbox).
    const { specs, data } = encodeWeights(model, maskWeights);
    return {
      modelJson: {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: 'cnn-modules',
        modelTopology: model.toJSON(null, false) as object,
        weightsManifest: [{ paths: [EXPORT_WEIGHTS_FILE], weights: specs }],
        userDefinedMetadata: { preprocessing: { ...preprocessing }, ...meta },
      },
      weights: data,
    };
  } finally {
    model.dispose();
  }
}

function checkModule(plan: ModelPlan, module: ExportableModule): void {
  const points = plan.observationPoints;
  if (module.masks.length !== points.length) {
    throw new EngineError('SHAPE_MISMATCH', `the module has ${module.masks.length} masks for ${points.length} observation points`);
  }
  points.forEach((p, i) => {
    if (module.masks[i].length !== p.units) {
      throw new EngineError('SHAPE_MISMATCH', `mask ${i} (${p.layer}) has ${module.masks[i].length} units, the point has ${p.units}`);
    }
  });
  const features = plan.shapes.get(plan.featuresKey) ?? [];
  if (features.length !== 1) {
    throw new EngineError('SHAPE_MISMATCH', `the head's input has shape ${JSON.stringify(features)}; export needs flat features`);
  }
  if (module.head.kernel.length !== features[0] * 2 || module.head.bias.length !== 2) {
    throw new EngineError('SHAPE_MISMATCH', `the module head has ${module.head.kernel.length / 2} features, the model ${features[0]}`);
  }
}

/** Names of the exported model's layers: the plan's own, plus fresh ones that collide with none. */
class Names {
  private readonly used = new Set<string>();
  constructor(plan: ModelPlan) {
    for (const step of plan.steps) this.used.add(step.layer.name);
  }
  fresh(base: string): string {
    let name = `${PREFIX}_${base}`;
    for (let k = 1; this.used.has(name); k++) name = `${PREFIX}_${base}_${k}`;
    this.used.add(name);
    return name;
  }
}

/**
 * Weights the exported layers are given once the model is built. `owned` tensors are ours (freed
 * after setWeights, which shares their data with the layer's variable); the others are the
 * original model's own weights and are never freed here.
 */
class PendingWeights {
  readonly list: { layer: Layer; values: tf.Tensor[]; owned: boolean }[] = [];
  own(layer: Layer, ...values: tf.Tensor[]): void {
    this.list.push({ layer, values, owned: true });
  }
  borrow(layer: Layer, values: tf.Tensor[]): void {
    this.list.push({ layer, values, owned: false });
  }
  release(): void {
    for (const { values, owned } of this.list) if (owned) values.forEach((t) => t.dispose());
    this.list.length = 0;
  }
}

function buildModel(plan: ModelPlan, module: ExportableModule, spec: PreprocessingSpec): { model: tf.LayersModel; maskWeights: Set<string> } {
  const names = new Names(plan);
  const inShape = plan.shapes.get(plan.inputKey) as number[];
  if (inShape.some((d) => d === null)) throw new EngineError('INVALID_MODEL', `the model input ${JSON.stringify(inShape)} has an unknown dimension`);
  // The exported model always takes NHWC pixels; a [N, H, W] model gets its channel axis dropped after preprocessing.
  const pixelShape = inShape.length === 2 ? [...inShape, 1] : inShape;
  if (pixelShape.length !== 3) throw new EngineError('INVALID_MODEL', `the model input ${JSON.stringify(inShape)} is not an image`);
  const channels = pixelShape[2];

  const created: Layer[] = [];
  const pending = new PendingWeights();
  const maskWeights = new Set<string>();
  const use = <T extends Layer>(layer: T): T => {
    created.push(layer);
    return layer;
  };
  try {
    const pixels = tf.input({ shape: pixelShape, dtype: 'float32', name: names.fresh('pixels') });

    // 1. Preprocessing: per channel x = pixel * k[c] + b[c], k = scale / std, b = -mean / std (float64, then float32).
    const problem = preprocessingProblem(spec, channels);
    if (problem) throw new EngineError('SHAPE_MISMATCH', problem);
    const mean = perChannel(spec.mean, channels, 0);
    const std = perChannel(spec.std, channels, 1);
    const k = std.map((s) => spec.scale / s);
    const b = mean.map((m, c) => -m / std[c]);
    let x: SymbolicTensor;
    if (k.every((v) => Math.fround(v) === Math.fround(k[0])) && b.every((v) => Math.fround(v) === Math.fround(b[0]))) {
      x = use(tf.layers.rescaling({ scale: k[0], offset: b[0], name: names.fresh('preprocess') })).apply(pixels) as SymbolicTensor;
    } else {
      const dw = use(tf.layers.depthwiseConv2d({ kernelSize: 1, depthMultiplier: 1, useBias: true, name: names.fresh('preprocess') }));
      x = dw.apply(pixels) as SymbolicTensor;
      pending.own(dw, tf.tensor4d(Float32Array.from(k), [1, 1, channels, 1]), tf.tensor1d(Float32Array.from(b)));
    }
    if (inShape.length === 2) x = use(tf.layers.reshape({ targetShape: inShape, name: names.fresh('drop_channel') })).apply(x) as SymbolicTensor;

    // 2 + 3. The model's layers in plan order, masks multiplied into the observed ReLU outputs.
    const values = new Map<string, SymbolicTensor>([[plan.inputKey, x]]);
    let one: SymbolicTensor | undefined;
    const constantOne = (): SymbolicTensor => {
      if (one) return one;
      const gap = use(tf.layers.globalAveragePooling2d({ name: names.fresh('const_pool') })).apply(pixels) as SymbolicTensor;
      const dense = use(tf.layers.dense({ units: 1, useBias: true, name: names.fresh('const_one') }));
      one = dense.apply(gap) as SymbolicTensor;
      pending.own(dense, tf.zeros([channels, 1]), tf.ones([1]));
      return one;
    };
    for (const step of plan.steps) {
      const args = step.inputs.map((key) => {
        const v = values.get(key);
        if (!v) throw new EngineError('INVALID_MODEL', `layer ${step.layer.name} consumes ${key}, which the plan has not produced`);
        return v;
      });
      const clone = use(cloneLayer(step.layer));
      let out = clone.apply(args.length === 1 ? args[0] : args) as SymbolicTensor;
      pending.borrow(clone, step.layer.getWeights());
      if (step.observation !== undefined) {
        const point = plan.observationPoints[step.observation];
        const mask = module.masks[step.observation];
        if (!mask.every((v) => v === 1)) {
          const base = `mask_${step.observation}`;
          const dense = use(tf.layers.dense({ units: point.units, useBias: false, name: names.fresh(base) }));
          let m = dense.apply(constantOne()) as SymbolicTensor;
          pending.own(dense, tf.tensor2d(Float32Array.from(mask), [1, point.units]));
          maskWeights.add(dense.name);
          if (point.shape.length > 1)
            m = use(tf.layers.reshape({ targetShape: [...point.shape], name: names.fresh(`${base}_reshape`) })).apply(m) as SymbolicTensor;
          out = use(tf.layers.multiply({ name: names.fresh(`${base}_apply`) })).apply([out, m]) as SymbolicTensor;
        }
      }
      values.set(step.output, out);
    }

    // 4. The head: P_c = sigmoid(d . f + e).
    const { d, e } = marginWeights(module.head);
    const head = use(tf.layers.dense({ units: 1, activation: 'sigmoid', useBias: true, name: names.fresh('probability') }));
    const probability = head.apply(values.get(plan.featuresKey) as SymbolicTensor) as SymbolicTensor;
    pending.own(head, tf.tensor2d(d, [d.length, 1]), tf.tensor1d([e]));

    const model = tf.model({ inputs: pixels, outputs: probability, name: names.fresh('export') });
    // From here the model owns every created layer; setWeights shares the original data (no copy, no mutation).
    created.length = 0;
    try {
      for (const { layer, values: w } of pending.list) layer.setWeights(w);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return { model, maskWeights };
  } catch (err) {
    for (const layer of created) {
      try {
        if (layer.built) layer.dispose();
      } catch {
        // a layer that never got weights has nothing to free
      }
    }
    throw err;
  } finally {
    pending.release();
  }
}

function perChannel(values: readonly number[] | undefined, channels: number, fallback: number): number[] {
  if (!values || values.length === 0) return new Array<number>(channels).fill(fallback);
  return Array.from({ length: channels }, (_, c) => (values.length === 1 ? values[0] : values[c]));
}
