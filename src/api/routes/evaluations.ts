import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, pageOf, problems, type IdParamsT } from '../schemas/common';
import { Accepted, EvaluationList, EvaluationListQuery, EvaluationRequest, type EvaluationListQueryT, type EvaluationRequestT } from '../schemas/evaluations';
import * as evaluations from '../services/evaluations';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function evaluationsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.post<{ Body: EvaluationRequestT }>(
    '/evaluations',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'Evaluate a model or a composition on a dataset (a job)',
        description:
          'Exactly one of modelId and compositionId. A composition is scored on the images of the classes that serve its labels ' +
          '(by class name, labelMapping, or, for a dataset without names, class index); a dataset none of whose classes match is a 422. A composition whose job failed or was cancelled, or whose continuous ' +
          'learning still runs, is a 409.',
        body: EvaluationRequest,
        response: { 202: Accepted, ...problems(400, 401, 404, 409, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const accepted = await evaluations.createEvaluation(deps, request.body, ownerOf(request));
      return reply.code(202).header('location', `/evaluations/${accepted.id}`).send(accepted);
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/evaluations/:id',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'An evaluation and, once done, its result',
        params: IdParams,
        response: { 200: Type.Ref('Evaluation'), ...problems(400, 401, 404, 503) },
      },
    },
    async (request) => evaluations.getEvaluation(deps, request.params.id, ownerOf(request)),
  );

  app.get<{ Querystring: EvaluationListQueryT }>(
    '/evaluations',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'List evaluations, newest first (filters: modelId, compositionId, datasetId)',
        querystring: EvaluationListQuery,
        response: { 200: EvaluationList, ...problems(400, 401, 503) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return evaluations.listEvaluations(deps, ownerOf(request), filter, pageOf({ limit, cursor }));
    },
  );

  app.delete<{ Params: IdParamsT }>(
    '/evaluations/:id',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'Delete an evaluation (409 while its job runs: cancel it first)',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      await evaluations.deleteEvaluation(deps, request.params.id, ownerOf(request));
      return reply.code(204).send();
    },
  );
}
