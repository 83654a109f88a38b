import { Type, type Static } from '@sinclair/typebox';
import { ClassCounts, ListOf } from './common';

const Id = Type.String({ minLength: 1, maxLength: 100 });
const Label = Type.String({ minLength: 1, maxLength: 200 });

export const ComposeFromModules = Type.Object(
  {
    modules: Type.Array(Type.Object({ moduleId: Id, label: Type.Optional(Label) }, { additionalProperties: false }), { minItems: 2, maxItems: 1000 }),
    evalDatasetId: Type.Optional(Id),
    labelMapping: Type.Optional(
      Type.Record(Type.String({ maxLength: 200 }), Label, { description: 'evaluation dataset class name -> composition label', maxProperties: 10_000 }),
    ),
    continuousLearning: Type.Optional(
      Type.Object(
        {
          datasetIds: Type.Array(Id, { minItems: 1, maxItems: 100 }),
          labelMappings: Type.Optional(
            Type.Record(Id, Type.Record(Type.String({ maxLength: 200 }), Label, { maxProperties: 10_000 }), {
              maxProperties: 100,
              description:
                'per dataset id (one of datasetIds): class name -> composition label. When given for a dataset, only the classes it names are ' +
                'used from it (two datasets with classes "0".."9" can serve different labels); other datasets use labelMapping or their class names.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ComposeByReplacing = Type.Object(
  {
    baseCompositionId: Id,
    replace: Type.Array(Type.Object({ label: Label, moduleId: Id }, { additionalProperties: false }), { minItems: 1, maxItems: 1000 }),
    evalDatasetId: Type.Optional(Id),
    labelMapping: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), Label, { maxProperties: 10_000 })),
  },
  { additionalProperties: false },
);

export const CompositionRequest = Type.Union([ComposeFromModules, ComposeByReplacing]);
export type ComposeFromModulesT = Static<typeof ComposeFromModules>;
export type ComposeByReplacingT = Static<typeof ComposeByReplacing>;
export type CompositionRequestT = Static<typeof CompositionRequest>;

export const CompositionView = Type.Object(
  {
    id: Type.String(),
    status: Type.String({ description: 'the job state: queued | active | completed | failed | cancelled' }),
    labels: Type.Array(Type.String()),
    modules: Type.Array(Type.Object({ moduleId: Type.String(), label: Type.String() })),
    baseCompositionId: Type.Optional(Type.String()),
    evalDatasetId: Type.Optional(Type.String()),
    jobId: Type.Optional(Type.String()),
    metrics: Type.Optional(
      Type.Object(
        {
          count: Type.Optional(Type.Integer()),
          top1: Type.Optional(Type.Number()),
          top5: Type.Optional(Type.Number()),
          perClass: Type.Optional(Type.Array(Type.Number())),
          classCounts: Type.Optional(ClassCounts),
          confusion: Type.Optional(Type.Array(Type.Array(Type.Integer()))),
          baseline: Type.Optional(
            Type.Object({
              top1: Type.Number(),
              top5: Type.Number(),
              perClass: Type.Optional(Type.Array(Type.Number())),
              confusion: Type.Optional(Type.Array(Type.Array(Type.Integer()))),
            }),
          ),
          energy: Type.Object({ seconds: Type.Number(), kWh: Type.Number(), co2eKg: Type.Number() }, { additionalProperties: true }),
          matricesOmitted: Type.Optional(Type.String({ description: 'why the confusion matrices are not kept (above 100 labels)' })),
        },
        { additionalProperties: true },
      ),
    ),
    error: Type.Optional(Type.Object({ title: Type.String(), detail: Type.String() }, { additionalProperties: true })),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Composition' },
);
export type CompositionViewT = Static<typeof CompositionView>;

export const CompositionList = ListOf(Type.Ref('Composition'));
