/**
 * GET /modules/:id/export: the module's standalone TF.js model. Built once by an export job (the
 * engine runs in workers, not here) and kept as a blob; the request waits up to IMPORT_WAIT_MS for
 * the first build, else answers 202 with the job to poll.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { NotFoundError } from '../../errors';
import type { JobErrorInfo } from '../../store/jobs';
import { errorOfFailedJob, waitForJob } from './wait-job';
import type { AppDeps } from '../deps';

export type ExportOutcome = { ready: true; stream: Readable; filename: string } | { ready: false; id: string; jobId: string };

export async function exportModuleZip(deps: AppDeps, id: string, ownerId: string | null): Promise<ExportOutcome> {
  const m = await deps.db.module.findFirst({ where: { id, ownerId } });
  if (!m) throw new NotFoundError('module', id);
  const filename = `module-${m.classIndex}-${m.className.replace(/[^A-Za-z0-9._-]/g, '_')}.zip`;
  if (m.exportBlob) return { ready: true, stream: deps.blobs.openRead(m.exportBlob), filename };

  // One export job per module at a time: join a running one rather than start another.
  let job = await deps.db.job.findFirst({ where: { resourceId: id, type: 'export-module', state: { in: ['queued', 'active'] } } });
  if (!job) {
    job = await deps.db.job.create({ data: { id: randomUUID(), ownerId, type: 'export-module', data: { moduleId: id }, resourceId: id } });
    try {
      await deps.queues.enqueue('export-module', job.id, { moduleId: id });
    } catch (err) {
      await deps.db.job.deleteMany({ where: { id: job.id } });
      throw err;
    }
  }
  const finished = await waitForJob(deps, job.id, deps.config.importWaitMs);
  if (!finished || finished.state === 'queued' || finished.state === 'active') return { ready: false, id, jobId: job.id };
  if (finished.state !== 'completed') throw errorOfFailedJob(finished.error as JobErrorInfo | null);
  const built = await deps.db.module.findUniqueOrThrow({ where: { id } });
  return { ready: true, stream: deps.blobs.openRead(built.exportBlob!), filename };
}
