/**
 * Uploaded model files → one in-memory form (`ParsedModel`: tfjs-layers topology + float32 weights).
 * In: the file's bytes (Keras 3 `.keras`, Keras 2.x/3.x HDF5 `.h5`, or a zipped TF.js layers model),
 * recognised from the bytes alone. Out: a `ParsedModel`, or an AppError (415 not a model format,
 * 422 a damaged or unusable one, 413 a zip over the byte budget, 400 an empty upload); never a raw
 * exception. Zips go through the shared reader (`../zip.ts`) and its guard and error policy.
 *
 * Whether the model is a classifier the engine can decompose (layer types, input/output count,
 * softmax head) is the engine's call; this module only guarantees a well-formed, finite model.
 */
import { AppError, BadRequestError, UnprocessableError, UnsupportedFormatError } from '../../../errors';
import { openZip } from '../zip';
import { sniffContainer, zipModelKind } from './detect';
import { parseKerasH5 } from './keras-h5';
import { parseKerasZip } from './keras-zip';
import { parseTfjsZip } from './tfjs-zip';
import { DEFAULT_MODEL_PARSE_LIMITS, type ModelParseLimits, type ParsedModel } from './types';

export { DEFAULT_MODEL_PARSE_LIMITS } from './types';
export type { ModelFileFormat, ModelParseLimits, ParsedModel, WeightSpec } from './types';

async function parseZip(bytes: Buffer, limits: ModelParseLimits): Promise<ParsedModel> {
  const zip = await openZip(bytes, limits, 'model file');
  try {
    const kind = zipModelKind(zip.entries);
    return kind.kind === 'keras' ? await parseKerasZip(zip, limits) : await parseTfjsZip(zip, kind.modelJson);
  } finally {
    zip.close();
  }
}

/**
 * The file's Keras version travels inside the topology (as tensorflowjs_converter writes it), because
 * one activation changed meaning: Keras 3's hard_sigmoid is relu6(x + 3) / 6, Keras 2's (and tfjs')
 * 0.2x + 0.5. The engine reads it when it loads the model.
 */
function withVersion(parsed: ParsedModel): ParsedModel {
  if (!parsed.kerasVersion || 'keras_version' in parsed.modelTopology) return parsed;
  return { ...parsed, modelTopology: { ...parsed.modelTopology, keras_version: parsed.kerasVersion } };
}

/**
 * Parses a model file.
 * @param bytes the whole file
 * @param limits extraction bounds (zip entry count, inflated bytes)
 * @throws UnsupportedFormatError (415) when the bytes are no supported model format
 * @throws UnprocessableError (422) when they are one but damaged, unsafe or inconsistent
 * @throws PayloadTooLargeError (413) when a zip's files declare or inflate past maxUncompressedBytes
 * @throws BadRequestError (400) when the file is empty
 */
export async function parseModelFile(bytes: Buffer, limits: ModelParseLimits = DEFAULT_MODEL_PARSE_LIMITS): Promise<ParsedModel> {
  if (bytes.length === 0) throw new BadRequestError('the model file is empty');
  const container = sniffContainer(bytes);
  if (!container) {
    throw new UnsupportedFormatError('not a Keras HDF5 file (.h5), a Keras .keras zip nor a zipped TF.js layers model; the format is detected from the bytes');
  }
  try {
    return withVersion(container === 'hdf5' ? parseKerasH5(bytes, limits) : await parseZip(bytes, limits));
  } catch (err) {
    if (err instanceof AppError) throw err;
    // A reader bug or an input no check anticipated: still the file's fault, and still a typed error.
    const msg = err instanceof Error ? err.message : String(err);
    throw new UnprocessableError(`could not read the ${container === 'hdf5' ? 'HDF5' : 'zip'} model file: ${msg}`);
  }
}
