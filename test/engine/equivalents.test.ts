/**
 * The TF.js equivalents of Keras layers and activations (src/engine/layers/equivalents.ts) on the
 * paths the family fixtures do not take: a Sequential model whose activation must be expanded into
 * layers (it becomes the equivalent functional model), the Keras 2 meaning of hard_sigmoid, and a
 * fused activation expanded after the layer that carries it.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { withTfjsEquivalents, type Artifacts } from '../../src/engine/layers/equivalents';
import { modelArtifacts } from '../support/tfjs-zip';

type Layers = { class_name: string; config: Record<string, unknown> }[];

/** A Sequential [Dense(4, activation) -> Dense(3, softmax)] with fixed weights, as artifacts whose first activation is `activation`. */
async function sequential(activation: string, kerasVersion: string) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [3],
        units: 4,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        biasInitializer: 'ones',
      }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const a = await modelArtifacts(model);
  const [w1, b1, w2, b2] = model.getWeights().map((w) => w.arraySync() as number[][] | number[]);
  model.dispose();
  const topology = JSON.parse(JSON.stringify(a.modelTopology)) as { config: { layers: Layers }; keras_version?: string };
  topology.config.layers[0].config.activation = activation;
  topology.keras_version = kerasVersion;
  return {
    artifacts: { modelTopology: topology as unknown as Record<string, unknown>, weightSpecs: a.weightSpecs ?? [], weightData: a.weightData as ArrayBuffer },
    /** The reference in plain JS: softmax(W2 . act(W1 . x + b1) + b2). */
    expected: (x: number[], act: (v: number) => number) => {
      const h = (b1 as number[]).map((b, j) => act(x.reduce((s, xi, i) => s + xi * (w1 as number[][])[i][j], b)));
      const z = (b2 as number[]).map((b, k) => h.reduce((s, hj, j) => s + hj * (w2 as number[][])[j][k], b));
      const e = z.map((v) => Math.exp(v - Math.max(...z)));
      return e.map((v) => v / e.reduce((s, u) => s + u, 0));
    },
  };
}

const X = [
  [-4, 0.5, 2],
  [1, -1, 0.25],
  [3, 3, -3],
];

/** The artifacts rewritten, then loaded by tfjs' own loader (loadModel would refuse a non-image input). */
async function predict(artifacts: Artifacts): Promise<{ probs: number[][]; classes: string[] }> {
  const a = await withTfjsEquivalents(artifacts);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: a.modelTopology as never, weightSpecs: a.weightSpecs as tf.io.WeightsManifestEntry[], weightData: a.weightData }),
  );
  const x = tf.tensor2d(X);
  const probs = (model.predict(x) as tf.Tensor).arraySync() as number[][];
  const classes = model.layers.map((l) => l.getClassName());
  x.dispose();
  model.dispose();
  return { probs, classes };
}

function maxDiff(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
}

describe('TF.js equivalents', () => {
  it('expands Keras 3 hard_silu in a Sequential model: x * relu6(x + 3) / 6, as a functional model', async () => {
    const { artifacts, expected } = await sequential('hard_silu', '3.15.1');
    const { probs, classes } = await predict(artifacts);
    expect(classes).toEqual(['InputLayer', 'Dense', 'Rescaling', 'ReLU', 'Multiply', 'Dense']);
    const reference = X.map((x) => expected(x, (v) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6));
    expect(maxDiff(probs, reference)).toBeLessThan(1e-6);
  });

  it('reads hard_sigmoid as Keras 3 defines it in a Keras 3 file, and as Keras 2 (and tfjs) does in a Keras 2 file', async () => {
    const k3 = await sequential('hard_sigmoid', '3.15.1');
    const p3 = await predict(k3.artifacts);
    expect(
      maxDiff(
        p3.probs,
        X.map((x) => k3.expected(x, (v) => Math.min(Math.max(v / 6 + 0.5, 0), 1))),
      ),
    ).toBeLessThan(1e-6);
    const k2 = await sequential('hard_sigmoid', '2.15.0');
    const p2 = await predict(k2.artifacts);
    expect(p2.classes).toEqual(['Dense', 'Dense']);
    expect(
      maxDiff(
        p2.probs,
        X.map((x) => k2.expected(x, (v) => Math.min(Math.max(0.2 * v + 0.5, 0), 1))),
      ),
    ).toBeLessThan(1e-6);
  });

  it('maps silu to swish and leaves a model without Keras-only parts as it is', async () => {
    const silu = await sequential('silu', '3.15.1');
    const p = await predict(silu.artifacts);
    expect(p.classes).toEqual(['Dense', 'Dense']);
    expect(
      maxDiff(
        p.probs,
        X.map((x) => silu.expected(x, (v) => v / (1 + Math.exp(-v)))),
      ),
    ).toBeLessThan(1e-6);
  });
});
