/**
 * Test configuration: a dedicated database (recreated once per run by global-setup), a fresh blob
 * directory and BullMQ prefix per test, so tests never see each other's jobs or blobs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config/env';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SHARED = path.resolve(REPO_ROOT, '..', 'shared');

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules_test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Environment for a test's API or worker process; `overrides` win. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    BLOB_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-blobs-')),
    QUEUE_PREFIX: `test-${randomUUID().slice(0, 8)}`,
    LOG_LEVEL: 'silent',
    TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
    // Long enough to outlast a busy TF.js batch on a loaded 2-core machine; crash tests set it lower.
    JOB_LOCK_MS: '10000',
    // POST /models answers 202 at once unless a test waits for the import on purpose.
    IMPORT_WAIT_MS: '0',
    // Bodies come from this machine at once; a stalled one (a malformed-multipart case) fails fast.
    UPLOAD_IDLE_MS: '3000',
    // Tests share one database: a worker must not take over another test's unfinished job rows.
    RECONCILE_INTERVAL_MS: '0',
    ...overrides,
  };
}

export function testConfig(env: Record<string, string>): Config {
  return loadConfig(env);
}
