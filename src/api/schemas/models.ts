import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ListOf } from './common';

export const Preprocessing = Type.Object(
  {
    scale: Type.Number({ exclusiveMinimum: 0, maximum: 1e6, default: 1 }),
    mean: Type.Optional(Type.Array(Type.Number({ minimum: -1e6, maximum: 1e6 }), { minItems: 1, maxItems: 4 })),
    std: Type.Optional(Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 1e6 }), { minItems: 1, maxItems: 4 })),
  },
  {
    $id: 'Preprocessing',
    additionalProperties: false,
    description: 'input = (pixel * scale - mean) / std, per channel',
  },
);
export type PreprocessingT = Static<typeof Preprocessing>;

export const ClassNames = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 100_000, uniqueItems: true });

export const LayerSummary = Type.Object({
  name: Type.String(),
  type: Type.String(),
  outputShape: Type.Array(Type.Union([Type.Integer(), Type.Null()])),
});

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const ModelView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    format: Type.String({ description: 'keras | h5 | tfjs (zip until inspected)' }),
    status: Type.String({ description: 'pending while the import job runs, then ready; failed or cancelled when the import job was' }),
    inputShape: Nullable(Type.Array(Type.Integer())),
    numClasses: Nullable(Type.Integer()),
    params: Nullable(Type.Integer()),
    layers: Nullable(Type.Array(LayerSummary)),
    preprocessing: Preprocessing,
    classNames: Nullable(Type.Array(Type.String())),
    sizeBytes: Type.Integer(),
    sha256: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    jobId: Type.Optional(Type.String({ description: 'the job that inspects the upload' })),
  },
  { $id: 'Model' },
);
export type ModelViewT = Static<typeof ModelView>;

export const ModelList = ListOf(Type.Ref('Model'));

/** Documentation of the multipart body (multipart is parsed by a stream, not by a validator). */
export const ModelUpload = Type.Object({
  file: Type.String({ format: 'binary', description: 'a Keras .keras zip, a Keras HDF5 .h5, or a TF.js layers model zip' }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  preprocessing: Type.Optional(Type.String({ description: 'JSON {"scale": number, "mean": number[], "std": number[]}' })),
  classNames: Type.Optional(Type.String({ description: 'JSON string array' })),
});
