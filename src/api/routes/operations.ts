/** /health (process up) and /ready (PostgreSQL and Redis reachable, TF.js runtime). */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { pingDb } from '../../store/db';
import { redisReady } from '../../jobs/queues';
import { sendProblem } from '../problem';
import { problems } from '../schemas/common';
import type { AppDeps } from '../deps';

const Checks = Type.Object({
  postgres: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  redis: Type.Union([Type.Literal('up'), Type.Literal('down')]),
});
const Runtime = Type.Object({ backend: Type.String(), package: Type.String(), version: Type.String() });

async function pingRedis(deps: AppDeps): Promise<boolean> {
  try {
    if (!(await redisReady(deps.redis, 1000))) return false;
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref());
    return (await Promise.race([deps.redis.ping(), timeout])) === 'PONG';
  } catch {
    return false;
  }
}

export async function operationsRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  app.get(
    '/health',
    { schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'PostgreSQL and Redis are reachable (503 otherwise)',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), checks: Checks, tfjs: Type.Optional(Runtime) }),
          ...problems(503),
        },
      },
    },
    async (_request, reply) => {
      const [pg, redis] = await Promise.all([pingDb(deps.db), pingRedis(deps)]);
      const checks = { postgres: pg ? ('up' as const) : ('down' as const), redis: redis ? ('up' as const) : ('down' as const) };
      const rt = await deps.runtime?.catch(() => undefined);
      const tfjs = rt ? { backend: rt.backend, package: rt.package, version: rt.version } : undefined;
      if (!pg || !redis) {
        const down = Object.entries(checks)
          .filter(([, v]) => v === 'down')
          .map(([k]) => k);
        return sendProblem(reply, 'SERVICE_UNAVAILABLE', `unreachable: ${down.join(', ')}`, { checks, ...(tfjs ? { tfjs } : {}) });
      }
      return { status: 'ready' as const, checks, ...(tfjs ? { tfjs } : {}) };
    },
  );
}
