/**
 * A worker's niceness, for every thread of its process. On Linux niceness belongs to a thread, and
 * `os.setPriority()` sets only the calling one: threads made later inherit it (TF.js's pools), but
 * those Node made at start-up do not, and they do the worker's garbage collection (V8's platform
 * threads) and its file reads and hashing (libuv's pool). Measured on a worker of `npm start`: 11
 * of its 16 threads stayed at niceness 0 beside the API.
 */
import fs from 'node:fs';
import os from 'node:os';
import { procStatFields, STAT } from './proc-stat';

/**
 * Sets `nice` on this thread and every other thread of the process (Linux: /proc/self/task; on
 * other systems the process's own call, which covers its threads there).
 * @returns how many threads were set
 * @throws when this thread's niceness cannot be set (e.g. raising it without the privilege)
 */
export function setProcessNiceness(nice: number): number {
  os.setPriority(nice);
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return 1;
  }
  let set = 0;
  for (const tid of tids) {
    try {
      os.setPriority(Number(tid), nice);
      set++;
    } catch {
      // A thread that ended since the listing.
    }
  }
  return set;
}

/**
 * Sets `nice` on this process's scheduling autogroup when the process leads its own session (a
 * child of `npm start` is forked into one). With Linux's autogroup (`sched_autogroup_enabled`,
 * used for tasks in the root cpu cgroup) a thread's niceness counts only against threads of its
 * own session: PostgreSQL and Redis, started in sessions of their own, shared the cores with the
 * worker as equals however high its niceness. The group's niceness is what they weigh against. A
 * worker in someone else's session (`npm run worker` from a shell) leaves that group alone.
 * @returns whether the autogroup's niceness was set
 */
export function setSessionGroupNiceness(nice: number): boolean {
  const fields = procStatFields('self');
  if (!fields || Number(fields[STAT.session]) !== process.pid) return false;
  try {
    fs.writeFileSync('/proc/self/autogroup', String(nice));
    return true;
  } catch {
    return false;
  }
}
