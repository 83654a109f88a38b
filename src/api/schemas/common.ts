/** Schemas shared by every resource: the problem document, ids, pagination. */
import { STATUS_CODES } from 'node:http';
import { Type, type Static, type TSchema } from '@sinclair/typebox';

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

/** A problem response as the service sends it: application/problem+json, not application/json. */
export function problemResponse(description: string): { description: string; content: { 'application/problem+json': { schema: typeof ProblemRef } } } {
  return { description, content: { 'application/problem+json': { schema: ProblemRef } } };
}

/** Response entries for the error statuses a route can send. */
export function problems(...statuses: number[]): Record<number, ReturnType<typeof problemResponse>> {
  return Object.fromEntries(statuses.map((s) => [s, problemResponse(STATUS_CODES[s] ?? 'Error')]));
}

/** Beside every perClass: how many images each class had, so that a 0 over none reads as no measurement. */
export const ClassCounts = Type.Array(Type.Integer({ minimum: 0 }), {
  description: 'images per true class, in the order of perClass: an entry of perClass over 0 images is no measurement',
});

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });
export type IdParamsT = Static<typeof IdParams>;

/** Paging of every list: newest first, `limit` a page, `cursor` = the previous page's `nextCursor`. */
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page' })),
};

export const ListQuery = Type.Object(PageQuery, { additionalProperties: false });
export type ListQueryT = Static<typeof ListQuery>;

/** A page of a list: `nextCursor` is present when more items follow. */
export function ListOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Optional(Type.String({ description: 'pass as cursor for the next page' })) });
}

export function pageOf(query: { limit?: number; cursor?: string }): { limit: number; cursor?: string } {
  return { limit: query.limit ?? 100, ...(query.cursor ? { cursor: query.cursor } : {}) };
}

const Id = Type.String({ minLength: 1, maxLength: 100 });
export const FilterId = Type.Optional(Id);
