import { Type, type Static } from '@sinclair/typebox';

export const EvaluationRequest = Type.Object(
  {
    modelId: Type.String({ minLength: 1, maxLength: 100 }),
    datasetId: Type.String({ minLength: 1, maxLength: 100 }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000, description: 'evaluate only the first `limit` images' })),
  },
  { additionalProperties: false },
);
export type EvaluationRequestT = Static<typeof EvaluationRequest>;

export const EvaluationResult = Type.Object({
  count: Type.Integer(),
  top1: Type.Number(),
  top5: Type.Number(),
  perClass: Type.Array(Type.Number()),
  confusion: Type.Array(Type.Array(Type.Integer()), { description: 'rows = true class, columns = predicted' }),
});

export const EvaluationView = Type.Object(
  {
    id: Type.String(),
    status: Type.String({ description: 'queued | active | completed | failed | cancelled (the job state)' }),
    modelId: Type.Optional(Type.String()),
    datasetId: Type.String(),
    limit: Type.Optional(Type.Integer()),
    jobId: Type.Optional(Type.String()),
    result: Type.Optional(EvaluationResult),
    error: Type.Optional(Type.Object({ title: Type.String(), detail: Type.String() }, { additionalProperties: true })),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Evaluation' },
);
export type EvaluationViewT = Static<typeof EvaluationView>;

export const Accepted = Type.Object({ id: Type.String(), jobId: Type.String() });
