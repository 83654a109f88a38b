/** Schemas shared by every resource: the problem document, ids, pagination. */
import { Type, type Static } from '@sinclair/typebox';

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'URI reference naming the problem kind' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details' },
);
export type ProblemBody = Static<typeof Problem>;

export const ProblemRef = Type.Ref('Problem');

/** Response entries for the error statuses a route can send. */
export function problems(...statuses: number[]): Record<number, typeof ProblemRef> {
  return Object.fromEntries(statuses.map((s) => [s, ProblemRef]));
}

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });
export type IdParamsT = Static<typeof IdParams>;

export const ListQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) },
  { additionalProperties: false },
);
export type ListQueryT = Static<typeof ListQuery>;
