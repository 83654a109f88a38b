import { Type, type Static } from '@sinclair/typebox';
import { ClassCounts, FilterId, ListOf, PageQuery } from './common';

export const EvaluationRequest = Type.Object(
  {
    modelId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'the model to evaluate (or compositionId)' })),
    compositionId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'the composition to evaluate (or modelId)' })),
    datasetId: Type.String({ minLength: 1, maxLength: 100 }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000, description: 'evaluate only the first `limit` images' })),
    labelMapping: Type.Optional(
      Type.Record(Type.String({ maxLength: 200 }), Type.String({ minLength: 1, maxLength: 200 }), {
        maxProperties: 10_000,
        description:
          'compositions only: dataset class name -> composition label. Without it classes match labels by name, or, for a dataset ' +
          "without class names whose names match nothing, by the modules' class index.",
      }),
    ),
    baseline: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          "compositions only: also score the model restricted to the composition's classes (result.baseline), when one model serves " +
          'every module. It runs that model over the images once more. A composition made with evalDatasetId has it in its metrics.',
      }),
    ),
  },
  { additionalProperties: false, description: 'exactly one of modelId and compositionId' },
);
export type EvaluationRequestT = Static<typeof EvaluationRequest>;

export const EvaluationResult = Type.Object({
  count: Type.Integer(),
  top1: Type.Number(),
  top5: Type.Number(),
  perClass: Type.Array(Type.Number()),
  classCounts: Type.Optional(ClassCounts),
  confusion: Type.Array(Type.Array(Type.Integer()), { description: 'rows = true class, columns = predicted' }),
  labels: Type.Optional(Type.Array(Type.String(), { description: 'compositions: the labels that perClass and the confusion rows follow' })),
  baseline: Type.Optional(
    Type.Object(
      {
        top1: Type.Number(),
        top5: Type.Number(),
        perClass: Type.Optional(Type.Array(Type.Number())),
        confusion: Type.Optional(Type.Array(Type.Array(Type.Integer()))),
      },
      { description: 'compositions of one model: that model restricted to their classes (per label, like the composition)' },
    ),
  ),
});

export const EvaluationView = Type.Object(
  {
    id: Type.String(),
    status: Type.String({ description: 'queued | active | completed | failed | cancelled (the job state)' }),
    modelId: Type.Optional(Type.String()),
    compositionId: Type.Optional(Type.String()),
    datasetId: Type.String(),
    labelMapping: Type.Optional(Type.Record(Type.String(), Type.String())),
    limit: Type.Optional(Type.Integer()),
    baseline: Type.Optional(Type.Boolean({ description: 'compositions: whether the restricted-model baseline was asked for' })),
    jobId: Type.Optional(Type.String()),
    result: Type.Optional(EvaluationResult),
    error: Type.Optional(Type.Object({ title: Type.String(), detail: Type.String() }, { additionalProperties: true })),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Evaluation' },
);
export type EvaluationViewT = Static<typeof EvaluationView>;

export const EvaluationList = ListOf(Type.Ref('Evaluation'));

export const EvaluationListQuery = Type.Object(
  { ...PageQuery, modelId: FilterId, compositionId: FilterId, datasetId: FilterId },
  { additionalProperties: false },
);
export type EvaluationListQueryT = Static<typeof EvaluationListQuery>;

export const Accepted = Type.Object({ id: Type.String(), jobId: Type.String() });
