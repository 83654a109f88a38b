/**
 * The one list of Keras layer classes the engine supports. A model using anything else is
 * refused before it is loaded, naming the layer. Checked after the rewrites of ./equivalents.ts, so
 * Keras layers that have a TF.js equivalent (SpatialDropout2D, Normalization) are not listed.
 */
export const SUPPORTED_LAYERS: readonly string[] = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'Dense',
  'BatchNormalization',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'PReLU',
  'Softmax',
  'Add',
  'Multiply',
  'Concatenate',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'Flatten',
  'Reshape',
  'ZeroPadding2D',
  'Cropping2D',
  'Dropout',
  'Rescaling',
];

const SUPPORTED = new Set(SUPPORTED_LAYERS);

export interface LayerRef {
  readonly name: string;
  readonly className: string;
}

/** Layers of a tfjs-layers topology ({class_name, config: {layers}}), nested models flattened. */
export function topologyLayers(topology: Record<string, unknown>): LayerRef[] {
  const out: LayerRef[] = [];
  const visit = (node: unknown): void => {
    const n = node as { class_name?: string; config?: { name?: string; layers?: unknown[] } };
    for (const layer of n.config?.layers ?? []) {
      const l = layer as { class_name?: string; config?: { name?: string; layers?: unknown[] } };
      if (Array.isArray(l.config?.layers)) visit(l);
      else out.push({ name: String(l.config?.name ?? '?'), className: String(l.class_name ?? '?') });
    }
  };
  visit(topology);
  return out;
}

/** Layers whose class is not supported (empty when all are). */
export function unsupportedLayers(topology: Record<string, unknown>): LayerRef[] {
  return topologyLayers(topology).filter((l) => !SUPPORTED.has(l.className));
}
