/**
 * The model as an execution plan the engine can intervene in: layers in topological order from
 * the image input to the classifier head, the observation points (every ReLU output) and the head
 * (the last Dense layer, whose weights become the modules' 2-unit heads).
 *
 * Running the plan layer by layer on concrete tensors lets the engine read every observation point
 * in one pass and multiply masks in where the paper switches units off.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';

type Layer = tf.layers.Layer;
type SymbolicTensor = tf.SymbolicTensor;

export interface PlanStep {
  readonly layer: Layer;
  readonly className: string;
  /** Keys of the tensors this step consumes, in call order. */
  readonly inputs: readonly string[];
  readonly output: string;
  /** Index into `observationPoints` when this step's output is one. */
  readonly observation?: number;
}

export interface ObservationPoint {
  /** Name of the layer whose output is observed. */
  readonly layer: string;
  /** Shape of one sample's units, e.g. [32, 32, 16] or [49]. */
  readonly shape: readonly number[];
  readonly units: number;
  /**
   * Layer whose output the paper's pre-activation rule masks: the nearest Conv2D/Dense/
   * DepthwiseConv2D upstream along first inputs (through BatchNormalization and Add).
   */
  readonly preActivationLayer: string;
}

export interface HeadWeights {
  /** [features x classes], row-major. */
  readonly kernel: Float32Array;
  readonly bias: Float32Array;
  readonly features: number;
  readonly classes: number;
}

const RELU_CARRIERS = new Set(['Conv2D', 'Dense', 'DepthwiseConv2D', 'SeparableConv2D']);
/**
 * Activations whose inactive output is exactly 0 (ReLU and its capped form): masking a unit that
 * never fired there changes nothing, so they are observation points. LeakyReLU, ELU, PReLU, swish,
 * sigmoid and tanh give non-zero outputs below 0, so their units are always kept (see
 * src/engine/LAYERS.md).
 */
const ZERO_FLOOR_ACTIVATIONS = new Set(['relu', 'relu6']);
const HEAD_TAIL = new Set(['Softmax', 'Activation', 'Dropout']);

function keyOf(t: SymbolicTensor): string {
  return `${t.sourceLayer.name}:${t.nodeIndex}:${t.tensorIndex}`;
}

function isObservation(layer: Layer): boolean {
  const cls = layer.getClassName();
  if (cls === 'ReLU') return true;
  const activation = (layer.getConfig() as { activation?: string }).activation ?? '';
  if (cls === 'Activation') return ZERO_FLOOR_ACTIVATIONS.has(activation);
  return RELU_CARRIERS.has(cls) && ZERO_FLOOR_ACTIVATIONS.has(activation);
}

export class ModelPlan {
  readonly steps: PlanStep[] = [];
  readonly observationPoints: ObservationPoint[] = [];
  readonly inputKey: string;
  /** Key of the tensor that feeds the head (the features). */
  readonly featuresKey: string;
  /** Per-sample shape of every tensor in the plan, by key. */
  readonly shapes = new Map<string, number[]>();
  /** Index of the last step that reads each tensor key. */
  readonly lastUse = new Map<string, number>();
  readonly head: Layer;

  /** Observed units per input, over every observation point. */
  get observedUnits(): number {
    return this.observationPoints.reduce((a, p) => a + p.units, 0);
  }

  constructor(readonly model: tf.LayersModel) {
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new EngineError('INVALID_MODEL', 'decomposition needs one input and one output');
    }
    this.inputKey = keyOf(model.inputs[0]);
    this.shapes.set(this.inputKey, model.inputs[0].shape.slice(1) as number[]);
    this.head = this.findHead(model.outputs[0]);
    const headInput = this.head.inboundNodes[0].inputTensors[0];
    this.featuresKey = keyOf(headInput);
    this.build(headInput);
    this.steps.forEach((s, i) => s.inputs.forEach((k) => this.lastUse.set(k, i)));
  }

  /** The last Dense layer; only softmax/linear activations and dropout may follow it. */
  private findHead(output: SymbolicTensor): Layer {
    let t = output;
    for (;;) {
      const layer = t.sourceLayer as Layer;
      const cls = layer.getClassName();
      if (cls === 'Dense') {
        const act = (layer.getConfig() as { activation?: string }).activation ?? 'linear';
        if (act !== 'softmax' && act !== 'linear') break;
        return layer;
      }
      if (!HEAD_TAIL.has(cls)) break;
      if (cls === 'Activation' && !['softmax', 'linear'].includes((layer.getConfig() as { activation?: string }).activation ?? '')) break;
      t = layer.inboundNodes[t.nodeIndex].inputTensors[0];
    }
    throw new EngineError('NOT_A_CLASSIFIER', 'the model does not end in a Dense classification layer (optionally followed by softmax)');
  }

  /** Depth-first from the head's input back to the model input, emitting steps in topological order. */
  private build(target: SymbolicTensor): void {
    const done = new Set<string>([this.inputKey]);
    const visiting = new Set<string>();
    const visit = (t: SymbolicTensor): void => {
      const key = keyOf(t);
      if (done.has(key)) return;
      if (visiting.has(key)) throw new EngineError('INVALID_MODEL', `cycle at ${key}`);
      visiting.add(key);
      const layer = t.sourceLayer as Layer;
      const node = layer.inboundNodes[t.nodeIndex];
      if (node.outputTensors.length !== 1) throw new EngineError('INVALID_MODEL', `layer ${layer.name} has several outputs`);
      if ((layer as unknown as { layers?: unknown }).layers) {
        throw new EngineError('INVALID_MODEL', `nested model ${layer.name} is not supported for decomposition`);
      }
      node.inputTensors.forEach(visit);
      this.shapes.set(key, t.shape.slice(1) as number[]);
      const observation = isObservation(layer) ? this.addObservation(layer, t, node.inputTensors) : undefined;
      this.steps.push({ layer, className: layer.getClassName(), inputs: node.inputTensors.map(keyOf), output: key, observation });
      visiting.delete(key);
      done.add(key);
    };
    visit(target);
  }

  private addObservation(layer: Layer, t: SymbolicTensor, inputs: SymbolicTensor[]): number {
    const shape = t.shape.slice(1) as number[];
    if (shape.some((d) => d === null)) throw new EngineError('INVALID_MODEL', `observation point ${layer.name} has an unknown dimension`);
    this.observationPoints.push({
      layer: layer.name,
      shape,
      units: shape.reduce((a, b) => a * b, 1),
      preActivationLayer: RELU_CARRIERS.has(layer.getClassName()) ? layer.name : this.upstreamLinear(inputs[0]),
    });
    return this.observationPoints.length - 1;
  }

  private upstreamLinear(t: SymbolicTensor): string {
    for (let cur = t; ; ) {
      const layer = cur.sourceLayer as Layer;
      const cls = layer.getClassName();
      if (RELU_CARRIERS.has(cls)) return layer.name;
      if (cls !== 'BatchNormalization' && cls !== 'Add') return layer.name;
      cur = layer.inboundNodes[cur.nodeIndex].inputTensors[0];
    }
  }

  /** The head's kernel and bias (copies the caller owns). */
  headWeights(): HeadWeights {
    const [kernel, bias] = this.head.getWeights();
    const [features, classes] = kernel.shape as [number, number];
    return {
      kernel: kernel.dataSync().slice() as Float32Array,
      bias: bias ? (bias.dataSync().slice() as Float32Array) : new Float32Array(classes),
      features,
      classes,
    };
  }
}

export interface RunHooks {
  /**
   * When set, the batch is `groups` equal slices (one per module) and every mask has shape
   * [groups, 1, ...unitShape]: slice g is multiplied by mask g (broadcast, never tiled).
   */
  readonly groups?: number;
  /** Per observation point: a mask multiplied into the ReLU output (post-activation masking). */
  readonly postMasks?: readonly (tf.Tensor | undefined)[];
  /** Per layer name: a mask multiplied into that layer's output (pre-activation masking). */
  readonly preMasks?: ReadonlyMap<string, tf.Tensor>;
  /**
   * Called with each observation point's (masked) output inside the run's tidy scope: tensors it
   * derives are freed with the run unless it `tf.keep`s them.
   */
  readonly observe?: (index: number, value: tf.Tensor) => void;
}

/**
 * Runs the plan on `x` up to the head's input.
 * @returns the features tensor [batch, F]; the caller owns it. Each intermediate is freed after
 *   its last consumer (a masked step's unmasked output at once), so a pass holds only the tensors
 *   still needed, not the whole network's.
 */
export function runToFeatures(plan: ModelPlan, x: tf.Tensor, hooks: RunHooks = {}): tf.Tensor {
  return tf.tidy(() => {
    const values = new Map<string, tf.Tensor>([[plan.inputKey, x]]);
    plan.steps.forEach((step, j) => {
      const args = step.inputs.map((k) => values.get(k) as tf.Tensor);
      let out = step.layer.apply(args.length === 1 ? args[0] : args, { training: false }) as tf.Tensor;
      const pre = hooks.preMasks?.get(step.layer.name);
      // With a ReLU fused into the layer, masking after it equals masking before it (relu(0) = 0).
      if (pre) out = applyMask(out, pre, hooks.groups, args);
      if (step.observation !== undefined) {
        const mask = hooks.postMasks?.[step.observation];
        if (mask) out = applyMask(out, mask, hooks.groups, args);
        hooks.observe?.(step.observation, out);
      }
      values.set(step.output, out);
      for (const k of new Set(step.inputs)) {
        const t = values.get(k);
        if (plan.lastUse.get(k) === j && k !== plan.inputKey && k !== plan.featuresKey && t !== out) {
          t?.dispose();
          values.delete(k);
        }
      }
    });
    return values.get(plan.featuresKey) as tf.Tensor;
  });
}

/** value x mask (per group); frees `value` unless it is one of the step's inputs. */
function applyMask(value: tf.Tensor, mask: tf.Tensor, groups: number | undefined, args: readonly tf.Tensor[]): tf.Tensor {
  let out: tf.Tensor;
  if (!groups) out = value.mul(mask);
  else {
    const grouped = value.reshape([groups, -1, ...value.shape.slice(1)]);
    const masked = grouped.mul(mask);
    out = masked.reshape(value.shape);
    grouped.dispose();
    masked.dispose();
  }
  if (!args.includes(value)) value.dispose();
  return out;
}
