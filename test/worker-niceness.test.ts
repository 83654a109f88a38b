/**
 * A worker's niceness reaches every thread of its process, those Node started before it was set
 * included (V8's platform threads, libuv's pool), and a worker leading its own session lowers its
 * scheduling autogroup too: checked from /proc on child processes.
 */
import { execFileSync, spawn } from 'node:child_process';
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

/** Runs `code` in a child Node process (tsx), in a session of its own when `detached`, and returns what it prints. */
function childInSession(code: string, detached: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, detached, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.once('error', reject);
    proc.once('exit', (status) => (status === 0 ? resolve(out) : reject(new Error(`the child exited ${status}`))));
  });
}

const SESSION_GROUP = `
  const fs = require('node:fs');
  const { setSessionGroupNiceness } = require('./src/worker-niceness');
  const set = setSessionGroupNiceness(7);
  console.log(JSON.stringify({ set, group: fs.readFileSync('/proc/self/autogroup', 'utf8').trim() }));`;

// Linux with autogroup (the machines this runs on have it): niceness counts between sessions only
// through the session's group.
(fs.existsSync('/proc/self/autogroup') ? describe : describe.skip)('setSessionGroupNiceness', () => {
  it("sets the group of a session the process leads, and leaves its parent's session alone", async () => {
    const own = JSON.parse(await childInSession(SESSION_GROUP, true)) as { set: boolean; group: string };
    expect(own.set).toBe(true);
    expect(own.group).toMatch(/ nice 7$/);

    const mine = fs.readFileSync('/proc/self/autogroup', 'utf8').trim();
    const shared = JSON.parse(await childInSession(SESSION_GROUP, false)) as { set: boolean; group: string };
    expect(shared.set).toBe(false);
    expect(shared.group).toBe(mine);
    expect(fs.readFileSync('/proc/self/autogroup', 'utf8').trim()).toBe(mine);
  }, 60_000);
});
