/**
 * API keys (Authorization: Bearer <key>) and per-key rate limiting. When no key is configured
 * (API_KEYS empty and none created with the CLI) the service is open and resources have no owner.
 * Otherwise every route but /health, /ready and /docs needs a key, and the key's owner id scopes
 * every query, so another key's resources are simply not found (404).
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../problem';
import { AppError } from '../../errors';
import { anyStoredKey, hashKey, ownerIdOf, storedKeyExists } from '../../store/api-keys';
import type { AppDeps } from '../deps';

// The UI's page and bundles are public (they hold no data; the data comes from the API with a key).
const OPEN = [/^\/health$/, /^\/ready$/, /^\/docs(\/|$)/, /^\/$/, /^\/ui(\/|$)/];
/** Bull Board's page loads cannot carry a header: there the key may come from this cookie (the UI sets it). */
const BOARD = /^\/queues(\/|$)/;
export const KEY_COOKIE = 'cnn_modules_key';

function cookieKey(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === KEY_COOKIE) return decodeURIComponent(part.slice(eq + 1).trim()) || undefined;
  }
  return undefined;
}

/** Whether any API key is configured (environment or created with the CLI): the service is then closed. */
export async function keysConfigured(deps: AppDeps): Promise<boolean> {
  return deps.config.apiKeys.length > 0 || (await anyStoredKey(deps.db));
}
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
  const authenticate = async (request: FastifyRequest, path: string): Promise<void> => {
    if (OPEN.some((re) => re.test(path))) return;
    if (envKeys.size === 0 && !(await storedKeysConfigured())) return;
    const header = request.headers.authorization ?? '';
    const key = /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? (BOARD.test(path) ? cookieKey(request.headers.cookie) : undefined);
    if (!key) throw new AppError('UNAUTHORIZED', 'an API key is required: Authorization: Bearer <key>');
    const hash = hashKey(key);
    if (!envKeys.has(hash) && !(await storedKeyExists(deps.db, hash))) throw new AppError('UNAUTHORIZED', 'the API key is not valid');
    request.ownerId = ownerIdOf(hash);
  };
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0];
    try {
      await authenticate(request, path);
    } catch (err) {
      // Bull Board's routes answer errors with its own handler (a 500 for everything): refuse them here.
      if (BOARD.test(path) && err instanceof AppError) return sendProblem(reply, err.code, err.detail);
      throw err;
    }
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
