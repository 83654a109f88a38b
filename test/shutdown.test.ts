/**
 * `onShutdown`: one signal closes gracefully (status 0, `force` not run); a second signal while
 * the cleanup still runs forces exit (status 1) after `force`, which `npm start` uses to kill its
 * worker children (sessions of their own, beyond a terminal's Ctrl-C). Run in child processes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** A process whose cleanup resolves when `settles`, else never; it prints each log line and "forced". */
function program(settles: boolean): string {
  return `
    const { onShutdown } = require('./src/shutdown');
    onShutdown(
      () => new Promise((resolve) => { if (${settles}) setTimeout(resolve, 50); }),
      (m) => console.log(m),
      () => console.log('forced'),
    );
    console.log('ready');
    setInterval(() => {}, 1000);`;
}

/** Starts `code`, sends `signals` (each once the output holds what precedes it), and resolves with the status and output. */
function run(code: string, steps: { after: string; signal: NodeJS.Signals }[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let next = 0;
    proc.stdout.on('data', (d) => {
      out += d;
      while (next < steps.length && out.includes(steps[next].after)) proc.kill(steps[next++].signal);
    });
    proc.once('error', reject);
    proc.once('exit', (status) => resolve({ status, out }));
  });
}

describe('onShutdown', () => {
  it('closes gracefully on one signal', async () => {
    const { status, out } = await run(program(true), [{ after: 'ready', signal: 'SIGTERM' }]);
    expect(status).toBe(0);
    expect(out).toContain('SIGTERM received: shutting down');
    expect(out).not.toContain('forced');
  }, 60_000);

  it('forces exit on a second signal, after its force hook', async () => {
    const { status, out } = await run(program(false), [
      { after: 'ready', signal: 'SIGINT' },
      { after: 'shutting down', signal: 'SIGINT' },
    ]);
    expect(status).toBe(1);
    expect(out).toContain('SIGINT received again: exiting now');
    expect(out.trim().endsWith('forced')).toBe(true);
  }, 60_000);
});
