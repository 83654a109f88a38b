/**
 * Bull Board at /queues: the BullMQ queues as their operators know them (waiting, active, failed,
 * retries), beside the job rows the API serves. It sits behind the API's authentication (the auth
 * plugin's hook runs for it). The board shows every owner's queue entries, so it is read-only
 * unless API keys are on: retrying or removing entries then needs a key, as every other action does.
 * Browsers cannot add a header to a page load, so for /queues the key may also come from the
 * `cnn_modules_key` cookie, which the web UI sets (path /queues) from the key the user typed in.
 *
 * Bull Board's page links its fonts from Google; the service must work offline and send users'
 * browsers nowhere else, so that link is cut from the page (the board falls back to system fonts).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import { JOB_TYPES } from '../../jobs/queues';
import type { AppDeps } from '../deps';

export const QUEUES_PATH = '/queues';

const EXTERNAL_STYLESHEET = /<link[^>]+href="https?:\/\/[^"]*"[^>]*>/g;

export async function queuesBoardPlugin(app: FastifyInstance, { deps, readOnly }: { deps: AppDeps; readOnly: boolean }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues: JOB_TYPES.map((type) => new BullMQAdapter(deps.queues.queue(type), { readOnlyMode: readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'cnn-modules queues' } },
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    const html = String(reply.getHeader('content-type') ?? '').startsWith('text/html');
    return html && typeof payload === 'string' ? payload.replace(EXTERNAL_STYLESHEET, '') : payload;
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: QUEUES_PATH });
}
