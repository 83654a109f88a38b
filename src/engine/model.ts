/**
 * Turns model artifacts into a tf.LayersModel the engine accepts, and describes it.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';
import { withTfjsEquivalents } from './layers/equivalents';
import { unsupportedLayers } from './layers/supported';

/** What store/formats produce: a tfjs-layers topology plus float32 weights. */
export interface ModelArtifactsLike {
  readonly modelTopology: Record<string, unknown>;
  readonly weightSpecs: readonly { name: string; shape: number[]; dtype: string }[];
  readonly weightData: ArrayBuffer;
}

export interface LayerSummary {
  readonly name: string;
  readonly type: string;
  readonly outputShape: (number | null)[];
}

export interface ModelSummary {
  /** Input shape without the batch axis, e.g. [32, 32, 3]. */
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly params: number;
  readonly layers: LayerSummary[];
  /** Activation of the output layer: 'softmax' models output probabilities, 'linear' logits. */
  readonly outputActivation: string;
}

/**
 * Loads artifacts into a model on the current backend.
 * @returns a model the caller owns (dispose it).
 * @throws EngineError UNSUPPORTED_LAYER | MULTIPLE_INPUTS | MULTIPLE_OUTPUTS | NOT_A_CLASSIFIER | INVALID_MODEL
 */
export async function loadModel(original: ModelArtifactsLike): Promise<tf.LayersModel> {
  const artifacts = await withTfjsEquivalents(original);
  const unsupported = unsupportedLayers(artifacts.modelTopology);
  if (unsupported.length > 0) {
    const list = unsupported.map((l) => `${l.name} (${l.className})`).join(', ');
    throw new EngineError('UNSUPPORTED_LAYER', `unsupported layer type: ${list}`);
  }
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: artifacts.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: artifacts.weightSpecs as tf.io.WeightsManifestEntry[],
        weightData: artifacts.weightData,
      }),
    );
  } catch (err) {
    throw new EngineError('INVALID_MODEL', `the model could not be built: ${(err as Error).message}`);
  }
  try {
    checkClassifier(model);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

function checkClassifier(model: tf.LayersModel): void {
  if (model.inputs.length !== 1) throw new EngineError('MULTIPLE_INPUTS', `the model has ${model.inputs.length} inputs; one image input is supported`);
  if (model.outputs.length !== 1) throw new EngineError('MULTIPLE_OUTPUTS', `the model has ${model.outputs.length} outputs; one class output is supported`);
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 4 && inShape.length !== 3) {
    throw new EngineError('NOT_A_CLASSIFIER', `input shape ${JSON.stringify(inShape)} is not an image batch [N,H,W,C] or [N,H,W]`);
  }
  const outShape = model.outputs[0].shape;
  if (outShape.length !== 2 || outShape[1] === null || (outShape[1] as number) < 2) {
    throw new EngineError('NOT_A_CLASSIFIER', `output shape ${JSON.stringify(outShape)} is not a class vector [N, classes >= 2]`);
  }
  const last = model.layers[model.layers.length - 1];
  const activation = outputActivation(model);
  if (!['softmax', 'linear'].includes(activation)) {
    throw new EngineError('NOT_A_CLASSIFIER', `the output layer ${last.name} ends in ${activation}; a classifier ends in softmax or linear logits`);
  }
}

function outputActivation(model: tf.LayersModel): string {
  const last = model.layers[model.layers.length - 1];
  const cls = last.getClassName();
  if (cls === 'Softmax') return 'softmax';
  const cfg = last.getConfig() as { activation?: string };
  return cfg.activation ?? 'linear';
}

/** Input shape (no batch axis), class count, parameter count and a per-layer summary. */
export function describeModel(model: tf.LayersModel): ModelSummary {
  const inShape = model.inputs[0].shape.slice(1) as number[];
  const inputShape = inShape.length === 2 ? [...inShape, 1] : inShape;
  return {
    inputShape,
    numClasses: model.outputs[0].shape[1] as number,
    params: model.countParams(),
    layers: model.layers.map((l) => {
      const shape = l.outputShape;
      const first = (Array.isArray(shape[0]) || shape[0] === undefined ? shape[0] : shape) as (number | null)[];
      return { name: l.name, type: l.getClassName(), outputShape: first ?? [] };
    }),
    outputActivation: outputActivation(model),
  };
}
