/**
 * A private PostgreSQL cluster on its own port (initdb in a temporary directory), for tests that
 * stop and restart the database under the service without touching the shared one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

export interface PrivatePostgres {
  /** URL of a database on it (created by the service's own migration runner). */
  readonly url: (database: string) => string;
  stop(): void;
  start(): void;
  destroy(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (fs.existsSync(path.join(root, v, 'bin', 'initdb'))) return path.join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql');
}

/**
 * @param listen more addresses to listen on besides 127.0.0.1 (other hosts' view of this one, e.g.
 *   a veth address); clients from anywhere in `trustNet` (CIDR) are then let in without a password.
 */
export async function startPrivatePostgres(opts: { listen?: string[]; trustNet?: string } = {}): Promise<PrivatePostgres> {
  const bin = binDir();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnn-pg-'));
  const data = path.join(dir, 'data');
  // initdb refuses to run as root: run the server as the postgres user then.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres', dir]);
  const run = (tool: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : path.join(bin, tool), asRoot ? ['-u', 'postgres', '--', path.join(bin, tool), ...args] : args, {
      stdio: 'ignore',
      timeout: 60_000,
    });
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  if (opts.trustNet) fs.appendFileSync(path.join(data, 'pg_hba.conf'), `host all all ${opts.trustNet} trust\n`);
  const addresses = ['127.0.0.1', ...(opts.listen ?? [])].join(',');
  const start = () =>
    run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=${addresses} -c fsync=off`, 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  return {
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    start,
    stop,
    destroy: () => {
      try {
        stop();
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
