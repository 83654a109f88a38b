import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { IdParams, ListQuery, pageOf, problems, type IdParamsT, type ListQueryT } from '../schemas/common';
import { DatasetList, DatasetSamples, DatasetSamplesQuery, DatasetUpload, type DatasetSamplesQueryT } from '../schemas/datasets';
import * as datasets from '../services/datasets';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function datasetsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.post(
    '/datasets',
    {
      config: { multipartBody: DatasetUpload },
      schema: {
        tags: ['datasets'],
        summary: 'Upload a dataset (multipart; repeat `file` for several files)',
        description: 'Formats: cifar-bin, idx (gzip allowed), npz, image-folder (zip of class folders); detected when `format` is absent.',
        response: { 201: Type.Ref('Dataset'), ...problems(400, 401, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const ds = await datasets.uploadDataset(deps, request, ownerOf(request));
      return reply.code(201).header('location', `/datasets/${ds.id}`).send(ds);
    },
  );

  app.get<{ Querystring: ListQueryT }>(
    '/datasets',
    { schema: { tags: ['datasets'], summary: 'List datasets', querystring: ListQuery, response: { 200: DatasetList, ...problems(400, 401, 503) } } },
    async (request) => datasets.listDatasets(deps, ownerOf(request), pageOf(request.query)),
  );

  app.get<{ Params: IdParamsT }>(
    '/datasets/:id',
    { schema: { tags: ['datasets'], summary: 'Get a dataset', params: IdParams, response: { 200: Type.Ref('Dataset'), ...problems(400, 401, 404, 503) } } },
    async (request) => datasets.getDataset(deps, request.params.id, ownerOf(request)),
  );

  app.get<{ Params: IdParamsT; Querystring: DatasetSamplesQueryT }>(
    '/datasets/:id/samples',
    {
      schema: {
        tags: ['datasets'],
        summary: 'A few decoded images (PNG data URLs) with their labels',
        description: 'Float32 images are stretched from their own min..max to 0..255 for display.',
        params: IdParams,
        querystring: DatasetSamplesQuery,
        response: { 200: DatasetSamples, ...problems(400, 401, 404, 503) },
      },
    },
    async (request) => datasets.datasetSamples(deps, request.params.id, ownerOf(request), request.query.offset, request.query.count),
  );

  app.delete<{ Params: IdParamsT }>(
    '/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        summary: 'Delete a dataset (409 while jobs read it or decompositions of it exist)',
        params: IdParams,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      await datasets.deleteDataset(deps, request.params.id, ownerOf(request));
      return reply.code(204).send();
    },
  );
}
