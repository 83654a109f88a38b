/**
 * Issue 10: `npm start`'s entry (src/main.ts) serves the API in its own process and runs each of
 * its WORKERS workers as a child process: a job runs in the child (its row's workerId carries the
 * child's pid, not the API's), a child killed is restarted and the new one runs the next job, and
 * SIGTERM closes the API and the children. Issue 14: each child leads a session of its own, whose
 * scheduling autogroup carries WORKER_NICE, and still closes when the API is killed; a second
 * SIGTERM kills a child that is still finishing its job, and the entry exits 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { REPO_ROOT, testEnv, TEST_DATABASE_URL } from '../support/test-env';
import { KMNIST_DIR } from '../support/fixtures';
import { freePort } from '../support/ports';
import { waitFor } from '../support/wait';
import { untilFinished } from '../support/finished';
import { createDb, type PrismaClient } from '../../src/store/db';
import { procStatFields, STAT } from '../../src/proc-stat';

/** The session id of a process, from /proc. */
function sessionOf(pid: number): number {
  return Number(procStatFields(pid)?.[STAT.session]);
}

/** Whether a process runs (an exited orphan may linger as a zombie until init reaps it). */
function running(pid: number): boolean {
  const state = procStatFields(pid)?.[STAT.state];
  return state !== undefined && state !== 'Z';
}

interface LogLine {
  msg: string;
  pid?: number;
  worker?: number;
  [k: string]: unknown;
}

/** `npm start`'s entry with one worker child, its JSON log lines collected. */
interface Main {
  readonly proc: ChildProcess;
  readonly base: string;
  lines(): LogLine[];
  /** The API's 'worker process started' lines. */
  started(): LogLine[];
  /** Throws with the output if the entry has exited. */
  alive(): void;
}

describe('npm start: workers as child processes', () => {
  const mains: Main[] = [];
  let db: PrismaClient;

  async function startMain(extraEnv: Record<string, string> = {}): Promise<Main> {
    const port = await freePort();
    const env = testEnv({ PORT: String(port), HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info', ...extraEnv });
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'main.ts')], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, WORKER_MODE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout?.on('data', (d) => (out += d));
    proc.stderr?.on('data', (d) => (out += d));
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
    const main: Main = {
      proc,
      base: `http://127.0.0.1:${port}`,
      lines,
      started: () => lines().filter((l) => l.msg === 'worker process started'),
      alive: () => {
        if (proc.exitCode !== null) throw new Error(`npm start's entry exited:\n${out}`);
      },
    };
    mains.push(main);
    await waitFor(
      async () => {
        main.alive();
        return lines().some((l) => l.msg === 'cnn-modules is up') ? true : undefined;
      },
      'the API to be up',
      120_000,
      100,
    );
    return main;
  }

  beforeAll(() => {
    db = createDb(TEST_DATABASE_URL);
  });
  afterAll(async () => {
    for (const main of mains) {
      if (main.proc.exitCode === null) main.proc.kill('SIGKILL');
      for (const l of main.started()) {
        try {
          process.kill(l.pid as number, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await db.$disconnect();
  });

  it('runs jobs in a child, restarts a killed child, and closes all on SIGTERM', async () => {
    const { proc, base, lines, started, alive } = await startMain();
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
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
    // In a session of its own, whose scheduling group carries the worker's niceness (WORKER_NICE,
    // 19 by default), so that it yields to PostgreSQL and Redis as well as to the API.
    expect(sessionOf(childPid)).toBe(childPid);
    expect(sessionOf(apiPid)).not.toBe(childPid);
    if (fs.existsSync(`/proc/${childPid}/autogroup`)) {
      await waitFor(
        async () => (lines().some((l) => l.msg === 'worker priority set' && l.pid === childPid && l.sessionGroup === true) ? true : undefined),
        "the worker's priority to be set",
        60_000,
        100,
      );
      expect(fs.readFileSync(`/proc/${childPid}/autogroup`, 'utf8')).toMatch(/ nice 19\s*$/);
      // The API's group is left at nice 0. A process still in init's session (as under CI) sits in
      // the kernel's default group, whose file reads empty: that group is not niced either.
      expect(fs.readFileSync(`/proc/${apiPid}/autogroup`, 'utf8')).toMatch(/^$| nice 0\s*$/);
    }
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

  it('closes a child whose parent is killed, though the child leads its own session', async () => {
    const { proc, lines, started } = await startMain();
    const childPid = started()[0].pid!;
    await waitFor(async () => (lines().some((l) => l.msg === 'worker started' && l.pid === childPid) ? true : undefined), 'the worker to be up', 120_000, 100);
    // SIGKILL reaches neither the child (another session, another process group) nor any handler.
    proc.kill('SIGKILL');
    await waitFor(async () => (running(childPid) ? undefined : true), 'the orphaned child to exit', 60_000, 100);
  }, 180_000);

  it('a second SIGTERM kills a child still finishing its job, and the entry exits 1', async () => {
    // Every progress report pauses 60 s, so a graceful close would wait that long for the job.
    const { proc, base, lines, started, alive } = await startMain({ JOB_TEST_DELAY_MS: '60000' });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const childPid = started()[0].pid!;
    const up = await request(base)
      .post('/models')
      .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
      .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
      .expect(202);
    await waitFor(
      async () => {
        alive();
        const row = await db.job.findUnique({ where: { id: up.body.jobId } });
        return row?.state === 'active' && row.progress > 0 && row.workerId?.includes(`:${childPid}:`) ? true : undefined;
      },
      'the import to be running in the child',
      120_000,
      100,
    );

    proc.kill('SIGTERM');
    await waitFor(
      async () => (lines().some((l) => l.msg === 'SIGTERM received: shutting down') ? true : undefined),
      'the first SIGTERM to be taken',
      10_000,
      50,
    );
    expect(running(childPid)).toBe(true);
    // A child that cannot answer: a long TF.js op holds its event loop, so neither its own handler
    // nor its IPC channel's close runs. Stopped here; only a SIGKILL ends it.
    process.kill(childPid, 'SIGSTOP');
    proc.kill('SIGTERM');
    expect(await exited).toBe(1);
    await waitFor(async () => (running(childPid) ? undefined : true), 'the child to be killed', 10_000, 50);
    expect(lines().some((l) => l.msg === 'SIGTERM received again: exiting now')).toBe(true);
    const row = await db.job.findUniqueOrThrow({ where: { id: up.body.jobId } });
    expect(row.state).toBe('active');
  }, 180_000);
});
