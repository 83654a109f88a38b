import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, pageOf, problems, type IdParamsT } from '../schemas/common';
import {
  DecompositionList,
  DecompositionListQuery,
  DecompositionRequest,
  ModuleList,
  ModuleListQuery,
  type DecompositionListQueryT,
  type DecompositionRequestT,
  type ModuleListQueryT,
} from '../schemas/decompositions';
import { Accepted } from '../schemas/evaluations';
import * as decompositions from '../services/decompositions';
import { exportModuleZip } from '../services/module-export';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function decompositionsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.post<{ Body: DecompositionRequestT }>(
    '/decompositions',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'Decompose a model into one module per class (a job)',
        description:
          'Concern samples come from datasetId (seeded), metrics from evalDatasetId: with `classes`, the model and the ' +
          "modules' composition are scored on the images of those classes (one-vs-rest on every image). Options follow ALGORITHM.md: " +
          'samplesPerClass, tanglingRatio, tau, maskPoint, backtrack, delta, confidentOnly, seed.',
        body: DecompositionRequest,
        response: { 202: Accepted, ...problems(400, 401, 404, 409, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const accepted = await decompositions.createDecomposition(deps, request.body, ownerOf(request));
      return reply.code(202).header('location', `/decompositions/${accepted.id}`).send(accepted);
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/decompositions/:id',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'A decomposition, its modules and metrics',
        params: IdParams,
        response: { 200: Type.Ref('Decomposition'), ...problems(400, 401, 404, 503) },
      },
    },
    async (request) => decompositions.getDecomposition(deps, request.params.id, ownerOf(request)),
  );

  app.get<{ Querystring: DecompositionListQueryT }>(
    '/decompositions',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'List decompositions, newest first (filters: modelId, datasetId)',
        querystring: DecompositionListQuery,
        response: { 200: DecompositionList, ...problems(400, 401, 503) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return decompositions.listDecompositions(deps, ownerOf(request), filter, pageOf({ limit, cursor }));
    },
  );

  app.delete<{ Params: IdParamsT }>(
    '/decompositions/:id',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'Delete a decomposition with its modules (409 while a job runs on it or a composition uses its modules)',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      await decompositions.deleteDecomposition(deps, request.params.id, ownerOf(request));
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: ModuleListQueryT }>(
    '/modules',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'List modules across decompositions, newest first (filters: decompositionId, modelId, classIndex, className)',
        querystring: ModuleListQuery,
        response: { 200: ModuleList, ...problems(400, 401, 503) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return decompositions.listModules(deps, ownerOf(request), filter, pageOf({ limit, cursor }));
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/modules/:id',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'A module: kept units per layer, one-vs-rest accuracy',
        params: IdParams,
        response: { 200: Type.Ref('Module'), ...problems(400, 401, 404, 503) },
      },
    },
    async (request) => decompositions.getModule(deps, request.params.id, ownerOf(request)),
  );

  app.get<{ Params: IdParamsT }>(
    '/modules/:id/export',
    {
      schema: {
        tags: ['decompositions'],
        summary: 'The module as a standalone TF.js layers model (zip: model.json + weights.bin)',
        description:
          'Input: raw pixels [N,H,W,C] (float32 0..255; the preprocessing is folded in). Output: P(class) [N,1]. Loadable ' +
          'by plain @tensorflow/tfjs. Built on first request (202 with the job while it builds).',
        params: IdParams,
        response: {
          200: { description: 'The module (model.json + weights.bin)', content: { 'application/zip': { schema: Type.String({ format: 'binary' }) } } },
          202: { description: 'Being built: the job to wait for', content: { 'application/json': { schema: Accepted } } },
          ...problems(400, 401, 404, 503),
        },
      },
    },
    async (request, reply) => {
      const out = await exportModuleZip(deps, request.params.id, ownerOf(request));
      if (!out.ready) return reply.code(202).header('location', `/jobs/${out.jobId}`).send({ id: out.id, jobId: out.jobId });
      return reply.type('application/zip').header('content-disposition', `attachment; filename="${out.filename}"`).send(out.stream);
    },
  );
}
