/**
 * The web UI: a static single-page app built into `config.webDir` (`npm run build`), served under
 * /ui/ with `/` redirecting there. Every /ui/... path that is not a file answers the app's page,
 * so deep links (/ui/decompositions/<id>) load it and it routes on the client. The UI holds no
 * data of its own: it calls the same API as any client, with the key the user types in.
 */
import fs from 'node:fs';
import path from 'node:path';
import fp from 'fastify-plugin';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AppError } from '../../errors';
import type { AppDeps } from '../deps';

const PREFIX = '/ui/';
const INDEX = 'index.html';

export const webUiPlugin = fp(async (app: FastifyInstance, { deps }: { deps: AppDeps }) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect(PREFIX, 302));

  const root = deps.config.webDir;
  if (!fs.existsSync(path.join(root, INDEX))) {
    app.log.warn({ webDir: root }, 'the web UI is not built (npm run build): /ui/ answers 503');
    app.get('/ui/*', { schema: { hide: true } }, async () => {
      throw new AppError('SERVICE_UNAVAILABLE', `the web UI is not built in ${root}: run \`npm run build\``);
    });
    app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect(PREFIX, 302));
    return;
  }

  await app.register(fastifyStatic, {
    root,
    prefix: PREFIX,
    // The SPA fallback below answers /ui/... paths that are not files.
    wildcard: false,
    index: false,
    // Bundles carry a content hash in their name: cache them for good; the page itself is revalidated.
    cacheControl: false,
    setHeaders: (reply, file) => {
      const hashed = /-[A-Z0-9]{8}\.(js|css)$/.test(file);
      reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  const page = (_request: unknown, reply: FastifyReply) => reply.header('cache-control', 'no-cache').sendFile(INDEX, root);
  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect(PREFIX, 302));
  app.get('/ui/', { schema: { hide: true } }, page);
  app.get('/ui/*', { schema: { hide: true } }, async (request, reply) => {
    // An asset that does not exist is a 404, not the page (a stale bundle name would render HTML as JS).
    if (/\.[a-z0-9]+$/i.test(request.url.split('?')[0])) throw new AppError('NOT_FOUND', `no such file: ${request.url}`);
    return page(request, reply);
  });
});
