/** Rebuilding a model's layer as a new layer object, for the models the engine derives (export, compact modules). */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';

/**
 * The layer as a new layer with the same config (minus training-only parts), `changes` applied.
 * @throws EngineError UNSUPPORTED_LAYER when TF.js cannot build the class
 */
export function cloneLayer(layer: tf.layers.Layer, changes: Record<string, unknown> = {}): tf.layers.Layer {
  const className = layer.getClassName();
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) throw new EngineError('UNSUPPORTED_LAYER', `layer ${layer.name} (${className}) cannot be rebuilt`);
  const config = { ...(layer.getConfig() as Record<string, unknown>) };
  // Shape hints belong to an input layer of the original (Sequential) model, not to this call.
  for (const key of ['batchInputShape', 'inputShape', 'batchSize', 'inputDType']) delete config[key];
  // Constraints and regularizers only act in training; dropping them keeps setWeights a plain copy.
  for (const key of Object.keys(config)) {
    if (key.endsWith('Constraint') || key.endsWith('Regularizer')) config[key] = null;
  }
  Object.assign(config, changes);
  const [ctor, fromConfig] = entry;
  return fromConfig(ctor, config as tf.serialization.ConfigDict) as unknown as tf.layers.Layer;
}
