/**
 * A zipped TF.js layers model: `model.json` (`{format, modelTopology, weightsManifest}`) plus the
 * weight shards its manifest names, relative to model.json's folder. Each manifest group's shards
 * concatenate into one buffer that holds the group's weights back to back, so a weight may span
 * two shards; sizes are checked per group before any weight is decoded.
 */
import { posix } from 'node:path';
import { UnprocessableError } from '../../../errors';
import { isObject, toTfjsModelConfig } from './keras3-config';
import { assertWeightsMatchLayers } from './layer-weights';
import type { ParsedModel } from './types';
import { elementCount, float32FromLE, WeightSetBuilder } from './weights';
import { unsafeEntryName, type ZipArchive } from '../zip';

interface ManifestWeight {
  readonly name: string;
  readonly shape: number[];
  readonly bytes: number;
  readonly decode: (b: Buffer) => Float32Array;
}

function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** How to read one manifest entry: plain float32, or tfjs-converter's uint8/uint16/float16 quantization. */
function manifestWeight(raw: unknown, where: string): ManifestWeight {
  if (!isObject(raw) || typeof raw.name !== 'string') throw new UnprocessableError(`${where}: a weight entry has no name`);
  const name = raw.name;
  const n = elementCount(raw.shape, `weight "${name}" in model.json`);
  const shape = raw.shape as number[];
  if (raw.dtype !== 'float32') {
    throw new UnprocessableError(`weight "${name}" has dtype ${JSON.stringify(raw.dtype)}; only float32 weights are supported`);
  }
  const q = raw.quantization;
  if (q === undefined || q === null) return { name, shape, bytes: n * 4, decode: (b) => float32FromLE(b) };
  if (!isObject(q)) throw new UnprocessableError(`weight "${name}" has a malformed quantization entry`);
  if (q.dtype === 'float16') {
    return { name, shape, bytes: n * 2, decode: (b) => Float32Array.from({ length: n }, (_, i) => float16ToFloat32(b.readUInt16LE(i * 2))) };
  }
  if ((q.dtype === 'uint8' || q.dtype === 'uint16') && typeof q.scale === 'number' && typeof q.min === 'number') {
    const { scale, min } = q;
    const size = q.dtype === 'uint8' ? 1 : 2;
    const read = size === 1 ? (b: Buffer, i: number) => b[i]! : (b: Buffer, i: number) => b.readUInt16LE(i * 2);
    return { name, shape, bytes: n * size, decode: (b) => Float32Array.from({ length: n }, (_, i) => read(b, i) * scale + min) };
  }
  throw new UnprocessableError(`weight "${name}" uses an unsupported quantization ${JSON.stringify(q).slice(0, 120)}`);
}

/** A shard path from the manifest, resolved against model.json's folder, without leaving the zip. */
function shardEntry(dir: string, path: unknown): string {
  if (typeof path !== 'string') throw new UnprocessableError('model.json lists a weight shard path that is not a string');
  const problem = unsafeEntryName(path);
  if (problem) throw new UnprocessableError(`model.json shard path: ${problem}`);
  return posix.normalize(posix.join(dir, path));
}

async function readGroup(zip: ZipArchive, dir: string, group: unknown, g: number, builder: WeightSetBuilder): Promise<void> {
  const where = `model.json weightsManifest[${g}]`;
  if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
    throw new UnprocessableError(`${where} needs "paths" and "weights" lists`);
  }
  const weights = group.weights.map((w) => manifestWeight(w, where));
  const shards: Buffer[] = [];
  for (const p of group.paths) {
    const entry = shardEntry(dir, p);
    if (!zip.entries.has(entry)) throw new UnprocessableError(`weight shard "${entry}" named in model.json is missing from the zip`);
    shards.push(await zip.read(entry));
  }
  const data = Buffer.concat(shards);
  const needed = weights.reduce((a, w) => a + w.bytes, 0);
  if (data.length !== needed) {
    throw new UnprocessableError(`${where}: the shards hold ${data.length} bytes but the manifest's weights need ${needed} (shard size mismatch)`);
  }
  let offset = 0;
  for (const w of weights) {
    builder.add(w.name, w.shape, w.decode(data.subarray(offset, offset + w.bytes)));
    offset += w.bytes;
  }
}

async function readModelJson(zip: ZipArchive, name: string): Promise<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse((await zip.read(name)).toString('utf8'));
  } catch (err) {
    if (err instanceof UnprocessableError) throw err;
    throw new UnprocessableError(`${name} is not valid JSON`);
  }
  if (!isObject(json)) throw new UnprocessableError(`${name} is not a JSON object`);
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw new UnprocessableError(`${name} is a TF.js ${JSON.stringify(json.format)}; only layers models (converted from Keras) can be decomposed`);
  }
  return json;
}

export async function parseTfjsZip(zip: ZipArchive, modelJson: string): Promise<ParsedModel> {
  const json = await readModelJson(zip, modelJson);
  const topology = json.modelTopology;
  if (!isObject(topology)) throw new UnprocessableError(`${modelJson} has no modelTopology`);
  // tensorflowjs_converter wraps the config as {keras_version, backend, model_config}; tfjs's own save does not.
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  const version = topology.keras_version;
  const modelTopology = toTfjsModelConfig(modelConfig, `the modelTopology of ${modelJson}`);
  if (!Array.isArray(json.weightsManifest)) throw new UnprocessableError(`${modelJson} has no weightsManifest`);
  const dir = posix.dirname(modelJson) === '.' ? '' : posix.dirname(modelJson);
  const builder = new WeightSetBuilder();
  for (const [g, group] of json.weightsManifest.entries()) await readGroup(zip, dir, group, g, builder);
  const weights = builder.build();
  assertWeightsMatchLayers(
    modelTopology,
    weights.weightSpecs.map((s) => s.name),
  );
  return { format: 'tfjs', ...(typeof version === 'string' ? { kerasVersion: version } : {}), modelTopology, ...weights };
}
