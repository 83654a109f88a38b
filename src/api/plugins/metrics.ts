/** Prometheus metrics at /metrics: process, HTTP, queue depths, job counts, database pool, TF.js runtime. */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { dbPoolStats } from '../../store/db';
import { countJobsByState } from '../../store/jobs';
import type { AppDeps } from '../deps';

export const metricsPlugin = fp(async (app: FastifyInstance, { deps }: { deps: AppDeps }) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 60],
    registers: [registry],
  });
  new Gauge({
    name: 'queue_jobs',
    help: 'BullMQ jobs per queue and state (waiting = queue depth)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await deps.queues.counts().catch(() => undefined);
      for (const [queue, byState] of Object.entries(counts ?? {})) {
        for (const [state, n] of Object.entries(byState)) this.set({ queue, state }, n);
      }
    },
  });
  new Gauge({
    name: 'jobs',
    help: 'Job rows per type and state (the durable record in PostgreSQL)',
    labelNames: ['type', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await countJobsByState(deps.db).catch(() => [])) this.set({ type: r.type, state: r.state }, r.count);
    },
  });
  new Gauge({
    name: 'db_pool_clients',
    help: 'PostgreSQL pool clients of this process: idle, checked out, and requests waiting for one',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const s = dbPoolStats(deps.db);
      this.set({ state: 'idle' }, s.idle);
      this.set({ state: 'checked_out' }, s.checkedOut);
      this.set({ state: 'waiting' }, s.waiting);
    },
  });
  new Gauge({
    name: 'tfjs_runtime_info',
    help: 'TF.js runtime of this process (value 1)',
    labelNames: ['backend', 'package', 'version'],
    registers: [registry],
    async collect() {
      this.reset();
      const rt = await deps.runtime?.catch(() => undefined);
      if (rt) this.set({ backend: rt.backend, package: rt.package, version: rt.version }, 1);
    },
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  const exposition = { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } };
  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', response: { 200: exposition } } }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
});
