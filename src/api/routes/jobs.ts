import type { FastifyInstance } from 'fastify';
import { IdParams, pageOf, problems, type IdParamsT } from '../schemas/common';
import { JobList, JobListQuery, JobView, type JobListQueryT } from '../schemas/jobs';
import { Type } from '@sinclair/typebox';
import * as jobs from '../services/jobs';
import { streamJobEvents } from '../services/job-events';
import type { AppDeps } from '../deps';
import { ownerOf } from './owner';

export async function jobsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  // Open event streams end when the server closes (it would otherwise wait for them).
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const finish of [...streams]) finish();
  });
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

  app.get<{ Params: IdParamsT }>(
    '/jobs/:id/events',
    {
      schema: {
        tags: ['jobs'],
        summary: 'The job as server-sent events, pushed as it changes, until it ends',
        description:
          'A `text/event-stream`: one `job` event with the job view (the body of GET /jobs/:id) at once, then one per ' +
          'change of its state, progress or stage, in order; the stream closes after the event of a terminal state ' +
          '(completed, failed, cancelled). Comment lines keep idle connections open. An unknown job, or another ' +
          "key's, is a 404 problem before the stream starts.",
        params: IdParams,
        response: {
          200: {
            description: 'The event stream',
            content: { 'text/event-stream': { schema: Type.String({ description: 'per change: `id: <n>`, `event: job`, `data: <job view JSON>`' }) } },
          },
          ...problems(400, 401, 404, 503),
        },
      },
    },
    async (request, reply) => {
      await streamJobEvents(deps, request, reply, request.params.id, ownerOf(request), streams);
      return reply;
    },
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
