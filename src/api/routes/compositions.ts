import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, problems, type IdParamsT } from '../schemas/common';
import { CompositionRequest, type CompositionRequestT } from '../schemas/compositions';
import { Accepted } from '../schemas/evaluations';
import * as compositions from '../services/compositions';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function compositionsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.post<{ Body: CompositionRequestT }>(
    '/compositions',
    {
      schema: {
        tags: ['compositions'],
        summary: 'Compose modules into a classifier, or replace modules of a composition (a job)',
        description:
          'Either {modules, evalDatasetId?, labelMapping?} or {baseCompositionId, replace, evalDatasetId?}. Labels default to ' +
          "each module's class name; two modules with one label is a 409; different input shapes a 422. The base of a " +
          'replacement is never changed.',
        body: CompositionRequest,
        response: { 202: Accepted, ...problems(400, 401, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const accepted = await compositions.createComposition(deps, request.body, ownerOf(request));
      return reply.code(202).header('location', `/compositions/${accepted.id}`).send(accepted);
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/compositions/:id',
    { schema: { tags: ['compositions'], summary: 'A composition, its modules and metrics', params: IdParams, response: { 200: Type.Ref('Composition'), ...problems(400, 401, 404, 503) } } },
    async (request) => compositions.getComposition(deps, request.params.id, ownerOf(request)),
  );
}
