/** The real service started by a bench: its scratch database, Redis keys and blobs, dropped after. */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import IORedis from 'ioredis';
import { Client } from 'pg';

import { procStatFields, STAT } from '../src/proc-stat';
import { freePort } from '../test/support/ports';

export { freePort };

/** Drops the database `url` names (connecting to `postgres` on the same server). */
export async function dropDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  u.pathname = '/postgres';
  const admin = new Client({ connectionString: u.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Removes the BullMQ keys under `prefix`; returns how many. */
export async function dropRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new IORedis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  let removed = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) removed += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return removed;
}

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');
export const RESNET_H5 = path.join(SHARED, 'fixtures', 'resnet20-cifar10', 'model.h5');
export const CIFAR_BIN = path.join(SHARED, 'fixtures', 'cifar10-bin');
export const CIFAR_PREPROCESSING = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The JSON body of a response; throws with the status and body when it is not 2xx. */
export async function json(res: Response): Promise<Record<string, unknown>> {
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** The pids of a process's children (Linux /proc; none elsewhere). */
function childPids(parent: number): number[] {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  return pids.flatMap((pid) => (Number(procStatFields(Number(pid))?.[STAT.ppid]) === parent ? [Number(pid)] : []));
}

/** Polls `probe` every 200 ms until it returns a value. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export interface BenchService {
  readonly base: string;
  /** Throws with the service's output if it has exited. */
  alive(): void;
  /** Kills the service and its worker children, and removes its database, Redis keys and blobs. */
  stop(): Promise<void>;
}

/**
 * The real entry (`src/main.ts` under tsx) on loopback with a scratch database (dropped first and
 * at stop), its own Redis prefix and blob directory, one worker, and no rate limit (a bench is one
 * client); `env` adds to or overrides that. Resolves once /health answers.
 */
export async function startBenchService(
  databaseUrl: string,
  redisUrl: string,
  env: Record<string, string> = {},
  /** Node options for the API process, e.g. `--cpu-prof` (not allowed in NODE_OPTIONS). */
  nodeArgs: string[] = [],
): Promise<BenchService> {
  await dropDatabase(databaseUrl);
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const blobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-bench-blobs-'));
  const base = `http://127.0.0.1:${await freePort()}`;
  // Its own process group, so that the service and its worker children are killed together.
  const service = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(ROOT, 'src', 'main.ts')], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      BLOB_DIR: blobDir,
      PORT: new URL(base).port,
      HOST: '127.0.0.1',
      WORKERS: '1',
      LOG_LEVEL: 'warn',
      IMPORT_WAIT_MS: '0',
      RECONCILE_INTERVAL_MS: '0',
      RATE_LIMIT_PER_MINUTE: '1000000',
      ...env,
    },
  });
  let out = '';
  service.stdout?.on('data', (d) => (out += d));
  service.stderr?.on('data', (d) => (out += d));
  const alive = () => {
    if (service.exitCode !== null) throw new Error(`the service exited:\n${out}`);
  };
  const stop = async () => {
    // The worker children lead sessions (and process groups) of their own: killed with the
    // service's group, they would finish their job first, into the next measurement.
    const groups = service.pid !== undefined ? [service.pid, ...childPids(service.pid)] : [];
    for (const pid of groups) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(500);
    await dropRedisPrefix(redisUrl, prefix).catch(() => 0);
    await dropDatabase(databaseUrl).catch(() => undefined);
    fs.rmSync(blobDir, { recursive: true, force: true });
  };
  try {
    await until('the service', 120_000, async () => {
      alive();
      return (await fetch(`${base}/health`).catch(() => undefined))?.ok ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, alive, stop };
}

/** Uploads ResNet-20 (model.h5) and CIFAR-10 data_batch_1 and test_batch; resolves when the model is ready. */
export async function uploadResnetCifar(
  svc: BenchService,
): Promise<{ model: Record<string, unknown>; train: Record<string, unknown>; test: Record<string, unknown> }> {
  const form = new FormData();
  form.set('preprocessing', JSON.stringify(CIFAR_PREPROCESSING));
  form.set('file', new Blob([fs.readFileSync(RESNET_H5)]), 'model.h5');
  const model = await json(await fetch(`${svc.base}/models`, { method: 'POST', body: form }));
  const dataset = async (file: string) => {
    const f = new FormData();
    f.set('file', new Blob([fs.readFileSync(path.join(CIFAR_BIN, file))]), file);
    return json(await fetch(`${svc.base}/datasets`, { method: 'POST', body: f }));
  };
  const train = await dataset('data_batch_1.bin');
  const test = await dataset('test_batch.bin');
  await until('the model import', 180_000, async () => {
    svc.alive();
    const m = await json(await fetch(`${svc.base}/models/${model.id}`));
    if (m.status === 'failed') throw new Error(`model import failed: ${JSON.stringify(m)}`);
    return m.status === 'ready' ? true : undefined;
  });
  return { model, train, test };
}
