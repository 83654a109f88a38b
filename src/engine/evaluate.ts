/**
 * Runs a classifier over batches of labelled images and accumulates top-1, top-5, per-class
 * accuracy and the confusion matrix. Batches stream in, so memory does not grow with the dataset.
 */
import * as tf from '@tensorflow/tfjs';
import { PREDICT_BATCH_BYTES } from './defaults';
import { EngineError } from './errors';
import { AccuracyTally, topK } from './metrics';
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
  /** Images per true class: a perClass entry over none is no measurement. */
  readonly classCounts: number[];
  /** confusion[true][predicted] */
  readonly confusion: number[][];
}

/** Images per model.predict call: as many as PREDICT_BATCH_BYTES of the model's largest layer output allow. */
export function predictBatchSize(model: tf.LayersModel): number {
  let largest = 1;
  for (const layer of model.layers) {
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const s of shapes)
      largest = Math.max(
        largest,
        s.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1),
      );
  }
  return Math.max(1, Math.floor(PREDICT_BATCH_BYTES / (4 * largest)));
}

/** The model's output on `x` in calls of predictBatchSize images (predict's own default is 32). */
export function predictBatched(model: tf.LayersModel, x: tf.Tensor, batchSize = predictBatchSize(model)): tf.Tensor {
  return model.predict(x, { batchSize: Math.max(1, Math.min(x.shape[0], batchSize)) }) as tf.Tensor;
}

/** Per-batch class scores: the model's output for each image, float32 [n, classes]. */
export function predictScores(model: tf.LayersModel, batch: LabelledBatch, opts: EvaluateOptions, batchSize = predictBatchSize(model)): Float32Array {
  const n = batch.labels.length;
  const [h, w, c] = opts.imageShape;
  const input = preprocess(batch.images, c, opts.preprocessing);
  const inRank = model.inputs[0].shape.length;
  return tf.tidy(() => {
    const x = tf.tensor(input, inRank === 3 ? [n, h, w] : [n, h, w, c], 'float32');
    return predictBatched(model, x, batchSize).dataSync() as Float32Array;
  });
}

/**
 * @throws EngineError LABEL_OUT_OF_RANGE when a label is not a class of the model
 */
export async function evaluate(model: tf.LayersModel, batches: AsyncIterable<LabelledBatch>, opts: EvaluateOptions): Promise<EvaluationResult> {
  const k = model.outputs[0].shape[1] as number;
  const tally = new AccuracyTally(k);
  const batchSize = predictBatchSize(model);
  for await (const batch of batches) {
    const scores = predictScores(model, batch, opts, batchSize);
    for (let i = 0; i < batch.labels.length; i++) {
      const label = batch.labels[i];
      if (label < 0 || label >= k) throw new EngineError('LABEL_OUT_OF_RANGE', `label ${label} of image ${tally.count} is not one of the model's ${k} classes`);
      tally.add(label, topK(scores.subarray(i * k, (i + 1) * k), 5));
    }
    await opts.onProgress?.(tally.count, opts.total);
  }
  return { count: tally.count, ...tally.topK(), perClass: tally.perClass(), classCounts: tally.classCounts(), confusion: tally.confusion };
}
