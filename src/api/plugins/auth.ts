/**
 * API keys (Authorization: Bearer <key>) and per-key rate limiting. When no key is configured
 * (API_KEYS empty and none created with the CLI) the service is open and resources have no owner.
 * Otherwise every route but /health, /ready and /docs needs a key, and the key's owner id scopes
 * every query, so another key's resources are simply not found (404).
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors';
import { anyStoredKey, hashKey, ownerIdOf, storedKeyExists } from '../../store/api-keys';
import type { AppDeps } from '../deps';

const OPEN = [/^\/health$/, /^\/ready$/, /^\/docs(\/|$)/];
const STORED_KEYS_TTL_MS = 10_000;

declare module 'fastify' {
  interface FastifyRequest {
    ownerId?: string | null;
  }
}

export const authPlugin = fp(async (app: FastifyInstance, { deps }: { deps: AppDeps }) => {
  const envKeys = new Set(deps.config.apiKeys.map(hashKey));
  let stored: { any: boolean; at: number } | undefined;
  const storedKeysConfigured = async (): Promise<boolean> => {
    if (!stored || Date.now() - stored.at > STORED_KEYS_TTL_MS) stored = { any: await anyStoredKey(deps.db), at: Date.now() };
    return stored.any;
  };

  app.decorateRequest('ownerId', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const path = request.url.split('?')[0];
    if (OPEN.some((re) => re.test(path))) return;
    if (envKeys.size === 0 && !(await storedKeysConfigured())) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new AppError('UNAUTHORIZED', 'an API key is required: Authorization: Bearer <key>');
    const hash = hashKey(match[1]);
    if (!envKeys.has(hash) && !(await storedKeyExists(deps.db, hash))) throw new AppError('UNAUTHORIZED', 'the API key is not valid');
    request.ownerId = ownerIdOf(hash);
  });

  await app.register(rateLimit, {
    max: deps.config.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => request.ownerId ?? request.ip,
    allowList: (request) => OPEN.some((re) => re.test(request.url.split('?')[0])),
    errorResponseBuilder: (_request, context) => {
      const err = new AppError('TOO_MANY_REQUESTS', `rate limit of ${context.max} requests per minute exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`);
      return Object.assign(err, { statusCode: 429 });
    },
  });
});
