/**
 * Which of the supported model formats some bytes hold, decided from the bytes only (never from a
 * file name): the HDF5 signature, or a zip whose entries look like a `.keras` file or a TF.js
 * layers model.
 */
import { UnprocessableError, UnsupportedFormatError } from '../../../errors';
import { isZip, type ZipEntryInfo } from '../zip';

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

export type Container = 'hdf5' | 'zip';

export function sniffContainer(bytes: Buffer): Container | undefined {
  const head = bytes.subarray(0, 8);
  if (head.equals(HDF5_SIGNATURE)) return 'hdf5';
  return isZip(bytes) ? 'zip' : undefined;
}

export type ZipModel = { readonly kind: 'keras' } | { readonly kind: 'tfjs'; readonly modelJson: string };

// Archivers add these beside the real content (macOS resource forks, Finder metadata).
const isJunk = (name: string) => name.startsWith('__MACOSX/') || name.split('/').some((p) => p.startsWith('._'));

/**
 * Tells a `.keras` zip (config.json + model.weights.h5 at the root) from a TF.js zip (model.json at
 * the root or in one top-level folder, as zipping a folder produces).
 * @throws UnsupportedFormatError when the zip holds neither; UnprocessableError when it is half of one.
 */
export function zipModelKind(entries: ReadonlyMap<string, ZipEntryInfo>): ZipModel {
  const hasConfig = entries.has('config.json');
  const hasWeights = entries.has('model.weights.h5');
  if (hasConfig && hasWeights) return { kind: 'keras' };

  const modelJsons = [...entries.keys()].filter((n) => !isJunk(n) && /^(?:[^/]+\/)?model\.json$/.test(n));
  if (modelJsons.length > 1) {
    throw new UnprocessableError(`the zip holds several TF.js model.json files (${modelJsons.join(', ')}); upload one model per zip`);
  }
  if (modelJsons.length === 1) return { kind: 'tfjs', modelJson: modelJsons[0]! };

  if (hasConfig || hasWeights) {
    throw new UnprocessableError(`the zip looks like a Keras .keras file but has no ${hasConfig ? 'model.weights.h5' : 'config.json'}`);
  }
  throw new UnsupportedFormatError(
    'the zip holds no model.json (TF.js layers model, at the root or in one folder) and no config.json + model.weights.h5 (Keras .keras file)',
  );
}
