import { Type, type Static } from '@sinclair/typebox';
import { ListOf } from './common';

export const DatasetView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    format: Type.String({ description: 'cifar-bin | idx | npz | image-folder' }),
    count: Type.Integer(),
    shape: Type.Array(Type.Integer(), { description: '[N, H, W, C], channels-last' }),
    dtype: Type.String({ description: 'uint8 or float32' }),
    numClasses: Type.Integer(),
    classCounts: Type.Array(Type.Integer()),
    classNames: Type.Optional(Type.Array(Type.String())),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Dataset' },
);
export type DatasetViewT = Static<typeof DatasetView>;

export const DatasetList = ListOf(Type.Ref('Dataset'));

export const DatasetUpload = Type.Object({
  file: Type.Array(Type.String({ format: 'binary' }), { description: 'one or more files (CIFAR batches; IDX images + labels; npz; a zip of class folders)' }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  format: Type.Optional(Type.String({ enum: ['cifar-bin', 'idx', 'npz', 'image-folder'] })),
  labelMode: Type.Optional(Type.String({ enum: ['fine', 'coarse'], description: 'CIFAR-100 label byte to use' })),
});

export const DatasetSamplesQuery = Type.Object(
  {
    offset: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'index of the first image' }),
    count: Type.Integer({ minimum: 1, maximum: 64, default: 12 }),
  },
  { additionalProperties: false },
);
export type DatasetSamplesQueryT = Static<typeof DatasetSamplesQuery>;

export const DatasetSamples = Type.Object({
  total: Type.Integer({ description: 'images in the dataset' }),
  items: Type.Array(
    Type.Object({
      index: Type.Integer(),
      label: Type.Integer(),
      className: Type.Optional(Type.String()),
      png: Type.String({ description: 'the decoded image as a PNG data URL (data:image/png;base64,...)' }),
    }),
  ),
});
export type DatasetSamplesT = Static<typeof DatasetSamples>;
