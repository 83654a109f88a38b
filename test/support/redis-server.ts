/** A private redis-server on its own port, for tests that stop and restart Redis under the service. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PrivateRedis {
  readonly url: string;
  /** Stops the server (SIGTERM: with persistence it writes its append-only file first). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  destroy(): Promise<void>;
}

function answers(port: number): boolean {
  try {
    return execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 })
      .toString()
      .includes('PONG');
  } catch {
    return false;
  }
}

/**
 * @param persistent append-only file with fsync on every write (as compose runs Redis), or nothing kept
 * @param listen more addresses to listen on besides 127.0.0.1
 */
export async function startPrivateRedis(persistent: boolean, listen: string[] = []): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    // Other hosts' view of this one (a veth address): Redis then listens there too, and takes
    // their connections without a password (protected mode would refuse them).
    ...listen,
    ...(listen.length > 0 ? ['--protected-mode', 'no'] : []),
    '--dir',
    dir,
    '--save',
    '',
    ...(persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];
  let proc: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    for (let i = 0; i < 100 && !answers(port); i++) await sleep(50);
    if (!answers(port)) throw new Error(`redis-server on port ${port} did not start`);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    destroy: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
