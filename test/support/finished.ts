import type { Server } from 'node:http';
import request from 'supertest';
import { waitFor } from './wait';

const FINAL = ['completed', 'failed', 'cancelled'];

export interface UntilFinishedOptions {
  readonly timeoutMs?: number;
  readonly everyMs?: number;
  /** Sees every body on the way (progress, stages). */
  readonly onPoll?: (body: any) => Promise<void> | void;
  /** An API key, for apps with keys on. */
  readonly auth?: string;
}

/**
 * Polls GET `path` (answering 200) until its `status` (a resource) or `state` (a job) is final, and
 * returns the body; a test then asserts which final state it reached.
 */
export function untilFinished(server: Server, path: string, opts: UntilFinishedOptions = {}): Promise<any> {
  return waitFor(
    async () => {
      const r = await request(server)
        .get(path)
        .set(opts.auth ? { authorization: `Bearer ${opts.auth}` } : {})
        .expect(200);
      await opts.onPoll?.(r.body);
      return FINAL.includes(r.body.status ?? r.body.state) ? r.body : undefined;
    },
    `${path} to finish`,
    opts.timeoutMs ?? 300_000,
    opts.everyMs ?? 250,
  );
}
