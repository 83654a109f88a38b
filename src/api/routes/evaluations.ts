import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, problems, type IdParamsT } from '../schemas/common';
import { Accepted, EvaluationRequest, type EvaluationRequestT } from '../schemas/evaluations';
import * as evaluations from '../services/evaluations';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function evaluationsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.post<{ Body: EvaluationRequestT }>(
    '/evaluations',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'Evaluate a model on a dataset (a job)',
        body: EvaluationRequest,
        response: { 202: Accepted, ...problems(400, 401, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const accepted = await evaluations.createEvaluation(deps, request.body, ownerOf(request));
      return reply.code(202).header('location', `/evaluations/${accepted.id}`).send(accepted);
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/evaluations/:id',
    { schema: { tags: ['evaluations'], summary: 'An evaluation and, once done, its result', params: IdParams, response: { 200: Type.Ref('Evaluation'), ...problems(400, 401, 404, 503) } } },
    async (request) => evaluations.getEvaluation(deps, request.params.id, ownerOf(request)),
  );
}
