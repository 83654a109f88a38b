/**
 * Loaded models kept per worker process, keyed by the canonical blob (content address, so an
 * entry can never go stale). Bounded; a model is disposed only once no job or cached composition
 * holds it.
 */
import type * as tf from '@tensorflow/tfjs';
import { loadModel } from '../engine';
import type { BlobStore } from '../store/blobs';
import { unpackModel } from '../store/model-artifacts';
import { PinnedCache, type PinScope } from './pinned-cache';

const MAX_MODELS = 8;
const models = new PinnedCache<tf.LayersModel>(MAX_MODELS, (m) => m.dispose());

/** The model stored under `key`, held until `scope` is released. */
export function cachedModel(blobs: BlobStore, key: string, scope: PinScope): Promise<tf.LayersModel> {
  return models.get(key, () => blobs.get(key).then((bytes) => loadModel(unpackModel(bytes))), scope);
}
