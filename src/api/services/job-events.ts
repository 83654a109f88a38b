/**
 * GET /jobs/:id/events: the job view as server-sent events, one per change, until a terminal state.
 * Changes are pushed (services/job-watch.ts), so a watcher costs no query while nothing happens.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import * as jobsRepo from '../../store/jobs';
import type { AppDeps } from '../deps';
import { jobView } from './jobs';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
export const KEEPALIVE_MS = 15_000;

/**
 * Answers with the event stream of job `id` (404 first when the owner does not have it). `open`
 * holds a stop function per open stream, so that the server can end them when it closes.
 */
export async function streamJobEvents(
  deps: AppDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  id: string,
  ownerId: string | null,
  open: Set<() => void>,
): Promise<void> {
  await jobsRepo.findJobView(deps.db, id, ownerId);
  const res = reply.raw;
  let last = '';
  let seq = 0;
  let ended = false;
  let unwatch: (() => void) | undefined;
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
  const finish = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepAlive);
    unwatch?.();
    open.delete(finish);
    res.end();
  };
  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // nginx and similar proxies would otherwise buffer the stream.
    'x-accel-buffering': 'no',
  });
  open.add(finish);
  request.raw.on('close', finish);
  const stop = await deps.jobWatch.watch(id, (row) => {
    if (ended) return;
    // Rows are read again on every change and reconnection: send only what the client has not seen.
    const data = JSON.stringify(jobView(row));
    if (data === last) return;
    last = data;
    res.write(`id: ${++seq}\nevent: job\ndata: ${data}\n\n`);
    if (jobsRepo.FINISHED_STATES.includes(row.state as jobsRepo.JobState)) finish();
  });
  if (ended) stop();
  else unwatch = stop;
}
