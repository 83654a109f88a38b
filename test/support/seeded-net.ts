/** A small seeded CNN classifier (conv-pool-conv-GAP-dense-softmax) with any number of classes: the tau = 0 invariant holds for any weights. */
import * as tf from '@tensorflow/tfjs';

/**
 * @param classes head width
 * @param width filters of the first conv (then 2x, and a 4x hidden dense layer)
 * @param shape input shape
 */
export function seededClassifier(classes: number, width: number, shape: readonly number[] = [16, 16, 3]): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const conv = (filters: number, seed: number) =>
    tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed) });
  const input = tf.input({ shape: [...shape] });
  let x = conv(width, 1).apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = conv(2 * width, 2).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 4 * width, activation: 'relu', kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  const head = tf.layers.dense({
    units: classes,
    activation: 'softmax',
    kernelInitializer: init(4),
    biasInitializer: tf.initializers.randomNormal({ seed: 5, stddev: 0.1 }),
  });
  return tf.model({ inputs: input, outputs: head.apply(x) as tf.SymbolicTensor });
}
