/** OpenAPI document at /docs/json and Swagger UI at /docs (assets ship in the package: offline). */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { problemResponse } from '../schemas/common';

export const swaggerPlugin = fp(async (app: FastifyInstance) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'cnn-modules',
        version: '1',
        description:
          'Decompose trained CNN classifiers into one module per class and build new classifiers from modules ' +
          '(Pan & Rajan, ICSE 2022). Errors are application/problem+json (RFC 9457).',
      },
      tags: [
        { name: 'models', description: 'Model uploads' },
        { name: 'datasets', description: 'Dataset uploads' },
        { name: 'evaluations', description: 'Model accuracy on a dataset' },
        { name: 'decompositions', description: 'One module per class, and the modules themselves' },
        { name: 'compositions', description: 'Classifiers built from modules: reuse and replace' },
        { name: 'jobs', description: 'Long-running work' },
        { name: 'operations', description: 'Health, readiness, metrics' },
      ],
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key, when keys are configured' } },
      },
    },
    // Components are named after their $id (Problem, Model, ...) rather than def-N.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    // Multipart routes document their parts via config.multipartBody; fastify never validates it.
    // Every error is a problem document: routes list the statuses they mean to send, and `default`
    // covers the rest (429 from the rate limit, 500, 503 while a store is down).
    transform: ({ schema, url, route }) => {
      if (!schema) return { schema, url };
      const body = (route.config as { multipartBody?: object } | undefined)?.multipartBody;
      const response = { default: problemResponse('Problem details (RFC 9457)'), ...(schema.response as object | undefined) };
      return { schema: { ...schema, response, ...(body ? { body, consumes: ['multipart/form-data'] } : {}) } as typeof schema, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
});
