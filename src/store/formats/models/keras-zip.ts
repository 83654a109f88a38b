/**
 * Keras 3 native `.keras` files: a zip of `config.json` (Keras 3 schema), `metadata.json`
 * (keras_version, save date) and `model.weights.h5`. The weights file does not use layer names:
 * each layer's variables sit at `layers/<snake_case(class)>[_k]/vars/<i>`, with one counter per
 * class in config layer order, and the variables in `layer.weights` order.
 */
import { UnprocessableError } from '../../../errors';
import { attrString, child, childKeys, isDataset, isGroup, openHdf5, readFloat32, type H5File, type H5Group } from './hdf5';
import { isObject, toTfjsModelConfig } from './keras3-config';
import { assertWeightsMatchLayers, expectedWeightNames, toSnakeCase } from './layer-weights';
import type { ModelParseLimits, ParsedModel } from './types';
import { WeightSetBuilder } from './weights';
import type { ZipArchive } from '../zip';

const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

async function readJson(zip: ZipArchive, name: string): Promise<unknown> {
  const text = (await zip.read(name)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UnprocessableError(`${name} in the .keras file is not valid JSON`);
  }
}

interface ConfigLayer {
  readonly name: string;
  readonly className: string;
  readonly config: Record<string, unknown>;
}

function configLayers(modelTopology: Record<string, unknown>): ConfigLayer[] {
  const layers = isObject(modelTopology.config) ? modelTopology.config.layers : undefined;
  return (Array.isArray(layers) ? layers : []).filter(isObject).map((l) => {
    const config = isObject(l.config) ? l.config : {};
    return { name: String(config.name ?? l.name), className: String(l.class_name), config };
  });
}

/**
 * Maps each layer to its group under `layers/`. Recent Keras versions also record the layer name
 * in `vars.attrs.name`; when present it wins, as it cannot drift from the real naming rule.
 */
function layerGroups(layersGroup: H5Group, layers: ConfigLayer[]): Map<string, string> {
  const byRecordedName = new Map<string, string>();
  for (const key of childKeys(layersGroup)) {
    const vars = child(layersGroup, `${key}/vars`);
    const recorded = vars ? attrString(vars, 'name') : undefined;
    if (recorded) byRecordedName.set(recorded, key);
  }
  const counters = new Map<string, number>();
  const out = new Map<string, string>();
  for (const layer of layers) {
    const snake = toSnakeCase(layer.className);
    const k = counters.get(snake) ?? 0;
    counters.set(snake, k + 1);
    out.set(layer.name, byRecordedName.get(layer.name) ?? (k === 0 ? snake : `${snake}_${k}`));
  }
  return out;
}

function readLayerVars(file: H5File, layersGroup: H5Group, groupName: string): ReturnType<typeof readFloat32>[] {
  const vars = child(layersGroup, `${groupName}/vars`);
  if (!isGroup(vars)) return [];
  const keys = childKeys(vars).sort((a, b) => Number(a) - Number(b));
  return keys.map((key, i) => {
    const ds = child(vars, key);
    if (key !== String(i) || !isDataset(ds)) throw new UnprocessableError(`model.weights.h5: layers/${groupName}/vars holds an unexpected entry "${key}"`);
    return readFloat32(file, ds);
  });
}

function readWeights(file: H5File, modelTopology: Record<string, unknown>, builder: WeightSetBuilder): void {
  const layersGroup = child(file.root, 'layers');
  if (!isGroup(layersGroup)) throw new UnprocessableError('model.weights.h5 has no "layers" group');
  const layers = configLayers(modelTopology);
  const groups = layerGroups(layersGroup, layers);
  for (const layer of layers) {
    if (MODEL_CLASSES.has(layer.className)) {
      throw new UnprocessableError(`layer "${layer.name}" is a nested ${layer.className} model, which .keras import does not support; flatten the model`);
    }
    const groupName = groups.get(layer.name)!;
    const vars = readLayerVars(file, layersGroup, groupName);
    const names = expectedWeightNames(layer.className, layer.config);
    if (names === undefined) {
      if (vars.length > 0) throw new UnprocessableError(`layer "${layer.name}" (${layer.className}) has ${vars.length} weights this importer cannot name`);
      continue;
    }
    if (vars.length !== names.length) {
      throw new UnprocessableError(
        `layer "${layer.name}" (${layer.className}) has ${vars.length} weight arrays in model.weights.h5 (layers/${groupName}) but its config implies ${names.length} (${names.join(', ') || 'none'})`,
      );
    }
    vars.forEach((v, i) => builder.add(`${layer.name}/${names[i]}`, v.shape, v.values));
  }
}

export async function parseKerasZip(zip: ZipArchive, limits: ModelParseLimits): Promise<ParsedModel> {
  const config = await readJson(zip, 'config.json');
  const metadata = zip.entries.has('metadata.json') ? await readJson(zip, 'metadata.json') : undefined;
  const version = isObject(metadata) ? metadata.keras_version : undefined;
  const modelTopology = toTfjsModelConfig(config, 'config.json of the .keras file');
  const file = openHdf5(await zip.read('model.weights.h5'), limits, 'model.weights.h5');
  const builder = new WeightSetBuilder();
  readWeights(file, modelTopology, builder);
  const weights = builder.build();
  assertWeightsMatchLayers(
    modelTopology,
    weights.weightSpecs.map((s) => s.name),
  );
  return { format: 'keras', ...(typeof version === 'string' ? { kerasVersion: version } : {}), modelTopology, ...weights };
}
