import type { FastifyInstance } from 'fastify';
import { IdParams, pageOf, problems, type IdParamsT } from '../schemas/common';
import { JobList, JobListQuery, JobView, type JobListQueryT } from '../schemas/jobs';
import * as jobs from '../services/jobs';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function jobsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.get<{ Querystring: JobListQueryT }>(
    '/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first (filters: state, type, resourceId)',
        querystring: JobListQuery,
        response: { 200: JobList, ...problems(400, 401, 503) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return jobs.listJobs(deps, ownerOf(request), filter, pageOf({ limit, cursor }));
    },
  );

  app.get<{ Params: IdParamsT }>(
    '/jobs/:id',
    { schema: { tags: ['jobs'], summary: 'State and progress of a job', params: IdParams, response: { 200: JobView, ...problems(400, 401, 404, 503) } } },
    async (request) => jobs.getJob(deps, request.params.id, ownerOf(request)),
  );

  app.delete<{ Params: IdParamsT }>(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a queued or active job',
        description: '200 when the job is cancelled; 202 when an active job was asked to stop at its next progress report.',
        params: IdParams,
        response: { 200: JobView, 202: JobView, ...problems(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { job, done } = await jobs.cancelJob(deps, request.params.id, ownerOf(request));
      return reply.code(done ? 200 : 202).send(job);
    },
  );
}
