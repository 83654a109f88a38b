import { Type, type Static } from '@sinclair/typebox';
import { JOB_TYPES } from '../../jobs/queues';
import { FilterId, ListOf, PageQuery } from './common';

export const JobState = Type.Union([
  Type.Literal('queued'),
  Type.Literal('active'),
  Type.Literal('completed'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);

export const JobView = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    state: JobState,
    progress: Type.Integer({ minimum: 0, maximum: 100 }),
    stage: Type.Optional(Type.String()),
    attempts: Type.Integer(),
    cancelRequested: Type.Boolean(),
    resourceId: Type.Optional(Type.String({ description: 'the model, evaluation, decomposition, composition or module the job works on' })),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Object({ title: Type.String(), detail: Type.String() }, { additionalProperties: true })),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Job' },
);
export type JobViewT = Static<typeof JobView>;

export const JobList = ListOf(JobView);

export const JobListQuery = Type.Object(
  { ...PageQuery, state: Type.Optional(JobState), type: Type.Optional(Type.Union(JOB_TYPES.map((t) => Type.Literal(t)))), resourceId: FilterId },
  { additionalProperties: false },
);
export type JobListQueryT = Static<typeof JobListQuery>;
