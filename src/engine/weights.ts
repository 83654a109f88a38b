/** A model's weights as one buffer with its manifest: what export and the compact modules' blobs store. */
import type * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';
import type { ModelArtifactsLike } from './model';

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/**
 * The model's weights as one little-endian buffer in `model.weights` order, named by their
 * original names (what tf.loadLayersModel matches on). The 0/1 mask kernels are stored as uint8
 * with quantization {scale 1, min 0}, which TF.js dequantizes exactly (q * 1 + 0).
 */
export function encodeWeights(model: tf.LayersModel, maskLayers: ReadonlySet<string> = new Set()): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const variables = model.weights;
  const values = model.getWeights();
  const parts: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  variables.forEach((v, i) => {
    const t = values[i];
    if (!DTYPE_BYTES[t.dtype]) throw new EngineError('INVALID_MODEL', `weight ${v.originalName} has dtype ${t.dtype}, which cannot be exported`);
    const name = v.originalName;
    const spec: tf.io.WeightsManifestEntry = { name, shape: [...t.shape], dtype: t.dtype as 'float32' | 'int32' | 'bool' };
    const raw = t.dataSync();
    const layerName = name.slice(0, name.lastIndexOf('/'));
    if (t.dtype === 'float32' && maskLayers.has(layerName) && raw.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) {
      parts.push(Uint8Array.from(raw as ArrayLike<number>));
      specs.push({ ...spec, quantization: { dtype: 'uint8', scale: 1, min: 0 } });
      return;
    }
    // A byte view copies the data whatever realm its typed array comes from.
    const view = ArrayBuffer.isView(raw) ? new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) : Uint8Array.from(raw as ArrayLike<number>);
    if (t.dtype === 'bool' && view.byteLength !== t.size) throw new EngineError('INVALID_MODEL', `weight ${name} has an unexpected bool layout`);
    parts.push(view);
    specs.push(spec);
  });
  const total = parts.reduce((sum, p) => sum + p.byteLength, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.byteLength;
  }
  return { specs, data: buf.buffer };
}

/** A built model as artifacts `loadModel` reads back (Keras-style topology, weights by original name). */
export function modelArtifacts(model: tf.LayersModel): ModelArtifactsLike & { weightSpecs: tf.io.WeightsManifestEntry[] } {
  const { specs, data } = encodeWeights(model);
  return { modelTopology: model.toJSON(null, false) as Record<string, unknown>, weightSpecs: specs, weightData: data };
}
