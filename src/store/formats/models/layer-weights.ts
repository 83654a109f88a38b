/**
 * The tfjs names of a layer's weights, in Keras `layer.weights` order, from its class and config.
 * A `.keras` file stores weights only by position (`vars/0`, `vars/1`, ...), so this table is what
 * gives them their names back. Flags such as use_bias/center/scale decide which weights exist.
 */
import { UnprocessableError } from '../../../errors';
import { isObject } from './keras3-config';

type Config = Record<string, unknown>;

// Keras and tfjs both default these flags to true.
const flag = (c: Config, key: string) => c[key] !== false;
const withBias = (c: Config, names: string[]) => (flag(c, 'use_bias') ? [...names, 'bias'] : names);

const TABLE: Record<string, (c: Config) => string[]> = {
  Dense: (c) => withBias(c, ['kernel']),
  Conv1D: (c) => withBias(c, ['kernel']),
  Conv2D: (c) => withBias(c, ['kernel']),
  Conv3D: (c) => withBias(c, ['kernel']),
  Conv1DTranspose: (c) => withBias(c, ['kernel']),
  Conv2DTranspose: (c) => withBias(c, ['kernel']),
  Conv3DTranspose: (c) => withBias(c, ['kernel']),
  // Keras 3 calls the depthwise kernel plain "kernel"; tfjs keeps the Keras 2 name.
  DepthwiseConv1D: (c) => withBias(c, ['depthwise_kernel']),
  DepthwiseConv2D: (c) => withBias(c, ['depthwise_kernel']),
  SeparableConv1D: (c) => withBias(c, ['depthwise_kernel', 'pointwise_kernel']),
  SeparableConv2D: (c) => withBias(c, ['depthwise_kernel', 'pointwise_kernel']),
  BatchNormalization: (c) => [...(flag(c, 'scale') ? ['gamma'] : []), ...(flag(c, 'center') ? ['beta'] : []), 'moving_mean', 'moving_variance'],
  LayerNormalization: (c) => [...(flag(c, 'scale') ? ['gamma'] : []), ...(flag(c, 'center') ? ['beta'] : [])],
  Embedding: () => ['embeddings'],
  PReLU: () => ['alpha'],
  // The engine loads it as a BatchNormalization (engine/layers/equivalents.ts).
  Normalization: () => ['mean', 'variance', 'count'],
};

/** The weight names a layer of this class and config owns; undefined for a class not in the table. */
export function expectedWeightNames(className: string, config: unknown): string[] | undefined {
  const rule = TABLE[className];
  return rule ? rule(isObject(config) ? config : {}) : undefined;
}

/** Keras' `to_snake_case`, which names each layer's group in a `.keras` weights file. */
export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

interface LayerInfo {
  readonly className: string;
  readonly config: Config;
}

/** Every layer of a translated topology by name, nested models included (tfjs names their weights flat). */
export function layersByName(modelTopology: Record<string, unknown>): Map<string, LayerInfo> {
  const out = new Map<string, LayerInfo>();
  const walk = (model: unknown) => {
    const layers = isObject(model) && isObject(model.config) ? model.config.layers : undefined;
    if (!Array.isArray(layers)) return;
    for (const l of layers) {
      if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) continue;
      const name = typeof l.config.name === 'string' ? l.config.name : l.name;
      if (typeof name === 'string') out.set(name, { className: l.class_name, config: l.config });
      if (Array.isArray(l.config.layers)) walk({ config: l.config });
    }
  };
  walk(modelTopology);
  return out;
}

/**
 * Weights and topology must describe the same model: each weight belongs to a layer, and each layer
 * whose weights this table knows has all of them. Shapes are left to tfjs, which checks them on load.
 */
export function assertWeightsMatchLayers(modelTopology: Record<string, unknown>, names: readonly string[]): void {
  const layers = layersByName(modelTopology);
  const present = new Set(names);
  for (const name of names) {
    const layer = name.split('/')[0]!;
    if (!layers.has(layer)) throw new UnprocessableError(`weight "${name}" belongs to no layer of the model (no layer "${layer}")`);
  }
  for (const [layer, info] of layers) {
    const missing = (expectedWeightNames(info.className, info.config) ?? []).map((w) => `${layer}/${w}`).filter((n) => !present.has(n));
    if (missing.length > 0) throw new UnprocessableError(`missing weight${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}`);
  }
}
