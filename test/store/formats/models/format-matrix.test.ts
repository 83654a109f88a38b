/**
 * The format matrix of issue 13, each cell a real file holding the same small MNIST CNN
 * (test/fixtures/trained/mnist-cnn): every one must load and predict exactly what that model.json
 * predicts (quantized ones: exactly what their dequantized weights predict).
 * - Keras 2.1 / 2.2 / 2.15 `.h5` (Sequential list and dict, "Model" and "Functional") and a
 *   tf.keras 2.13 `.keras`: written by scripts/fixtures/keras2-formats.py;
 * - TF.js layers zips as tfjs' model.save() writes them (with and without the format fields) and as
 *   tensorflowjs_converter writes them (the {keras_version, backend, model_config} wrapper, weights
 *   in several groups and shards, float16 / uint8 / uint16 quantization): built here.
 * Keras 3 `.keras`/`.h5` cells: test/engine/families.test.ts and version-variants.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { parseModelFile } from '../../../../src/store/formats/models';
import { TRAINED_DIR } from '../../../support/fixtures';
import { buildZip, type ZipEntrySpec } from '../../../support/zip-builder';
import { loadParsed } from './fixtures';

const KERAS_FORMATS = path.resolve(__dirname, '../../../fixtures/keras-formats');
const DIR = path.join(TRAINED_DIR, 'mnist-cnn');

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}
const modelJson = JSON.parse(fs.readFileSync(path.join(DIR, 'model.json'), 'utf8')) as {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: { class_name: string; config: unknown; keras_version?: string; backend?: string };
  weightsManifest: { paths: string[]; weights: ManifestEntry[] }[];
};
const specs = modelJson.weightsManifest.flatMap((g) => g.weights);
const shard = fs.readFileSync(path.join(DIR, modelJson.weightsManifest[0].paths[0]));
/** Every weight's float32 values, by name. */
const values = new Map<string, Float32Array>();
{
  let offset = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    values.set(s.name, new Float32Array(shard.buffer.slice(shard.byteOffset + offset, shard.byteOffset + offset + 4 * n)));
    offset += 4 * n;
  }
}

const input = () =>
  tf.tensor4d(
    Float32Array.from({ length: 8 * 28 * 28 }, (_, i) => ((i * 37) % 256) / 255),
    [8, 28, 28, 1],
  );

/** Predictions of the mnist-cnn topology with the given weights (float32, by name). */
async function predictWith(weights: Map<string, Float32Array>): Promise<Float32Array> {
  const data = new Float32Array(specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0));
  let at = 0;
  for (const s of specs) {
    data.set(weights.get(s.name) as Float32Array, at);
    at += (weights.get(s.name) as Float32Array).length;
  }
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: modelJson.modelTopology as never, weightSpecs: specs as tf.io.WeightsManifestEntry[], weightData: data.buffer }),
  );
  return predict(model);
}

function predict(model: tf.LayersModel): Float32Array {
  const x = input();
  const y = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  x.dispose();
  model.dispose();
  return y;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function predictFile(bytes: Buffer): Promise<Float32Array> {
  return predict(await loadParsed(await parseModelFile(bytes)));
}

type Quantization = 'float16' | 'uint8' | 'uint16';

/** Quantizes as tensorflowjs_converter does; returns the stored bytes and the values they decode to. */
function quantize(v: Float32Array, dtype: Quantization): { bytes: Buffer; decoded: Float32Array; entry: ManifestEntry['quantization'] } {
  if (dtype === 'float16') {
    // The converter writes IEEE half floats.
    const half = Buffer.alloc(v.length * 2);
    const decoded = new Float32Array(v.length);
    v.forEach((x, i) => {
      const h = toHalf(x);
      half.writeUInt16LE(h, i * 2);
      decoded[i] = fromHalf(h);
    });
    return { bytes: half, decoded, entry: { dtype: 'float16' } };
  }
  const levels = dtype === 'uint8' ? 255 : 65535;
  let min = Infinity;
  let max = -Infinity;
  for (const x of v) {
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const scale = max > min ? (max - min) / levels : 1;
  const size = dtype === 'uint8' ? 1 : 2;
  const bytes = Buffer.alloc(v.length * size);
  const decoded = new Float32Array(v.length);
  v.forEach((x, i) => {
    const q = Math.round((x - min) / scale);
    if (size === 1) bytes.writeUInt8(q, i);
    else bytes.writeUInt16LE(q, i * 2);
    decoded[i] = q * scale + min;
  });
  return { bytes, decoded, entry: { dtype, scale, min } };
}

function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign | (Math.round((mant | 0x800000) / 2 ** (14 - exp)) >>> 0);
  if (exp >= 31) return sign | 0x7c00;
  return sign | ((exp << 10) + Math.round(mant / 8192)); // a rounding carry moves into the exponent, as it should
}

function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}

/** A tensorflowjs_converter-style zip: wrapper topology, `groups` weight groups, shards of at most `shardBytes`. */
function converterZip(opts: { groups: number; shardBytes: number; quantization?: Quantization; formatFields: boolean }): {
  zip: Buffer;
  decoded: Map<string, Float32Array>;
} {
  const decoded = new Map<string, Float32Array>();
  const perGroup = Math.ceil(specs.length / opts.groups);
  const entries: ZipEntrySpec[] = [];
  const manifest: { paths: string[]; weights: ManifestEntry[] }[] = [];
  for (let g = 0; g < opts.groups; g++) {
    const mine = specs.slice(g * perGroup, (g + 1) * perGroup);
    const parts: Buffer[] = [];
    const weights: ManifestEntry[] = [];
    for (const s of mine) {
      const v = values.get(s.name) as Float32Array;
      if (opts.quantization) {
        const q = quantize(v, opts.quantization);
        parts.push(q.bytes);
        decoded.set(s.name, q.decoded);
        weights.push({ name: s.name, shape: s.shape, dtype: 'float32', quantization: q.entry });
      } else {
        parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        decoded.set(s.name, v);
        weights.push({ name: s.name, shape: s.shape, dtype: 'float32' });
      }
    }
    const all = Buffer.concat(parts);
    const count = Math.max(1, Math.ceil(all.length / opts.shardBytes));
    const paths = Array.from({ length: count }, (_, k) => `group${g + 1}-shard${k + 1}of${count}.bin`);
    paths.forEach((p, k) => entries.push({ name: p, data: all.subarray(k * opts.shardBytes, (k + 1) * opts.shardBytes) }));
    manifest.push({ paths, weights });
  }
  const { keras_version: _k, backend: _b, ...model_config } = modelJson.modelTopology;
  const json: Record<string, unknown> = {
    modelTopology: { keras_version: '2.15.0', backend: 'tensorflow', model_config },
    weightsManifest: manifest,
  };
  if (opts.formatFields) Object.assign(json, { format: 'layers-model', generatedBy: 'keras v2.15.0', convertedBy: 'TensorFlow.js Converter v4.22.0' });
  entries.unshift({ name: 'model.json', data: Buffer.from(JSON.stringify(json)) });
  return { zip: buildZip(entries), decoded };
}

describe('the format matrix: one MNIST CNN in every layout', () => {
  let reference: Float32Array;
  beforeAll(async () => {
    await tf.setBackend('tensorflow');
    reference = await predictWith(values);
  });

  it.each([
    ['Keras 2.1.6 .h5, Sequential as a bare list', 'mnist-keras21-list.h5'],
    ['Keras 2.2.4 .h5, functional "Model"', 'mnist-keras22-model.h5'],
    ['Keras 2.15 .h5, Sequential dict with an InputLayer', 'mnist-keras215-sequential.h5'],
    ['Keras 2.15 .h5, "Functional"', 'mnist-keras215-functional.h5'],
    ['tf.keras 2.13 .keras', 'mnist-tfkeras213.keras'],
  ])('%s predicts exactly what model.json does', async (_label, file) => {
    const parsed = await parseModelFile(fs.readFileSync(path.join(KERAS_FORMATS, file)));
    expect(parsed.kerasVersion).toMatch(/^2\./);
    expect(maxAbsDiff(await predictFile(fs.readFileSync(path.join(KERAS_FORMATS, file))), reference)).toBe(0);
  });

  it.each([
    ['as model.save() writes it', true],
    ['without the format and generatedBy fields', false],
  ])('a TF.js zip %s', async (_label, formatFields) => {
    const json: Record<string, unknown> = { ...modelJson };
    if (!formatFields) {
      delete json.format;
      delete json.generatedBy;
      delete json.convertedBy;
    }
    const zip = buildZip([
      { name: 'model.json', data: Buffer.from(JSON.stringify(json)) },
      { name: modelJson.weightsManifest[0].paths[0], data: shard },
    ]);
    expect(maxAbsDiff(await predictFile(zip), reference)).toBe(0);
  });

  it.each([
    ['one group, one shard', 1, 1 << 20],
    ['three groups in 4 KB shards', 3, 4096],
  ])('a tensorflowjs_converter zip, %s', async (_label, groups, shardBytes) => {
    for (const formatFields of [true, false]) {
      const { zip } = converterZip({ groups, shardBytes, formatFields });
      expect(maxAbsDiff(await predictFile(zip), reference)).toBe(0);
    }
  });

  it.each(['float16', 'uint8', 'uint16'] as const)('a %s-quantized converter zip predicts what its dequantized weights do', async (q) => {
    const { zip, decoded } = converterZip({ groups: 2, shardBytes: 8192, quantization: q, formatFields: true });
    const expected = await predictWith(decoded);
    const got = await predictFile(zip);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-6);
    console.log(`${q}: max |softmax - float32 model| = ${maxAbsDiff(got, reference).toExponential(2)}`);
  });
});
