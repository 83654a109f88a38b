/**
 * A worker's niceness reaches every thread of its process, those Node started before it was set
 * included (V8's platform threads, libuv's pool): checked from /proc on a child process.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const linux = fs.existsSync('/proc/self/task');

/** Runs `code` in a child Node process (tsx) and returns what it prints. */
function child(code: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, encoding: 'utf8' });
}

/** Each thread's niceness, as the kernel reports it, from inside the process. */
const NICES = `
  const fs = require('node:fs');
  const nices = () => fs.readdirSync('/proc/self/task').map((t) => {
    const stat = fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });`;

(linux ? describe : describe.skip)('setProcessNiceness', () => {
  it('sets every thread, where os.setPriority sets one', () => {
    const out = child(`${NICES}
      const os = require('node:os');
      const { setProcessNiceness } = require('./src/worker-niceness');
      // Start libuv's pool before the niceness is set, as module loading may in a worker.
      fs.stat('.', () => {
        os.setPriority(7);
        const before = nices();
        const set = setProcessNiceness(9);
        console.log(JSON.stringify({ before, after: nices(), set }));
      });`);
    const { before, after, set } = JSON.parse(out) as { before: number[]; after: number[]; set: number };
    expect(before.length).toBeGreaterThan(4);
    // os.setPriority alone leaves Node's own threads as they were.
    expect(before.filter((n) => n === 7)).toHaveLength(1);
    expect(after).toEqual(after.map(() => 9));
    expect(set).toBe(after.length);
  });
});
