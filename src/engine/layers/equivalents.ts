/**
 * Keras layers and activations that TF.js lacks or reads differently, rewritten as TF.js built-ins
 * that compute the same outputs, before the model is loaded. In: the artifacts as the file gave them
 * (tfjs-layers schema, Keras class names). Out: new artifacts that plain `tf.loadLayersModel` loads
 * with Keras' semantics; the input is never mutated, and a model needing no rewrite comes back as
 * it is. Everything TF.js builds itself stays TF.js's: only what it refuses or would compute
 * differently is touched.
 *
 *   SpatialDropout2D/3D          -> Dropout (both are the identity at inference)
 *   Normalization(mean, var)     -> BatchNormalization without scale and offset, weights renamed
 *   ReLU(negative_slope=a)       -> LeakyReLU(alpha=a)   (tfjs' ReLU has no slope: it would ignore it)
 *   LeakyReLU(negative_slope=a)  -> LeakyReLU(alpha=a)   (Keras 3 renamed the key)
 *   activation 'silu'            -> 'swish'              (Keras 3's name for the same function)
 *   activation 'hard_silu'       -> linear, then Rescaling(1/6, 0.5) -> ReLU(max 1) -> Multiply with x
 *   activation 'hard_sigmoid'    -> (Keras 3's relu6(x + 3) / 6; tfjs' is Keras 2's 0.2x + 0.5)
 *                                   linear, then Rescaling(1/6, 0.5) -> ReLU(max 1)
 *   activation 'leaky_relu'      -> linear, then LeakyReLU(alpha 0.2)
 *   GlobalPooling2D(keepdims)    -> GlobalPooling2D, then Reshape([1, 1, C]) (C probed with tfjs)
 *
 * Expanded layers keep their own name (their weights are named after it) and the layers added
 * after them are named `<name>__<role>`; every reference to the layer's output then points at the
 * last added layer. The hard sigmoid's ReLU(max 1) becomes an observation point like any ReLU: a
 * gate unit that never opens is 0, so masking it is exact.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface Artifacts {
  readonly modelTopology: Record<string, unknown>;
  readonly weightSpecs: readonly { name: string; shape: number[]; dtype: string }[];
  readonly weightData: ArrayBuffer;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Layers added after a layer: each takes the previous output (`x`) and, for Multiply, the layer's own output. */
interface Added {
  readonly role: string;
  readonly className: string;
  readonly config: JsonObject;
  /** Multiply's second input is the expanded layer's own output. */
  readonly withSource?: boolean;
}

const hardSigmoid = (): Added[] => [
  { role: 'hs_scale', className: 'Rescaling', config: { scale: 1 / 6, offset: 0.5 } },
  { role: 'hs_gate', className: 'ReLU', config: { max_value: 1 } },
];

/** What follows a layer whose activation TF.js lacks (the layer itself then runs linear). */
function activationTail(activation: string, kerasMajor: number): Added[] | undefined {
  if (activation === 'hard_silu' || activation === 'hard_swish') {
    return [...hardSigmoid(), { role: 'hswish', className: 'Multiply', config: {}, withSource: true }];
  }
  if (activation === 'hard_sigmoid' && kerasMajor >= 3) return hardSigmoid();
  if (activation === 'leaky_relu') return [{ role: 'leaky', className: 'LeakyReLU', config: { alpha: 0.2 } }];
  return undefined;
}

const KEEPDIMS_POOLING = new Set(['GlobalAveragePooling2D', 'GlobalMaxPooling2D']);

/**
 * @returns artifacts TF.js loads with the file's semantics
 * @throws EngineError UNSUPPORTED_LAYER when a layer has no TF.js equivalent (named in the message)
 */
export async function withTfjsEquivalents<A extends Artifacts>(artifacts: A): Promise<A> {
  const topology = artifacts.modelTopology as JsonObject;
  const kerasMajor = Number.parseInt(String(topology.keras_version ?? '2'), 10) || 2;
  const renames = new Map<string, string | null>();
  let changed = false;
  const rewriteModel = (model: JsonObject): JsonObject => {
    if (!isObject(model.config) || !Array.isArray(model.config.layers)) return model;
    const layers = model.config.layers.filter(isObject).map((l) => {
      if (isObject(l.config) && Array.isArray(l.config.layers)) return rewriteModel(l);
      const r = rewriteLayer(l, renames);
      if (r !== l) changed = true;
      return r;
    });
    let out: JsonObject = { ...model, config: { ...model.config, layers } };
    const tails = layers.flatMap((l) => (isObject(l.config) ? [tailOf(l, kerasMajor)] : [])).filter((t) => t.added.length > 0);
    if (tails.length > 0) {
      changed = true;
      if (out.class_name === 'Sequential') out = sequentialAsFunctional(out);
      for (const t of tails) out = expand(out, t.name, t.added);
    }
    return out;
  };
  let modelTopology = rewriteModel(topology);
  if (!changed) return artifacts;
  modelTopology = await resolveKeepdims(modelTopology);
  const weights = renameWeights(artifacts, renames);
  return { ...artifacts, modelTopology, ...weights };
}

/** One layer's class and config rewrites (no new layers); weight renames go into `renames` (null: drop). */
function rewriteLayer(layer: JsonObject, renames: Map<string, string | null>): JsonObject {
  const config = layer.config as JsonObject;
  const name = String(config.name ?? layer.name ?? '?');
  const cls = layer.class_name;
  const swap = (className: string, c: JsonObject): JsonObject => ({ ...layer, class_name: className, config: c });
  if (cls === 'SpatialDropout2D' || cls === 'SpatialDropout3D') {
    return swap('Dropout', { name, rate: config.rate ?? 0, trainable: config.trainable ?? true });
  }
  if (cls === 'Normalization') {
    const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
    if (config.invert === true) throw new EngineError('UNSUPPORTED_LAYER', `layer ${name} (Normalization with invert=true) has no TF.js equivalent`);
    if ((config.mean ?? null) !== null || (config.variance ?? null) !== null) {
      throw new EngineError('UNSUPPORTED_LAYER', `layer ${name} (Normalization with mean and variance in its config rather than its weights) is not supported`);
    }
    if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3)) {
      throw new EngineError('UNSUPPORTED_LAYER', `layer ${name} (Normalization over axes ${JSON.stringify(axis)}) is supported only over the channel axis`);
    }
    renames.set(`${name}/mean`, `${name}/moving_mean`);
    renames.set(`${name}/variance`, `${name}/moving_variance`);
    renames.set(`${name}/count`, null);
    // Keras divides by max(sqrt(var), 1e-7); sqrt(var + 1e-14) differs only where var < ~1e-13.
    return swap('BatchNormalization', { name, axis: -1, epsilon: 1e-14, center: false, scale: false, momentum: 0.99, trainable: config.trainable ?? true });
  }
  if (cls === 'ReLU' || cls === 'LeakyReLU') {
    const slope = Number(config.negative_slope ?? (cls === 'LeakyReLU' ? (config.alpha ?? 0.3) : 0));
    const threshold = Number(config.threshold ?? 0);
    if (threshold !== 0) throw new EngineError('UNSUPPORTED_LAYER', `layer ${name} (ReLU with threshold ${threshold}) has no TF.js equivalent`);
    if (cls === 'ReLU' && slope === 0) return layer;
    if ((config.max_value ?? null) !== null)
      throw new EngineError('UNSUPPORTED_LAYER', `layer ${name} (ReLU with both max_value and negative_slope) has no TF.js equivalent`);
    if (cls === 'LeakyReLU' && !('negative_slope' in config)) return layer;
    return swap('LeakyReLU', { name, alpha: slope, trainable: config.trainable ?? true });
  }
  if (config.activation === 'silu') return { ...layer, config: { ...config, activation: 'swish' } };
  return layer;
}

function tailOf(layer: JsonObject, kerasMajor: number): { name: string; added: Added[] } {
  const config = layer.config as JsonObject;
  const name = String(config.name ?? layer.name);
  if (KEEPDIMS_POOLING.has(String(layer.class_name)) && config.keepdims === true) {
    return { name, added: [{ role: 'keepdims', className: 'Reshape', config: { target_shape: [1, 1, -1] } }] };
  }
  const act = typeof config.activation === 'string' ? activationTail(config.activation, kerasMajor) : undefined;
  return { name, added: act ?? [] };
}

/** A Sequential model as the equivalent Functional one (layers chained in order), so layers can branch. */
function sequentialAsFunctional(model: JsonObject): JsonObject {
  const config = model.config as JsonObject;
  const layers: JsonObject[] = (config.layers as JsonObject[]).map((l) => ({ ...l, config: { ...(l.config as JsonObject) } }));
  const first = layers[0].config as JsonObject;
  const out: JsonObject[] = [];
  let prev: string;
  if (layers[0].class_name === 'InputLayer') {
    prev = String(first.name);
    out.push({ ...layers.shift()!, name: prev, inbound_nodes: [] });
  } else {
    if (!Array.isArray(first.batch_input_shape)) throw new EngineError('INVALID_MODEL', 'the Sequential model has no input shape');
    prev = `${String(first.name)}__input`;
    out.push({
      class_name: 'InputLayer',
      name: prev,
      config: { name: prev, batch_input_shape: first.batch_input_shape, dtype: first.dtype ?? 'float32' },
      inbound_nodes: [],
    });
  }
  for (const l of layers) {
    const c = l.config as JsonObject;
    delete c.batch_input_shape;
    out.push({ ...l, name: c.name, inbound_nodes: [[[prev, 0, 0, {}]]] });
    prev = String(c.name);
  }
  return {
    class_name: 'Functional',
    config: {
      name: config.name ?? 'model',
      layers: out,
      input_layers: [[String(out[0].config && (out[0].config as JsonObject).name), 0, 0]],
      output_layers: [[prev, 0, 0]],
    },
  };
}

/** Adds `added` after layer `name` and points every consumer of its output at the last added layer. */
function expand(model: JsonObject, name: string, added: readonly Added[]): JsonObject {
  const config = model.config as JsonObject;
  const layers = config.layers as JsonObject[];
  const at = layers.findIndex((l) => isObject(l.config) && l.config.name === name);
  const layer = layers[at];
  if (Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.length > 1) {
    throw new EngineError(
      'UNSUPPORTED_LAYER',
      `layer ${name} is called ${layer.inbound_nodes.length} times and needs a TF.js equivalent, which a shared layer cannot get`,
    );
  }
  const lastName = `${name}__${added[added.length - 1].role}`;
  const redirect = (ref: Json): Json => (Array.isArray(ref) && ref[0] === name ? [lastName, 0, 0, ...ref.slice(3)] : ref);
  const consumers = layers.map((l) =>
    Array.isArray(l.inbound_nodes) ? { ...l, inbound_nodes: l.inbound_nodes.map((n) => (Array.isArray(n) ? n.map(redirect) : n)) } : l,
  );
  const own = { ...layer, config: { ...(layer.config as JsonObject) } };
  const ownConfig = own.config as JsonObject;
  if (ownConfig.keepdims === true) delete ownConfig.keepdims;
  else ownConfig.activation = 'linear';
  let prev = name;
  const chain: JsonObject[] = added.map((a) => {
    const layerName = `${name}__${a.role}`;
    const refs: Json[] = [[prev, 0, 0, {}]];
    if (a.withSource) refs.push([name, 0, 0, {}]);
    prev = layerName;
    // tfjs finds a functional model's layers by the top-level name (and loops forever when one is missing).
    return { class_name: a.className, name: layerName, config: { name: layerName, trainable: false, ...a.config }, inbound_nodes: [refs] };
  });
  consumers[at] = own;
  consumers.splice(at + 1, 0, ...chain);
  const outputs = Array.isArray(config.output_layers) ? config.output_layers.map(redirect) : config.output_layers;
  return { ...model, config: { ...config, layers: consumers, output_layers: outputs ?? null } };
}

/**
 * Reshape([1, 1, -1]) leaves the channel count unknown, which a following Conv2D refuses: each
 * keepdims Reshape gets its real C, probed by building (without weights) the part of the model
 * that feeds it, one after the other in layer order.
 */
async function resolveKeepdims(model: JsonObject): Promise<JsonObject> {
  const config = model.config as JsonObject;
  const layers = config.layers as JsonObject[];
  for (const l of layers) {
    const c = l.config as JsonObject;
    if (!String(c.name).endsWith('__keepdims') || l.class_name !== 'Reshape') continue;
    const source = String(c.name).slice(0, -'__keepdims'.length);
    const keep = ancestors(layers, source);
    const probe = {
      class_name: 'Functional',
      config: {
        name: 'probe',
        layers: layers.filter((x) => keep.has(String((x.config as JsonObject).name))),
        input_layers: config.input_layers,
        output_layers: [[source, 0, 0]],
      },
    };
    let probeModel: tf.LayersModel;
    try {
      probeModel = await tf.models.modelFromJSON({ modelTopology: probe as never });
    } catch (err) {
      throw new EngineError('INVALID_MODEL', `the model could not be built up to ${source}: ${(err as Error).message}`);
    }
    const channels = probeModel.outputs[0].shape[1];
    probeModel.dispose();
    c.target_shape = [1, 1, channels ?? -1];
  }
  return model;
}

function ancestors(layers: readonly JsonObject[], name: string): Set<string> {
  const byName = new Map(layers.map((l) => [String((l.config as JsonObject).name), l]));
  const seen = new Set<string>();
  const visit = (n: string) => {
    if (seen.has(n)) return;
    seen.add(n);
    const nodes = byName.get(n)?.inbound_nodes;
    if (!Array.isArray(nodes)) return;
    for (const node of nodes) if (Array.isArray(node)) for (const ref of node) if (Array.isArray(ref) && typeof ref[0] === 'string') visit(ref[0]);
  };
  visit(name);
  return seen;
}

/** Weight specs renamed (or dropped, with their bytes) as `renames` says. */
function renameWeights(a: Artifacts, renames: ReadonlyMap<string, string | null>): Pick<Artifacts, 'weightSpecs' | 'weightData'> {
  if (renames.size === 0) return { weightSpecs: a.weightSpecs, weightData: a.weightData };
  const specs: { name: string; shape: number[]; dtype: string }[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const s of a.weightSpecs) {
    const bytes = 4 * s.shape.reduce((x, y) => x * y, 1);
    const to = renames.has(s.name) ? renames.get(s.name) : s.name;
    if (to !== null && to !== undefined) {
      specs.push({ ...s, name: to });
      parts.push(new Uint8Array(a.weightData, offset, bytes));
    }
    offset += bytes;
  }
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { weightSpecs: specs, weightData: data.buffer };
}
