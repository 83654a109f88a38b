/**
 * GET /modules/:id/export: the module's standalone TF.js model. Built once by an export job (the
 * engine runs in workers, not here) and kept as a blob; the request waits up to IMPORT_WAIT_MS for
 * the first build, else answers 202 with the job to poll.
 */
import type { Readable } from 'node:stream';
import { findModule } from '../../store/modules';
import { unfinishedJob, type JobErrorInfo } from '../../store/jobs';
import { errorOfFailedJob, waitForJob } from './wait-job';
import { recordAndEnqueue } from './record-job';
import type { AppDeps } from '../deps';

export type ExportOutcome = { ready: true; stream: Readable; filename: string } | { ready: false; id: string; jobId: string };

export async function exportModuleZip(deps: AppDeps, id: string, ownerId: string | null): Promise<ExportOutcome> {
  const m = await findModule(deps.db, id, ownerId);
  const filename = `module-${m.classIndex}-${m.className.replace(/[^A-Za-z0-9._-]/g, '_')}.zip`;
  if (m.exportBlob) return { ready: true, stream: deps.blobs.openRead(m.exportBlob), filename };

  // One export job per module at a time: join a running one rather than start another.
  const running = await unfinishedJob(deps.db, id, 'export-module');
  const jobId = running?.id ?? (await recordAndEnqueue(deps, { type: 'export-module', data: { moduleId: id }, ownerId, resourceId: id }));
  const finished = await waitForJob(deps, jobId, deps.config.importWaitMs);
  if (!finished || finished.state === 'queued' || finished.state === 'active') return { ready: false, id, jobId };
  if (finished.state !== 'completed') throw errorOfFailedJob(finished.error as JobErrorInfo | null);
  const built = await findModule(deps.db, id, ownerId);
  return { ready: true, stream: deps.blobs.openRead(built.exportBlob!), filename };
}
