/**
 * Turns a Keras model config into the Keras 2 / tfjs-layers schema that `tf.models.modelFromJSON`
 * accepts. In: the parsed `{class_name, config}` of any Keras version. Out: a fresh object; the
 * input is never mutated.
 *
 * The schema is recognised piece by piece from its shape, never from `keras_version`: files exist
 * whose version says 3.x while the config is Keras 2 (hand-written converters), and tf.keras 2.13+
 * already wrote some Keras 3 habits (`module`, `registered_name`). So every rule below applies
 * only where its Keras 3 shape is present, and a Keras 2 config passes through unchanged.
 */
import { UnprocessableError } from '../../../errors';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);
// Keras 3 layer-config keys with no tfjs meaning. tfjs ignores unknown keys today; dropping them
// keeps the stored topology clean and safe against stricter tfjs versions.
const DROPPED_LAYER_KEYS = new Set([
  'optional',
  'quantization_config',
  'synchronized',
  'renorm',
  'renorm_clipping',
  'renorm_momentum',
  'lora_rank',
  'lora_alpha',
]);
// Variables are float32 under mixed policies; tfjs computes in float32 only.
const POLICY_DTYPES: Record<string, string> = { mixed_float16: 'float32', mixed_bfloat16: 'float32' };

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A Keras 3 / tf.keras 2.13+ serialized object: `{module, class_name, config, registered_name}`. */
const isSerializedObject = (v: JsonObject) => typeof v.class_name === 'string' && ('module' in v || 'registered_name' in v);

const isKerasTensor = (v: unknown): v is JsonObject => isObject(v) && v.class_name === '__keras_tensor__';

/** Entry point: checks the model's outer shape and translates it. */
export function toTfjsModelConfig(raw: unknown, source: string): Record<string, unknown> {
  // Keras <= 2.1 wrote a Sequential's config as the bare list of its layers.
  if (isObject(raw) && raw.class_name === 'Sequential' && Array.isArray(raw.config)) raw = { ...raw, config: { layers: raw.config } };
  if (!isObject(raw) || typeof raw.class_name !== 'string' || !isObject(raw.config)) {
    throw new UnprocessableError(`${source} is not a Keras model config ({class_name, config} expected)`);
  }
  if (!MODEL_CLASSES.has(raw.class_name)) {
    throw new UnprocessableError(
      `${source} describes a ${JSON.stringify(raw.class_name)}, not a Sequential or Functional model (subclassed models cannot be loaded)`,
    );
  }
  const model = translateModel(raw.class_name, raw.config, source);
  assertSingleInputOutput(model);
  return model;
}

function translateModel(className: string, config: JsonObject, source: string): JsonObject {
  if (!Array.isArray(config.layers) || config.layers.length === 0) {
    throw new UnprocessableError(`${source}: the model config has no layers`);
  }
  const layers = config.layers.map((l, i) => translateLayer(l, `${source}: layer ${i}`));
  const out: JsonObject = { name: typeof config.name === 'string' ? config.name : 'model', layers };
  if (typeof config.trainable === 'boolean') out.trainable = config.trainable;
  if (className === 'Sequential') {
    addSequentialInputShape(layers, config);
  } else {
    out.input_layers = tensorRefList(config.input_layers, `${source}: input_layers`);
    out.output_layers = tensorRefList(config.output_layers, `${source}: output_layers`);
  }
  return { class_name: className, config: out };
}

/** Keras 3 Sequential models built without an Input keep their input shape only at model level. */
function addSequentialInputShape(layers: Json[], config: JsonObject): void {
  const first = layers[0];
  const shape = config.build_input_shape;
  if (!isObject(first) || !isObject(first.config) || !Array.isArray(shape)) return;
  if (first.class_name === 'InputLayer' || 'batch_input_shape' in first.config) return;
  first.config.batch_input_shape = shape;
}

/** Keras 3 writes one input as a bare `[name, node, tensor]`; tfjs wants a list of them. */
function tensorRefList(v: Json | undefined, what: string): Json[] {
  if (!Array.isArray(v)) throw new UnprocessableError(`${what} is missing`);
  const list = typeof v[0] === 'string' ? [v] : v;
  for (const ref of list) {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string') throw new UnprocessableError(`${what} holds a malformed reference ${JSON.stringify(ref)}`);
  }
  return list.map((ref) => (ref as Json[]).slice(0, 3));
}

function translateLayer(layer: Json, what: string): JsonObject {
  if (!isObject(layer) || typeof layer.class_name !== 'string' || !isObject(layer.config)) {
    throw new UnprocessableError(`${what} is not a {class_name, config} object`);
  }
  const name = typeof layer.name === 'string' ? layer.name : layer.config.name;
  const where = `${what} (${typeof name === 'string' ? name : '?'})`;
  let config: JsonObject;
  if (MODEL_CLASSES.has(layer.class_name)) {
    // A nested model: its config is a whole model config.
    config = translateModel(layer.class_name, layer.config, where).config as JsonObject;
  } else {
    config = translateLayerConfig(layer.config);
  }
  const out: JsonObject = { class_name: layer.class_name, config };
  if (typeof layer.name === 'string') out.name = layer.name;
  if (Array.isArray(layer.inbound_nodes)) out.inbound_nodes = layer.inbound_nodes.map((n) => translateNode(n, where));
  return out;
}

function translateLayerConfig(config: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(config)) {
    if (DROPPED_LAYER_KEYS.has(key)) continue;
    if (key === 'keepdims') {
      // false is tfjs' only behaviour; true stays for the engine, which rewrites it as pooling + Reshape.
      if (value === true) out.keepdims = true;
      continue;
    }
    if (key === 'batch_shape') {
      if (!('batch_input_shape' in config)) out.batch_input_shape = value;
      continue;
    }
    if (key === 'dtype') {
      out.dtype = translateDtype(value);
      continue;
    }
    out[key] = translateValue(value);
  }
  return out;
}

function translateDtype(v: Json): Json {
  if (!isObject(v)) return v;
  const name = isObject(v.config) ? v.config.name : undefined;
  if (typeof name !== 'string') return 'float32';
  return POLICY_DTYPES[name] ?? name;
}

/** Initializers, regularizers, constraints and activations: Keras 3 wrappers become `{class_name, config}`. */
function translateValue(v: Json): Json {
  if (Array.isArray(v)) return v.map(translateValue);
  if (!isObject(v)) return v;
  if (isSerializedObject(v)) {
    const config = isObject(v.config) ? translateObjectConfig(v.config) : (v.config ?? {});
    return regularizerAlias(v.class_name as string, config);
  }
  if (typeof v.class_name === 'string' && 'config' in v && isObject(v.config)) {
    return regularizerAlias(v.class_name, translateObjectConfig(v.config));
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, translateValue(x)]));
}

function translateObjectConfig(config: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(config)) {
    // Keras 3 initializer keys that tfjs does not know and that are null by default.
    if ((k === 'input_axes' || k === 'output_axes') && x === null) continue;
    out[k] = k === 'dtype' ? translateDtype(x) : translateValue(x);
  }
  return out;
}

/** tfjs registers only L1L2; Keras 2.3+ and 3 serialize plain L1/L2 under their own names. */
function regularizerAlias(className: string, config: Json): JsonObject {
  const c = isObject(config) ? config : {};
  if (className === 'L1' || className === 'l1') return { class_name: 'L1L2', config: { l1: c.l1 ?? 0.01, l2: 0 } };
  if (className === 'L2' || className === 'l2') return { class_name: 'L1L2', config: { l1: 0, l2: c.l2 ?? 0.01 } };
  return { class_name: className, config };
}

/**
 * Keras 3 node `{args: [tensor | [tensor, ...]], kwargs}` → Keras 2 node `[[layer, node, tensor, kwargs], ...]`.
 * A Keras 2 node (already a list) is returned as it is.
 */
function translateNode(node: Json, what: string): Json {
  if (Array.isArray(node)) return node;
  if (!isObject(node) || !Array.isArray(node.args)) throw new UnprocessableError(`${what}: malformed inbound node ${JSON.stringify(node).slice(0, 200)}`);
  const kwargs: JsonObject = {};
  for (const [k, v] of Object.entries(isObject(node.kwargs) ? node.kwargs : {})) {
    if (v === null) continue;
    if (JSON.stringify(v).includes('"__keras_tensor__"')) {
      throw new UnprocessableError(`${what}: a tensor is passed through keyword argument ${JSON.stringify(k)}, which TF.js cannot express`);
    }
    kwargs[k] = v;
  }
  const refs: Json[] = [];
  const collect = (a: Json) => {
    if (Array.isArray(a)) return a.forEach(collect);
    if (!isKerasTensor(a)) return;
    const history = isObject(a.config) ? a.config.keras_history : undefined;
    if (!Array.isArray(history) || typeof history[0] !== 'string' || typeof history[1] !== 'number' || typeof history[2] !== 'number') {
      throw new UnprocessableError(`${what}: an input tensor has no valid keras_history`);
    }
    refs.push([history[0], history[1], history[2], kwargs]);
  };
  node.args.forEach(collect);
  if (refs.length === 0) throw new UnprocessableError(`${what}: an inbound node has no input tensor`);
  return refs;
}

/** The engine handles only single-input, single-output classifiers; say so early when it is visible here. */
function assertSingleInputOutput(model: JsonObject): void {
  const config = model.config as JsonObject;
  const ins = Array.isArray(config.input_layers) ? config.input_layers.length : 1;
  const outs = Array.isArray(config.output_layers) ? config.output_layers.length : 1;
  if (ins !== 1 || outs !== 1) {
    throw new UnprocessableError(`the model has ${ins} inputs and ${outs} outputs; only single-input, single-output classifiers are supported`);
  }
}
