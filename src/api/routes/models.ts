import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, ListQuery, pageOf, problems, type IdParamsT, type ListQueryT } from '../schemas/common';
import { ModelList, ModelUpload } from '../schemas/models';
import * as models from '../services/models';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function modelsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.post(
    '/models',
    {
      config: { multipartBody: ModelUpload },
      schema: {
        tags: ['models'],
        summary: 'Upload a model (multipart)',
        description:
          'Streams the file to the blob store (413 over MAX_UPLOAD_BYTES), then a worker parses it, checks it is a ' +
          'supported classifier and stores its canonical form. Answers 201 with the model when that finishes within ' +
          'IMPORT_WAIT_MS, else 202 with the model (status pending) and its jobId to poll. An unusable file is a 4xx ' +
          'and nothing is kept.',
        response: { 201: Type.Ref('Model'), 202: Type.Ref('Model'), ...problems(400, 401, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const { model, ready } = await models.uploadModel(deps, request, ownerOf(request));
      return reply
        .code(ready ? 201 : 202)
        .header('location', `/models/${model.id}`)
        .send(model);
    },
  );

  app.get<{ Querystring: ListQueryT }>(
    '/models',
    { schema: { tags: ['models'], summary: 'List models', querystring: ListQuery, response: { 200: ModelList, ...problems(400, 401, 503) } } },
    async (request) => models.listModels(deps, ownerOf(request), pageOf(request.query)),
  );

  app.get<{ Params: IdParamsT }>(
    '/models/:id',
    { schema: { tags: ['models'], summary: 'Get a model', params: IdParams, response: { 200: Type.Ref('Model'), ...problems(400, 401, 404, 503) } } },
    async (request) => models.getModel(deps, request.params.id, ownerOf(request)),
  );

  app.delete<{ Params: IdParamsT }>(
    '/models/:id',
    {
      schema: {
        tags: ['models'],
        summary: 'Delete a model (409 while jobs use it)',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      await models.deleteModel(deps, request.params.id, ownerOf(request));
      return reply.code(204).send();
    },
  );
}
