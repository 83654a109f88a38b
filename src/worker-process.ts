/**
 * Wires a worker to its stores: its own blocking Redis connection, PrismaClient and blob store.
 * And runs workers as supervised child processes for `npm start`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/env';
import type { TfjsRuntime } from './config/tfjs-runtime';
import { createDb } from './store/db';
import { createBlobStore } from './store/blob-stores';
import { createRedis } from './jobs/queues';
import { startWorkers } from './jobs/worker';

export interface WorkerHandle {
  readonly id: string;
  close(): Promise<void>;
}

export async function startWorkerProcess(config: Config, runtime: Promise<TfjsRuntime>, log: Logger): Promise<WorkerHandle> {
  await runtime;
  const connection = createRedis(config.redisUrl, true);
  const db = createDb(config.databaseUrl);
  const blobs = createBlobStore(config, { localCache: true });
  const running = startWorkers({
    config,
    db,
    blobs,
    connection,
    log: (obj, msg) => log.info(obj, msg),
  });
  log.info({ workerId: running.id, concurrency: config.workerConcurrency }, 'worker started');
  return {
    id: running.id,
    close: async () => {
      await running.close();
      connection.disconnect();
      await db.$disconnect();
      blobs.close();
    },
  };
}

export interface WorkerChildren {
  /** SIGKILLs every child now, without waiting: a forced exit's last step (shutdown.ts). */
  killNow(): void;
  /** Stops restarting, sends `signal` to every child (each finishes its current job) and waits for them to exit. */
  close(signal?: NodeJS.Signals): Promise<void>;
}

export interface WorkerChildrenOptions {
  /** The entry each child runs; default the worker entry beside this file (worker-main.js, or .ts under tsx). */
  readonly entry?: string;
  /** First restart delay; doubles with each quick death, up to maxBackoffMs. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A child that ran this long before dying is restarted after minBackoffMs again. */
  readonly stableMs?: number;
}

/** `worker-main` beside this module, and how to run it (tsx's loader when running from source). */
export function workerEntry(): { entry: string; execArgv: string[] } {
  const ext = path.extname(__filename);
  const entry = path.join(__dirname, `worker-main${ext}`);
  const execArgv = [...process.execArgv];
  if (ext === '.ts' && !execArgv.some((a) => a.includes('tsx'))) execArgv.push('--import', 'tsx');
  return { entry, execArgv };
}

/**
 * Runs `count` workers as child processes (`npm start` with WORKER_MODE=process): TF.js keeps a
 * worker's event loop busy for seconds at a time, which in the API's process delays every request
 * (BullMQ's guidance for CPU-heavy processors). A child that dies unexpectedly is restarted with
 * backoff; a child whose parent dies closes itself (worker-main watches the IPC channel). The
 * children inherit the environment, so they load the same configuration.
 */
export function startWorkerChildren(count: number, log: Logger, options: WorkerChildrenOptions = {}): WorkerChildren {
  const { entry, execArgv } = options.entry ? { entry: options.entry, execArgv: process.execArgv } : workerEntry();
  const minBackoffMs = options.minBackoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const stableMs = options.stableMs ?? 60_000;
  const slots: { child?: ChildProcess; quickDeaths: number; timer?: NodeJS.Timeout }[] = [];
  let closing = false;

  const spawnChild = (index: number): void => {
    const slot = slots[index];
    slot.timer = undefined;
    const started = Date.now();
    // In a session of its own, so that the worker can lower its whole scheduling autogroup
    // (worker-niceness.ts); it still closes when this process goes (worker-main watches the IPC
    // channel), and a terminal's Ctrl-C reaches it through this process's close.
    const child = fork(entry, [], { execArgv, stdio: 'inherit', detached: true });
    slot.child = child;
    log.info({ worker: index, pid: child.pid }, 'worker process started');
    child.on('error', (err) => log.error({ worker: index, pid: child.pid, err: err.message }, 'worker process error'));
    child.once('exit', (code, signal) => {
      if (slot.child === child) slot.child = undefined;
      if (closing) {
        log.info({ worker: index, pid: child.pid, code, signal }, 'worker process exited');
        return;
      }
      const ranMs = Date.now() - started;
      slot.quickDeaths = ranMs >= stableMs ? 1 : slot.quickDeaths + 1;
      const delay = Math.min(maxBackoffMs, minBackoffMs * 2 ** (slot.quickDeaths - 1));
      log.warn({ worker: index, pid: child.pid, code, signal, ranMs, restartInMs: delay }, 'worker process exited unexpectedly: restarting it');
      slot.timer = setTimeout(() => spawnChild(index), delay);
    });
  };

  for (let i = 0; i < count; i++) {
    slots.push({ quickDeaths: 0 });
    spawnChild(i);
  }

  return {
    killNow: () => {
      closing = true;
      for (const slot of slots) {
        clearTimeout(slot.timer);
        slot.child?.kill('SIGKILL');
      }
    },
    close: async (signal = 'SIGTERM') => {
      closing = true;
      const exits: Promise<void>[] = [];
      for (const slot of slots) {
        clearTimeout(slot.timer);
        const child = slot.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        exits.push(new Promise<void>((resolve) => child.once('exit', () => resolve())));
        child.kill(signal);
      }
      await Promise.all(exits);
    },
  };
}
