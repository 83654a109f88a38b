/**
 * Application errors: each has a stable `code`; its HTTP status, title and problem `type` live in
 * one catalog below. Code below the API throws these; only `api/problem.ts` turns them into HTTP.
 */

export const ERROR_CATALOG = {
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  CONFLICT: { status: 409, title: 'Conflict' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  UNSUPPORTED_FORMAT: { status: 415, title: 'Unsupported format' },
  UNPROCESSABLE: { status: 422, title: 'Unprocessable input' },
  /** A job ran past JOB_TIMEOUT_MS: the request asks for more work than this deployment allows. */
  JOB_TIMED_OUT: { status: 422, title: 'Job timed out' },
  TOO_MANY_REQUESTS: { status: 429, title: 'Too many requests' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  INTERNAL: { status: 500, title: 'Internal server error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Problem `type` URIs are relative references documented in the README's error table. */
export function problemType(code: ErrorCode): string {
  return `/problems/${code.toLowerCase().replace(/_/g, '-')}`;
}

export class AppError extends Error {
  readonly status: number;
  readonly title: string;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
  ) {
    super(detail);
    this.name = this.constructor.name;
    this.status = ERROR_CATALOG[code].status;
    this.title = ERROR_CATALOG[code].title;
  }
}

export class BadRequestError extends AppError {
  constructor(detail: string) {
    super('BAD_REQUEST', detail);
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, id: string) {
    super('NOT_FOUND', `${what} ${JSON.stringify(id)} does not exist`);
  }
}

export class ConflictError extends AppError {
  constructor(detail: string) {
    super('CONFLICT', detail);
  }
}

export class PayloadTooLargeError extends AppError {
  /** @param what what is over the limit: the upload itself, or what it decodes or unzips to */
  constructor(limitBytes: number, what = 'upload') {
    super('PAYLOAD_TOO_LARGE', `${what} exceeds the limit of ${limitBytes} bytes`);
  }
}

export class UnsupportedFormatError extends AppError {
  constructor(detail: string) {
    super('UNSUPPORTED_FORMAT', detail);
  }
}

export class UnprocessableError extends AppError {
  constructor(detail: string) {
    super('UNPROCESSABLE', detail);
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(detail: string) {
    super('SERVICE_UNAVAILABLE', detail);
  }
}

/**
 * Connection failures of pg, Prisma's adapter and ioredis: the backing service is down. pg reports a
 * client whose socket died mid-transaction only by message ("... is not queryable").
 */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'P1001', 'P1017', '57P01', '57P03']);

export function isServiceUnavailable(err: unknown): boolean {
  if (err instanceof ServiceUnavailableError) return true;
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  if (e.code && UNAVAILABLE_CODES.has(e.code)) return true;
  const msg = e.message ?? '';
  if (
    /Stream isn't writeable|Connection is closed|enableOfflineQueue|connect ECONNREFUSED|Connection terminated|timeout exceeded when trying to connect|Can't reach database server|Reached the max retries per request|is not queryable/i.test(
      msg,
    )
  ) {
    return true;
  }
  return e.cause !== undefined && e.cause !== err && isServiceUnavailable(e.cause);
}
