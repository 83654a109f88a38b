/**
 * Builds the fastify application (no listen): external plugins, then ours, then routes.
 * The caller owns `deps` and closes them after the app.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { UnsupportedFormatError } from '../errors';
import { frameworkProblem, registerProblemHandlers } from './problem';
import { registerValidation } from './plugins/validation';
import { swaggerPlugin } from './plugins/swagger';
import { metricsPlugin } from './plugins/metrics';
import { authPlugin, keysConfigured } from './plugins/auth';
import { webUiPlugin } from './plugins/web-ui';
import { queuesBoardPlugin } from './plugins/queues-board';
import { Problem } from './schemas/common';
import { ModelView } from './schemas/models';
import { DatasetView } from './schemas/datasets';
import { EvaluationView } from './schemas/evaluations';
import { DecompositionView, ModuleView } from './schemas/decompositions';
import { CompositionView } from './schemas/compositions';
import { operationsRoutes } from './routes/operations';
import { modelsRoutes } from './routes/models';
import { jobsRoutes } from './routes/jobs';
import { datasetsRoutes } from './routes/datasets';
import { evaluationsRoutes } from './routes/evaluations';
import { decompositionsRoutes } from './routes/decompositions';
import { compositionsRoutes } from './routes/compositions';
import type { AppDeps } from './deps';

export interface BuildAppOptions {
  /** pino logger options, or false for none (tests). */
  readonly logger?: boolean | object;
}

export async function buildApp(deps: AppDeps, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: deps.config.logLevel },
    bodyLimit: 1024 * 1024,
    // Client-supplied ids are never trusted as request ids.
    genReqId: () => crypto.randomUUID(),
    frameworkErrors: frameworkProblem,
  });
  // JSON bodies only (multipart where a route says so): fastify's own text/plain parser handed the
  // string to validation, a 400 where any other media type is a 415. An empty text/plain body
  // stays acceptable: clients send one with a DELETE (fetch with body '', .NET's StringContent).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') done(null, undefined);
    else done(new UnsupportedFormatError('this route takes JSON (application/json), not text/plain'), undefined);
  });
  registerValidation(app);
  registerProblemHandlers(app);
  // Shared schemas live at the root so the OpenAPI document lists them under components.
  for (const schema of [Problem, ModelView, DatasetView, EvaluationView, DecompositionView, ModuleView, CompositionView]) app.addSchema(schema);

  await app.register(multipart, {
    limits: { fileSize: deps.config.maxUploadBytes, files: 20, fields: 20, fieldSize: 1024 * 1024, parts: 50, headerPairs: 100 },
    throwFileSizeLimit: true,
  });
  await app.register(swaggerPlugin);
  await app.register(authPlugin, { deps });
  await app.register(metricsPlugin, { deps });

  // A DELETE takes job rows with the resources it removes (a cancel changes one): this process
  // forgets its cached job views before answering, so the client's next GET /jobs/:id sees it.
  // Other processes learn of it by notification (job-watch.ts).
  app.addHook('onSend', async (request, _reply, payload) => {
    if (request.method === 'DELETE') deps.jobWatch.views.clear();
    return payload;
  });
  await app.register(operationsRoutes, { deps });
  await app.register(modelsRoutes, { deps });
  await app.register(datasetsRoutes, { deps });
  await app.register(evaluationsRoutes, { deps });
  await app.register(decompositionsRoutes, { deps });
  await app.register(compositionsRoutes, { deps });
  await app.register(jobsRoutes, { deps });
  await app.register(webUiPlugin, { deps });
  // Write actions on the board only where keys guard them (decided at start, like the keys in the environment).
  await app.register(queuesBoardPlugin, { deps, readOnly: !(await keysConfigured(deps).catch(() => false)) });
  return app;
}
