/**
 * How a job failure is recorded: bad input (AppError, EngineError) becomes a problem with its
 * HTTP status and is not retried; anything else is transient and retried.
 */
import { EngineError } from '../engine';
import { AppError, ERROR_CATALOG, problemType } from '../errors';
import type { JobErrorInfo } from '../store/jobs';
import { JobTimeoutError } from './context';

export function isBadInput(err: unknown): boolean {
  return err instanceof AppError || err instanceof EngineError;
}

/** Failures that a retry cannot fix: bad input, or work over JOB_TIMEOUT_MS. */
export function isFinal(err: unknown): boolean {
  return isBadInput(err) || err instanceof JobTimeoutError;
}

export function jobErrorInfo(err: unknown): JobErrorInfo {
  if (err instanceof AppError) return { title: err.title, detail: err.detail, status: err.status, type: problemType(err.code) };
  if (err instanceof EngineError) {
    const { status, title } = ERROR_CATALOG.UNPROCESSABLE;
    return { title, detail: err.message, status, type: problemType('UNPROCESSABLE'), code: err.code };
  }
  if (err instanceof JobTimeoutError) {
    // Too much work for the configured limit: the request cannot be served as it is.
    return { title: 'Job timed out', detail: err.message, status: 422, type: problemType('UNPROCESSABLE') };
  }
  return { title: 'Job failed', detail: err instanceof Error ? err.message : String(err) };
}
