/**
 * Brings one image to a model's input size and channel count: bilinear resize (half-pixel centres,
 * as TF 2 and PIL do) and 1 <-> 3 channel conversion (gray repeated; RGB averaged).
 */
import * as tf from '@tensorflow/tfjs';

/** @returns HWC float32 pixels of the target shape (a new array the caller owns). */
export function fitImage(pixels: ArrayLike<number>, h: number, w: number, c: number, target: readonly number[]): Float32Array {
  const [th, tw, tc] = target;
  return tf.tidy(() => {
    let x: tf.Tensor3D = tf.tensor3d(Float32Array.from(pixels), [h, w, c]);
    if (h !== th || w !== tw) x = tf.image.resizeBilinear(x, [th, tw], false, true);
    if (c === 1 && tc === 3) x = tf.tile(x, [1, 1, 3]);
    else if (c === 3 && tc === 1) x = x.mean(-1, true);
    else if (c !== tc) throw new RangeError(`cannot convert ${c} channels to ${tc}`);
    return x.dataSync().slice() as Float32Array;
  });
}
