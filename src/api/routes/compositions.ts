import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, ListQuery, pageOf, problems, type IdParamsT, type ListQueryT } from '../schemas/common';
import { CompositionList, CompositionRequest, type CompositionRequestT } from '../schemas/compositions';
import { Accepted } from '../schemas/evaluations';
import * as compositions from '../services/compositions';
import { predict } from '../services/predict';
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
          'replacement is never changed, and must not have failed or been cancelled (409). Each continuous-learning dataset must ' +
          "have the modules' input shape and serve at least one label (422).",
        body: CompositionRequest,
        response: { 202: Accepted, ...problems(400, 401, 404, 409, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const accepted = await compositions.createComposition(deps, request.body, ownerOf(request));
      return reply.code(202).header('location', `/compositions/${accepted.id}`).send(accepted);
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/compositions/:id',
    {
      schema: {
        tags: ['compositions'],
        summary: 'A composition, its modules and metrics',
        params: IdParams,
        response: { 200: Type.Ref('Composition'), ...problems(400, 401, 404, 503) },
      },
    },
    async (request) => compositions.getComposition(deps, request.params.id, ownerOf(request)),
  );

  app.get<{ Querystring: ListQueryT }>(
    '/compositions',
    {
      schema: {
        tags: ['compositions'],
        summary: 'List compositions, newest first',
        querystring: ListQuery,
        response: { 200: CompositionList, ...problems(400, 401, 503) },
      },
    },
    async (request) => compositions.listCompositions(deps, ownerOf(request), pageOf(request.query)),
  );

  app.delete<{ Params: IdParamsT }>(
    '/compositions/:id',
    {
      schema: {
        tags: ['compositions'],
        summary: 'Delete a composition with its evaluations (409 while a job runs on it)',
        description: 'The modules it reused stay; module versions that continuous learning made for it alone go with it.',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      await compositions.deleteComposition(deps, request.params.id, ownerOf(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParamsT }>(
    '/compositions/:id/predict',
    {
      config: {
        multipartBody: Type.Object({ image: Type.Array(Type.String({ format: 'binary' }), { description: 'PNG or JPEG images (repeatable, up to 64)' }) }),
      } as object,
      schema: {
        tags: ['compositions'],
        summary: 'Top-5 labels for images (multipart `image`) or raw pixel tensors (JSON {inputs: number[N][H][W][C]})',
        description:
          "Inputs are raw pixels (as in the datasets); each module applies its own model's preprocessing. Images of another " +
          'size are resized (bilinear) to the input shape. Probability = P_c of the module; ranking is by margin. A composition ' +
          'whose job failed or was cancelled, or whose continuous learning still runs, is a 409; inputs that drive a module ' +
          'to non-finite values a 422.',
        params: IdParams,
        response: {
          200: Type.Object({
            predictions: Type.Array(
              Type.Array(Type.Object({ label: Type.String(), classIndex: Type.Integer(), probability: Type.Number(), margin: Type.Number() })),
            ),
          }),
          202: Type.Object({ jobId: Type.String() }),
          ...problems(400, 401, 404, 409, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const out = await predict(deps, request, request.params.id, ownerOf(request));
      if (!out.ready) return reply.code(202).header('location', `/jobs/${out.jobId}`).send({ jobId: out.jobId });
      return { predictions: out.predictions };
    },
  );
}
