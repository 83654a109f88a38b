import { Type, type Static } from '@sinclair/typebox';

export const JobState = Type.Union(
  ['queued', 'active', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s)),
);

export const JobView = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    state: JobState,
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    stage: Type.Optional(Type.String()),
    attempts: Type.Integer(),
    cancelRequested: Type.Boolean(),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Object({ title: Type.String(), detail: Type.String() }, { additionalProperties: true })),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Job' },
);
export type JobViewT = Static<typeof JobView>;
