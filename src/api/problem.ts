/**
 * The one place that writes application/problem+json (RFC 9457). AppErrors carry their status;
 * fastify's validation, body-size and media-type errors map to 400/413/415; an unreachable
 * PostgreSQL or Redis maps to 503; anything else is a 500 that is logged and says nothing more.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CATALOG, isServiceUnavailable, problemType, type ErrorCode } from '../errors';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_FILES_LIMIT: 'PAYLOAD_TOO_LARGE',
  FST_PARTS_LIMIT: 'PAYLOAD_TOO_LARGE',
  FST_FIELDS_LIMIT: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_FORMAT',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_FORMAT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_PROTO_VIOLATION: 'BAD_REQUEST',
};

export function sendProblem(reply: FastifyReply, code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  const { status, title } = ERROR_CATALOG[code];
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send({ type: problemType(code), title, status, detail, instance: reply.request.url, ...extra });
}

function toProblem(err: FastifyError | Error): { code: ErrorCode; detail: string } | undefined {
  if (err instanceof AppError) return { code: err.code, detail: err.detail };
  const fe = err as FastifyError;
  if (fe.validation)
    return { code: 'BAD_REQUEST', detail: `${fe.validationContext ?? 'request'} ${fe.message.replace(/^(body|params|querystring|headers)[ /]?/, '')}`.trim() };
  if (fe.code && FASTIFY_CODES[fe.code]) return { code: FASTIFY_CODES[fe.code], detail: fe.message };
  if (fe.code === 'P2025') return { code: 'NOT_FOUND', detail: 'the resource does not exist' };
  if (fe.code === 'P2002') return { code: 'CONFLICT', detail: 'the resource already exists' };
  // A foreign key refused a write: a concurrent request deleted what this one refers to, or the
  // other way round (a delete lost to a new reference). Retrying sees the new state.
  if (fe.code === 'P2003') return { code: 'CONFLICT', detail: 'a resource this request refers to was changed by another request meanwhile; try again' };
  if (isServiceUnavailable(err)) return { code: 'SERVICE_UNAVAILABLE', detail: 'a backing service (PostgreSQL or Redis) is unreachable; retry later' };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const byStatus = (Object.keys(ERROR_CATALOG) as ErrorCode[]).find((c) => ERROR_CATALOG[c].status === fe.statusCode);
    return { code: byStatus ?? 'BAD_REQUEST', detail: fe.message };
  }
  return undefined;
}

/**
 * fastify's `frameworkErrors`: what its router refuses before any route runs (so before the API
 * key check: these answers name no resource). A path segment over `maxParamLength` (100) cannot be
 * an id this service made, so it is an unknown id (404); a URL that does not decode is malformed
 * (400); anything else is ours (500). Otherwise fastify answers these in a JSON of its own.
 */
export function frameworkProblem(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendProblem(reply, 'NOT_FOUND', 'no resource has an id this long');
  if (err.code === 'FST_ERR_BAD_URL') return sendProblem(reply, 'BAD_REQUEST', err.message);
  request.log.error({ err }, 'router error');
  return sendProblem(reply, 'INTERNAL', 'an unexpected error occurred; it has been logged');
}

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const p = toProblem(err);
    if (p) {
      if (p.code === 'SERVICE_UNAVAILABLE') request.log.warn({ err: err.message }, 'backing service unavailable');
      return sendProblem(reply, p.code, p.detail);
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(reply, 'INTERNAL', 'an unexpected error occurred; it has been logged');
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
}
