import fs from 'node:fs';

/**
 * A process's /proc/<pid>/stat (Linux), as fields from the third on (state, ppid, pgrp, session,
 * ...): the second, the command name, is in parentheses and may hold spaces, so the fields start
 * after the last ')'. Index i here is field i + 3 of proc(5).
 * @returns the fields, or undefined where there is no such process or no /proc
 */
export function procStatFields(pid: number | 'self'): string[] | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Field indexes into what procStatFields returns. */
export const STAT = { state: 0, ppid: 1, session: 3, utime: 11, stime: 12 } as const;
