/**
 * How a job failure is recorded: bad input (AppError, EngineError) becomes a problem with its
 * HTTP status and is not retried; anything else is transient and retried.
 */
import { EngineError } from '../engine';
import { AppError, ERROR_CATALOG, problemType } from '../errors';
import type { JobErrorInfo } from '../store/jobs';

export function isBadInput(err: unknown): boolean {
  return err instanceof AppError || err instanceof EngineError;
}

export function jobErrorInfo(err: unknown): JobErrorInfo {
  if (err instanceof AppError) return { title: err.title, detail: err.detail, status: err.status, type: problemType(err.code) };
  if (err instanceof EngineError) {
    const { status, title } = ERROR_CATALOG.UNPROCESSABLE;
    return { title, detail: err.message, status, type: problemType('UNPROCESSABLE'), code: err.code };
  }
  return { title: 'Job failed', detail: err instanceof Error ? err.message : String(err) };
}
