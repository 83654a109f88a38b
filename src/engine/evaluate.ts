/**
 * Runs a classifier over batches of labelled images and accumulates top-1, top-5, per-class
 * accuracy and the confusion matrix. Batches stream in, so memory does not grow with the dataset.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';
import { preprocess, type PreprocessingSpec } from './preprocess';

export interface LabelledBatch {
  /** NHWC pixels of `labels.length` images. */
  readonly images: Uint8Array | Float32Array;
  readonly labels: Int32Array;
}

export interface EvaluateOptions {
  /** [H, W, C] of one image. */
  readonly imageShape: readonly number[];
  readonly preprocessing: PreprocessingSpec;
  /** Total images, for progress. */
  readonly total?: number;
  readonly onProgress?: (done: number, total: number | undefined) => Promise<void> | void;
}

export interface EvaluationResult {
  readonly count: number;
  readonly top1: number;
  readonly top5: number;
  readonly perClass: number[];
  /** confusion[true][predicted] */
  readonly confusion: number[][];
}

/** Per-batch class scores: the model's output for each image, float32 [n, classes]. */
export function predictScores(model: tf.LayersModel, batch: LabelledBatch, opts: EvaluateOptions): Float32Array {
  const n = batch.labels.length;
  const [h, w, c] = opts.imageShape;
  const input = preprocess(batch.images, c, opts.preprocessing);
  const inRank = model.inputs[0].shape.length;
  return tf.tidy(() => {
    const x = tf.tensor(input, inRank === 3 ? [n, h, w] : [n, h, w, c], 'float32');
    const y = model.predict(x) as tf.Tensor;
    return y.dataSync() as Float32Array;
  });
}

/**
 * @throws EngineError LABEL_OUT_OF_RANGE when a label is not a class of the model
 */
export async function evaluate(model: tf.LayersModel, batches: AsyncIterable<LabelledBatch>, opts: EvaluateOptions): Promise<EvaluationResult> {
  const k = model.outputs[0].shape[1] as number;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let count = 0;
  let top5 = 0;
  for await (const batch of batches) {
    const scores = predictScores(model, batch, opts);
    for (let i = 0; i < batch.labels.length; i++) {
      const label = batch.labels[i];
      if (label < 0 || label >= k) throw new EngineError('LABEL_OUT_OF_RANGE', `label ${label} of image ${count + i} is not one of the model's ${k} classes`);
      const row = scores.subarray(i * k, (i + 1) * k);
      const pred = argmax(row);
      confusion[label][pred]++;
      if (rankOf(row, label) < 5) top5++;
    }
    count += batch.labels.length;
    await opts.onProgress?.(count, opts.total);
  }
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  const perClass = confusion.map((row, i) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n === 0 ? 0 : row[i] / n;
  });
  return { count, top1: count ? correct / count : 0, top5: count ? top5 / count : 0, perClass, confusion };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

/** How many classes score strictly higher than `label` (ties resolve toward the lower index, like argmax). */
function rankOf(row: Float32Array, label: number): number {
  let rank = 0;
  const v = row[label];
  for (let j = 0; j < row.length; j++) if (row[j] > v || (row[j] === v && j < label)) rank++;
  return rank;
}
