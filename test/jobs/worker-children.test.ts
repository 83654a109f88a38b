/**
 * Issue 10: `npm start`'s entry (src/main.ts) serves the API in its own process and runs each of
 * its WORKERS workers as a child process: a job runs in the child (its row's workerId carries the
 * child's pid, not the API's), a child killed is restarted and the new one runs the next job, and
 * SIGTERM closes the API and the children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { REPO_ROOT, testEnv, TEST_DATABASE_URL } from '../support/test-env';
import { KMNIST_DIR } from '../support/fixtures';
import { freePort } from '../support/ports';
import { waitFor } from '../support/wait';
import { untilFinished } from '../support/finished';
import { createDb, type PrismaClient } from '../../src/store/db';

interface LogLine {
  msg: string;
  pid?: number;
  worker?: number;
  [k: string]: unknown;
}

describe('npm start: workers as child processes', () => {
  let proc: ChildProcess | undefined;
  let db: PrismaClient;
  let out = '';
  const lines = (): LogLine[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return { msg: '' };
        }
      });
  const started = () => lines().filter((l) => l.msg === 'worker process started');

  beforeAll(() => {
    db = createDb(TEST_DATABASE_URL);
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    for (const l of started()) {
      try {
        process.kill(l.pid as number, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await db.$disconnect();
  });

  it('runs jobs in a child, restarts a killed child, and closes all on SIGTERM', async () => {
    const port = await freePort();
    const env = testEnv({ PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info' });
    proc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'main.ts')], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, WORKER_MODE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout?.on('data', (d) => (out += d));
    proc.stderr?.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => proc!.once('exit', (code) => resolve(code)));
    const alive = () => {
      if (proc!.exitCode !== null) throw new Error(`npm start's entry exited:\n${out}`);
    };
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        alive();
        return lines().some((l) => l.msg === 'cnn-modules is up') ? true : undefined;
      },
      'the API to be up',
      120_000,
      100,
    );
    const apiPid = proc.pid!;

    const importModel = async (): Promise<string> => {
      const up = await request(base)
        .post('/models')
        .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
        .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
        .expect(202);
      const done = await untilFinished(base as never, `/jobs/${up.body.jobId}`, { timeoutMs: 120_000 });
      expect(done.state).toBe('completed');
      const row = await db.job.findUniqueOrThrow({ where: { id: up.body.jobId } });
      return row.workerId!;
    };

    // The job ran in the child, not in the API's process.
    const first = started();
    expect(first).toHaveLength(1);
    const childPid = first[0].pid!;
    expect(childPid).not.toBe(apiPid);
    const workerId = await importModel();
    expect(workerId).toContain(`:${childPid}:`);
    expect(workerId).not.toContain(`:${apiPid}:`);

    // Killed, the child is restarted (logged), and the new child runs the next job.
    process.kill(childPid, 'SIGKILL');
    await waitFor(
      async () => {
        alive();
        return started().length === 2 ? true : undefined;
      },
      'the child to be restarted',
      60_000,
      100,
    );
    expect(lines().find((l) => l.msg === 'worker process exited unexpectedly: restarting it')).toMatchObject({ pid: childPid, signal: 'SIGKILL' });
    const secondPid = started()[1].pid!;
    expect(secondPid).not.toBe(childPid);
    expect(await importModel()).toContain(`:${secondPid}:`);

    // SIGTERM: the API closes, the child closes gracefully, the parent exits 0.
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(() => process.kill(secondPid, 0)).toThrow();
    expect(lines().find((l) => l.msg === 'worker process exited')).toMatchObject({ pid: secondPid, code: 0 });
  }, 300_000);
});
