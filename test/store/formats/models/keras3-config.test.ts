/**
 * Keras 3 → tfjs-layers config translation, and the weight-name table used for `.keras` files,
 * both checked against what tfjs itself builds from the translated config.
 */
import * as tf from '@tensorflow/tfjs';
import { UnprocessableError } from '../../../../src/errors';
import { DEFAULT_MODEL_PARSE_LIMITS } from '../../../../src/store/formats/models';
import { attrString, openHdf5 } from '../../../../src/store/formats/models/hdf5';
import { toTfjsModelConfig } from '../../../../src/store/formats/models/keras3-config';
import { expectedWeightNames, toSnakeCase } from '../../../../src/store/formats/models/layer-weights';
import { unsafeEntryName } from '../../../../src/store/formats/zip';
import { readFixture, readZipEntry } from './fixtures';

type Json = Record<string, unknown>;

const policy = (name = 'float32') => ({ module: 'keras', class_name: 'DTypePolicy', config: { name }, registered_name: null });
const init = (className: string, config: Json = {}) => ({ module: 'keras.initializers', class_name: className, config, registered_name: null });
const glorot = () => init('GlorotUniform', { seed: null, input_axes: null, output_axes: null });
const tensor = (layer: string) => ({ class_name: '__keras_tensor__', config: { shape: [null], dtype: 'float32', keras_history: [layer, 0, 0] } });

/** A layer as Keras 3 serializes it inside a model config. */
function k3Layer(className: string, name: string, config: Json, inputs?: string | string[], kwargs: Json = {}): Json {
  const args = inputs === undefined ? undefined : Array.isArray(inputs) ? [inputs.map(tensor)] : [tensor(inputs)];
  return {
    module: 'keras.layers',
    class_name: className,
    config: { name, trainable: true, dtype: policy(), ...config },
    registered_name: null,
    build_config: { input_shape: [null, 8, 8, 3] },
    ...(args ? { name, inbound_nodes: [{ args, kwargs }] } : {}),
  };
}

const conv = (extra: Json = {}) => ({
  filters: 4,
  kernel_size: [3, 3],
  strides: [1, 1],
  padding: 'same',
  data_format: 'channels_last',
  dilation_rate: [1, 1],
  groups: 1,
  activation: 'linear',
  use_bias: true,
  kernel_initializer: glorot(),
  bias_initializer: init('Zeros'),
  kernel_regularizer: null,
  bias_regularizer: null,
  activity_regularizer: null,
  kernel_constraint: null,
  bias_constraint: null,
  ...extra,
});
const bn = (extra: Json = {}) => ({
  axis: -1,
  momentum: 0.99,
  epsilon: 0.001,
  center: true,
  scale: true,
  beta_initializer: init('Zeros'),
  gamma_initializer: init('Ones'),
  moving_mean_initializer: init('Zeros'),
  moving_variance_initializer: init('Ones'),
  synchronized: false,
  renorm: false,
  renorm_clipping: null,
  renorm_momentum: 0.99,
  ...extra,
});
/** Depthwise and separable convs have no filters/kernel_* keys; Keras 3 writes depthwise_* and pointwise_* instead. */
const depthwise = (extra: Json = {}) => {
  const { filters: _f, kernel_initializer: _i, kernel_regularizer: _r, kernel_constraint: _c, ...rest } = conv(extra);
  return { ...rest, depth_multiplier: 1, depthwise_initializer: glorot(), depthwise_regularizer: null, depthwise_constraint: null };
};
const dense = (units: number, extra: Json = {}) => ({
  units,
  activation: 'softmax',
  use_bias: true,
  kernel_initializer: glorot(),
  bias_initializer: init('Zeros'),
  kernel_regularizer: null,
  bias_regularizer: null,
  kernel_constraint: null,
  bias_constraint: null,
  quantization_config: null,
  ...extra,
});

/** Keras 3 Sequential, as `model.get_config()` would write it, covering every table entry used by CNNs. */
function keras3Sequential(withInputLayer = true): Json {
  const layers = [
    ...(withInputLayer
      ? [
          {
            module: 'keras.layers',
            class_name: 'InputLayer',
            config: { batch_shape: [null, 8, 8, 3], dtype: 'float32', sparse: false, ragged: false, name: 'input_layer', optional: false },
            registered_name: null,
          },
        ]
      : []),
    k3Layer('Conv2D', 'conv_a', conv({ kernel_regularizer: { module: 'keras.regularizers', class_name: 'L2', config: { l2: 1e-4 }, registered_name: null } })),
    k3Layer('BatchNormalization', 'bn_a', bn({ center: false })),
    k3Layer('DepthwiseConv2D', 'dw', depthwise({ use_bias: false })),
    k3Layer('BatchNormalization', 'bn_b', bn({ scale: false })),
    k3Layer('SeparableConv2D', 'sep', { ...depthwise(), filters: 4, pointwise_initializer: glorot(), pointwise_regularizer: null, pointwise_constraint: null }),
    k3Layer('GlobalAveragePooling2D', 'gap', { data_format: 'channels_last', keepdims: false }),
    k3Layer('Dense', 'fc', dense(10)),
  ];
  return {
    module: 'keras',
    class_name: 'Sequential',
    config: { name: 'seq', trainable: true, dtype: policy(), layers, build_input_shape: [null, 8, 8, 3] },
    registered_name: null,
    build_config: { input_shape: [null, 8, 8, 3] },
    compile_config: null,
  };
}

/** Keras 3 Functional with a residual Add (list of tensors in args) and a Concatenate. */
function keras3Functional(): Json {
  const layers = [
    {
      module: 'keras.layers',
      class_name: 'InputLayer',
      config: { batch_shape: [null, 8, 8, 3], dtype: 'float32', sparse: false, ragged: false, name: 'inp', optional: false },
      registered_name: null,
      name: 'inp',
      inbound_nodes: [],
    },
    k3Layer('Conv2D', 'c1', conv({ filters: 3, use_bias: false }), 'inp'),
    k3Layer('BatchNormalization', 'b1', bn(), 'c1', { mask: null }),
    k3Layer('Add', 'add', {}, ['b1', 'inp']),
    k3Layer('Concatenate', 'cat', { axis: -1 }, ['add', 'inp']),
    k3Layer('Flatten', 'flat', { data_format: 'channels_last' }, 'cat'),
    k3Layer('Dense', 'out', dense(5), 'flat'),
  ];
  return {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: { name: 'fn', trainable: true, layers, input_layers: ['inp', 0, 0], output_layers: ['out', 0, 0] },
    registered_name: 'Functional',
  };
}

/** Every tfjs layer's weight names equal what the `.keras` table predicts, in order. */
function expectTableMatchesTfjs(model: tf.LayersModel, topology: Json): void {
  const configs = new Map(((topology.config as Json).layers as Json[]).map((l) => [(l.config as Json).name as string, l]));
  let checked = 0;
  for (const layer of model.layers) {
    const l = configs.get(layer.name);
    if (!l) continue;
    const predicted = expectedWeightNames(l.class_name as string, l.config) ?? [];
    expect({ layer: layer.name, weights: layer.weights.map((w) => w.originalName) }).toEqual({
      layer: layer.name,
      weights: predicted.map((n) => `${layer.name}/${n}`),
    });
    checked += predicted.length;
  }
  expect(checked).toBeGreaterThan(0);
}

describe('Keras 3 config translation', () => {
  it('turns the ResNet .keras config into the fixture tfjs model.json config (same graph, same layers)', async () => {
    const keras = readFixture('resnet20-cifar10', 'model.keras');
    const raw = JSON.parse((await readZipEntry(keras, 'config.json')).toString('utf8')) as unknown;
    const expected = (JSON.parse(readFixture('resnet20-cifar10', 'tfjs', 'model.json').toString('utf8')) as { modelTopology: { model_config: Json } })
      .modelTopology.model_config;
    // The one difference: Keras 3 Dense no longer has activity_regularizer; its absence means null.
    const fc = ((expected.config as Json).layers as Json[]).find((l) => l.name === 'fc')!.config as Json;
    delete fc.activity_regularizer;
    expect(toTfjsModelConfig(raw, 'config.json')).toEqual(expected);
  });

  it('leaves a Keras 2 config (the FSE KMNIST .h5) unchanged', () => {
    const json = attrString(openHdf5(readFixture('fse-kmnist1', 'kmnist.h5'), DEFAULT_MODEL_PARSE_LIMITS).root, 'model_config')!;
    expect(toTfjsModelConfig(JSON.parse(json), 'model_config')).toEqual(JSON.parse(json));
  });

  it('translates a Keras 3 Sequential that tfjs then builds, with the weight names the table predicts', () => {
    const topology = toTfjsModelConfig(keras3Sequential(), 'test');
    const text = JSON.stringify(topology);
    for (const gone of [
      '"module"',
      'registered_name',
      'DTypePolicy',
      '"batch_shape"',
      'input_axes',
      'synchronized',
      'quantization_config',
      'keepdims',
      'build_config',
      '"optional"',
    ]) {
      expect(text).not.toContain(gone);
    }
    const first = ((topology.config as Json).layers as Json[])[0]!.config as Json;
    expect(first.batch_input_shape).toEqual([null, 8, 8, 3]);
    const conv = ((topology.config as Json).layers as Json[])[1]!.config as Json;
    expect(conv.kernel_regularizer).toEqual({ class_name: 'L1L2', config: { l1: 0, l2: 1e-4 } });
    expect(conv.dtype).toBe('float32');

    const model = tf.models.modelFromJSON(topology as never);
    return model.then((m) => {
      expect(m.inputs[0]!.shape).toEqual([null, 8, 8, 3]);
      expectTableMatchesTfjs(m, topology);
      m.dispose();
    });
  });

  it('gives a Keras 3 Sequential without an InputLayer its input shape from build_input_shape', async () => {
    const topology = toTfjsModelConfig(keras3Sequential(false), 'test');
    const m = await tf.models.modelFromJSON(topology as never);
    expect(m.inputs[0]!.shape).toEqual([null, 8, 8, 3]);
    m.dispose();
  });

  it('translates a Keras 3 Functional with Add/Concatenate inbound lists into Keras 2 nodes', async () => {
    const topology = toTfjsModelConfig(keras3Functional(), 'test');
    const layers = new Map(((topology.config as Json).layers as Json[]).map((l) => [l.name as string, l]));
    expect(layers.get('add')!.inbound_nodes).toEqual([
      [
        ['b1', 0, 0, {}],
        ['inp', 0, 0, {}],
      ],
    ]);
    expect(layers.get('b1')!.inbound_nodes).toEqual([[['c1', 0, 0, {}]]]); // mask: null dropped
    expect((topology.config as Json).input_layers).toEqual([['inp', 0, 0]]);
    const m = await tf.models.modelFromJSON(topology as never);
    expect(m.outputs[0]!.shape).toEqual([null, 5]);
    expectTableMatchesTfjs(m, topology);
    m.dispose();
  });

  it.each([
    ['a subclassed model', { class_name: 'MyModel', config: { layers: [] } }, /not a Sequential or Functional/],
    ['not a config at all', [1, 2, 3], /not a Keras model config/],
    [
      'a tensor passed as a keyword argument',
      {
        class_name: 'Functional',
        config: { layers: [k3Layer('Dense', 'd', dense(2), 'inp', { mask: tensor('inp') })], input_layers: [['inp', 0, 0]], output_layers: [['d', 0, 0]] },
      },
      /keyword argument "mask"/,
    ],
    [
      'two inputs',
      {
        ...keras3Functional(),
        config: {
          ...(keras3Functional().config as Json),
          input_layers: [
            ['inp', 0, 0],
            ['c1', 0, 0],
          ],
        },
      },
      /2 inputs and 1 outputs/,
    ],
  ])('rejects %s with a 422', (_label, raw, detail) => {
    let err: unknown;
    try {
      toTfjsModelConfig(raw, 'test');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnprocessableError);
    expect((err as UnprocessableError).detail).toMatch(detail);
  });
});

describe('.keras weight layout helpers', () => {
  it('snake-cases class names as Keras names weight groups', () => {
    expect(['Conv2D', 'BatchNormalization', 'GlobalAveragePooling2D', 'InputLayer', 'DepthwiseConv2D', 'Dense', 'ZeroPadding2D'].map(toSnakeCase)).toEqual([
      'conv2d',
      'batch_normalization',
      'global_average_pooling2d',
      'input_layer',
      'depthwise_conv2d',
      'dense',
      'zero_padding2d',
    ]);
  });

  it('names weights by class and flags', () => {
    expect(expectedWeightNames('BatchNormalization', { center: false })).toEqual(['gamma', 'moving_mean', 'moving_variance']);
    expect(expectedWeightNames('DepthwiseConv2D', {})).toEqual(['depthwise_kernel', 'bias']);
    expect(expectedWeightNames('Conv2D', { use_bias: false })).toEqual(['kernel']);
    expect(expectedWeightNames('Activation', {})).toBeUndefined();
  });

  it('refuses unsafe zip entry names itself, not only through yauzl', () => {
    expect(['model.json', 'tfjs/model.json', 'a/b..c/d'].map(unsafeEntryName)).toEqual([undefined, undefined, undefined]);
    for (const bad of ['../x', 'a/../../x', '/etc/x', 'C:\\x', 'C:/x', 'a\\b', '', 'a\0b']) expect(unsafeEntryName(bad)).toBeDefined();
  });
});
