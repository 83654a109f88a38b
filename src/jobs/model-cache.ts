/**
 * Loaded models kept per worker process, keyed by the canonical blob (content address, so an
 * entry can never go stale). Bounded: the least recently used model is disposed.
 */
import type * as tf from '@tensorflow/tfjs';
import { loadModel } from '../engine';
import type { BlobStore } from '../store/blobs';
import { unpackModel } from '../store/model-artifacts';

const MAX_MODELS = 8;
const cache = new Map<string, Promise<tf.LayersModel>>();
const evictionListeners: ((key: string) => void)[] = [];

/** Called with a model's key just before it is disposed, so holders of it can let go first. */
export function onModelEvicted(listener: (key: string) => void): void {
  evictionListeners.push(listener);
}

export async function cachedModel(blobs: BlobStore, key: string): Promise<tf.LayersModel> {
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const loading = blobs.get(key).then((bytes) => loadModel(unpackModel(bytes)));
  cache.set(key, loading);
  loading.catch(() => cache.delete(key));
  while (cache.size > MAX_MODELS) {
    const [oldest, entry] = cache.entries().next().value as [string, Promise<tf.LayersModel>];
    cache.delete(oldest);
    evictionListeners.forEach((l) => l(oldest));
    entry.then((m) => m.dispose()).catch(() => undefined);
  }
  return loading;
}
