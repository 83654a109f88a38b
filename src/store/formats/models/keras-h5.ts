/**
 * Keras full-model HDF5 files (`model.save('x.h5')`), written by Keras 2.x or 3.x. Both keep the
 * same layout: root attributes `keras_version` and `model_config` (JSON), and weights under
 * `model_weights/<layer>/...`, listed by the attributes `layer_names` (on model_weights) and
 * `weight_names` (on each layer group). Keras 2 names weights `<layer>/<weight>:0`, Keras 3
 * `<layer>/<weight>`; the config is Keras 2 or 3 schema accordingly.
 */
import { UnprocessableError } from '../../../errors';
import { attrString, attrStringList, child, childKeys, isDataset, isGroup, openHdf5, readFloat32, type H5File, type H5Group } from './hdf5';
import { toTfjsModelConfig } from './keras3-config';
import { assertWeightsMatchLayers, expectedWeightNames, layersByName } from './layer-weights';
import type { ModelParseLimits, ParsedModel } from './types';
import { WeightSetBuilder } from './weights';

/**
 * tfjs matches weights by `<layer>/<weight>`. The stored name's scope can differ from the layer
 * (a renamed layer, TF's `:0` suffix), so the layer's own name is used with the stored basename.
 */
export function tfjsWeightName(layer: string, storedName: string): string {
  const base = storedName.replace(/:\d+$/, '').split('/').pop() ?? storedName;
  return `${layer}/${base}`;
}

function readModelConfig(file: H5File): unknown {
  const json = attrString(file.root, 'model_config');
  if (json === undefined) {
    const keys = childKeys(file.root);
    if (keys.includes('layers') && keys.includes('vars')) {
      throw new UnprocessableError('this HDF5 file is a Keras 3 weights-only file (.weights.h5); upload the .keras file or a full-model .h5');
    }
    throw new UnprocessableError('the HDF5 file has no model_config attribute: it holds weights only (saved with save_weights?), not a whole Keras model');
  }
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw new UnprocessableError('the model_config attribute of the HDF5 file is not valid JSON');
  }
}

/**
 * The tfjs names of one layer's stored weights. Keras versions disagree on some basenames (Keras 3
 * writes a DepthwiseConv2D's `depthwise_kernel` as plain `kernel` in .h5 files) but never on their
 * order, so when the stored basenames are not the ones tfjs expects and their number is, they are
 * named by position.
 */
function layerWeightNames(layer: string, stored: readonly string[], info: { className: string; config: unknown } | undefined): string[] {
  const names = stored.map((s) => tfjsWeightName(layer, s));
  const expected = info ? expectedWeightNames(info.className, info.config) : undefined;
  if (!expected || expected.length !== stored.length) return names;
  const known = new Set(expected.map((w) => `${layer}/${w}`));
  return names.every((n) => known.has(n)) ? names : expected.map((w) => `${layer}/${w}`);
}

function readWeights(file: H5File, modelWeights: H5Group, modelTopology: Record<string, unknown>, builder: WeightSetBuilder): void {
  const layerNames = attrStringList(modelWeights, 'layer_names');
  if (!layerNames) throw new UnprocessableError('model_weights has no layer_names attribute');
  const layers = layersByName(modelTopology);
  for (const layer of layerNames) {
    const group = child(modelWeights, layer);
    if (!isGroup(group)) throw new UnprocessableError(`model_weights lists layer "${layer}" but has no group for it`);
    const stored = attrStringList(group, 'weight_names') ?? [];
    const names = layerWeightNames(layer, stored, layers.get(layer));
    stored.forEach((s, i) => {
      const ds = child(group, s);
      if (!isDataset(ds)) throw new UnprocessableError(`weight "${s}" of layer "${layer}" is listed but missing from the file`);
      const { shape, values } = readFloat32(file, ds);
      builder.add(names[i], shape, values);
    });
  }
}

export function parseKerasH5(bytes: Buffer, limits: ModelParseLimits): ParsedModel {
  const file = openHdf5(bytes, limits, 'Keras HDF5 file');
  const modelTopology = toTfjsModelConfig(readModelConfig(file), 'the model_config of the HDF5 file');
  const modelWeights = child(file.root, 'model_weights');
  if (!isGroup(modelWeights)) throw new UnprocessableError('the HDF5 file has no model_weights group');
  const kerasVersion = attrString(file.root, 'keras_version') ?? attrString(modelWeights, 'keras_version');
  const builder = new WeightSetBuilder();
  readWeights(file, modelWeights, modelTopology, builder);
  const weights = builder.build();
  assertWeightsMatchLayers(
    modelTopology,
    weights.weightSpecs.map((s) => s.name),
  );
  return { format: 'h5', ...(kerasVersion ? { kerasVersion } : {}), modelTopology, ...weights };
}
