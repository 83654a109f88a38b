/**
 * The jobs room's errors and how a job failure is recorded. Bad input (AppError, EngineError)
 * becomes a problem with its catalog code and is not retried; only failures a retry can fix
 * (a file or connection that failed for now) are retried. A plain Error is a defect, not a
 * passing fault: retrying it would only fail the same way three times.
 */
import { EngineError } from '../engine';
import { AppError, ERROR_CATALOG, isServiceUnavailable, problemType, type ErrorCode } from '../errors';
import type { JobErrorInfo } from '../store/jobs';

/** A job that ran past JOB_TIMEOUT_MS: failed, not retried (the request asks for more than this deployment allows). */
export class JobTimeoutError extends AppError {
  constructor(limitMs: number) {
    super('JOB_TIMED_OUT', `the job ran longer than ${limitMs} ms (JOB_TIMEOUT_MS) and was stopped`);
  }
}

/** Control flow, not a failure: a cancellation was requested and the run stops. */
export class JobCancelledError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was cancelled`);
    this.name = 'JobCancelledError';
  }
}

/** The job's row is not in this worker's database. */
export class NoRowError extends Error {
  constructor(readonly jobId: string) {
    super('job has no row in this database');
    this.name = 'NoRowError';
  }
}

/** Failures that can pass: I/O errors of the system (errno codes) and database time-outs or conflicts. */
// P2024: no pool connection in time; P2028: a transaction could not start in time; P2034: a write
// conflict or deadlock.
const TRANSIENT_PRISMA = /^P1\d{3}$|^P2024$|^P2028$|^P2034$/;

export function isTransient(err: unknown): boolean {
  if (isServiceUnavailable(err)) return true;
  const e = err as { code?: unknown; syscall?: unknown } | undefined;
  if (typeof e?.code !== 'string') return false;
  return typeof e.syscall === 'string' || /^E[A-Z0-9]+$/.test(e.code) || TRANSIENT_PRISMA.test(e.code);
}

export function isBadInput(err: unknown): boolean {
  return err instanceof AppError || err instanceof EngineError;
}

/** Failures that a retry cannot fix: everything that is not transient. */
export function isFinal(err: unknown): boolean {
  return isBadInput(err) || !isTransient(err);
}

export function jobErrorInfo(err: unknown): JobErrorInfo {
  if (err instanceof AppError) return problemOf(err.code, err.detail);
  if (err instanceof EngineError) return { ...problemOf('UNPROCESSABLE', err.message), engineCode: err.code };
  return { ...problemOf('INTERNAL', err instanceof Error ? err.message : String(err)), title: 'Job failed' };
}

function problemOf(code: ErrorCode, detail: string): JobErrorInfo {
  const { status, title } = ERROR_CATALOG[code];
  return { title, detail, status, type: problemType(code), code };
}
