/** Model uploads: stream to the blob store, sniff the format, record the row, queue inspection. */
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BadRequestError, ConflictError, UnsupportedFormatError } from '../../errors';
import { sniffContainer } from '../../store/formats/models/detect';
import { releaseBlobs } from '../../store/blob-refs';
import { inTransaction } from '../../store/db';
import * as modelsRepo from '../../store/models';
import { countUnfinishedJobsOfModel, deleteJob, jobOf, jobsOf, type JobErrorInfo, type JobRow } from '../../store/jobs';
import type { PageRequest } from '../../store/page';
import { errorOfFailedJob, waitForJob } from './wait-job';
import { ClassNames, Preprocessing, type ModelViewT, type PreprocessingT } from '../schemas/models';
import { discardUpload, readUpload, uploadStore } from '../upload';
import type { AppDeps } from '../deps';
import { recordAndEnqueue } from './record-job';

/**
 * A model is ready once its import recorded it; before that its status is its import job's
 * (a cancelled or broken import shows as such, not as pending for ever).
 */
function modelStatus(row: modelsRepo.Model, job: JobRow | null | undefined): string {
  if (row.status === 'ready' || !job) return row.status;
  return job.state === 'failed' || job.state === 'cancelled' ? job.state : row.status;
}

export function modelView(row: modelsRepo.Model, jobId?: string, job?: JobRow | null): ModelViewT {
  return {
    id: row.id,
    name: row.name,
    format: row.format,
    status: modelStatus(row, job),
    inputShape: row.inputShape,
    numClasses: row.numClasses,
    params: row.params,
    layers: row.layers,
    preprocessing: row.preprocessing as PreprocessingT,
    classNames: row.classNames,
    sizeBytes: row.sizeBytes,
    sha256: row.sha256,
    createdAt: row.createdAt.toISOString(),
    ...(jobId ? { jobId } : {}),
  };
}

function parseJsonField<T>(name: string, raw: string | undefined, check: (v: unknown) => string | undefined): T | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new BadRequestError(`field "${name}" is not valid JSON`);
  }
  const problem = check(value);
  if (problem) throw new BadRequestError(`field "${name}" ${problem}`);
  return value as T;
}

function schemaCheck(schema: TSchema) {
  return (v: unknown): string | undefined => {
    if (Value.Check(schema, v)) return undefined;
    const first = [...Value.Errors(schema, v)][0];
    return first ? `${first.path || '(root)'} ${first.message}` : 'is invalid';
  };
}

/**
 * Stores the upload and queues its import; waits up to IMPORT_WAIT_MS for it.
 * @returns the model and whether it is ready (201) or still importing (202, poll the job).
 * @throws the import's own problem (4xx) when the file is not a usable model; nothing is kept then.
 */
export async function uploadModel(deps: AppDeps, request: FastifyRequest, ownerId: string | null): Promise<{ model: ModelViewT; ready: boolean }> {
  const store = uploadStore(deps);
  const upload = await readUpload(request, {
    ...store,
    fileFields: ['file'],
    textFields: ['name', 'preprocessing', 'classNames'],
    maxFiles: 1,
  });
  try {
    const file = upload.files[0];
    if (!file) throw new BadRequestError('field "file" is required');
    const kind = sniffContainer(file.head);
    if (!kind) {
      throw new UnsupportedFormatError('not a Keras HDF5 file (.h5) nor a zip (.keras or TF.js); the format is detected from the bytes');
    }
    const name = upload.fields.name?.trim() || file.filename || 'model';
    if (name.length > 200) throw new BadRequestError('field "name" is longer than 200 characters');
    const preprocessing = parseJsonField<PreprocessingT>('preprocessing', upload.fields.preprocessing, schemaCheck(Preprocessing)) ?? { scale: 1 };
    const classNames = parseJsonField<string[]>('classNames', upload.fields.classNames, schemaCheck(ClassNames));
    if (preprocessing.mean && preprocessing.std && preprocessing.mean.length !== preprocessing.std.length) {
      throw new BadRequestError('field "preprocessing": mean and std must have the same length');
    }

    const modelId = randomUUID();
    const { model, insert } = modelsRepo.modelInsert({
      id: modelId,
      ownerId,
      name,
      format: kind === 'hdf5' ? 'h5' : 'zip',
      sizeBytes: file.blob.size,
      sha256: file.blob.key,
      sourceBlob: file.blob.key,
      preprocessing: { ...preprocessing, scale: preprocessing.scale ?? 1 },
      ...(classNames ? { classNames } : {}),
    });
    const jobId = await recordAndEnqueue(
      deps,
      { type: 'inspect-model', data: { modelId }, ownerId, resourceId: modelId, modelId },
      () => [insert],
      (tx) => modelsRepo.deleteModel(tx, modelId),
    );
    return await awaitImport(deps, model, jobId);
  } catch (err) {
    await discardUpload(upload, store);
    throw err;
  }
}

async function awaitImport(deps: AppDeps, row: modelsRepo.Model, jobId: string): Promise<{ model: ModelViewT; ready: boolean }> {
  const job = await waitForJob(deps, jobId, deps.config.importWaitMs);
  if (!job || job.state === 'queued' || job.state === 'active') return { model: modelView(row, jobId), ready: false };
  if (job.state === 'completed') {
    return { model: modelView(await modelsRepo.findModelById(deps.db, row.id), jobId), ready: true };
  }
  const error = job.error as JobErrorInfo | null;
  if (job.state === 'failed' && error?.status && error.status < 500) {
    // The client gets the whole story now; the import left no model behind, so drop its job too.
    await deleteJob(deps.db, jobId);
  }
  throw errorOfFailedJob(job.state === 'cancelled' ? { title: 'Conflict', detail: 'the import was cancelled', status: 409, code: 'CONFLICT' } : error);
}

export async function getModel(deps: AppDeps, id: string, ownerId: string | null): Promise<ModelViewT> {
  const job = await jobOf(deps.db, id, 'inspect-model');
  return modelView(await modelsRepo.findModel(deps.db, id, ownerId), undefined, job);
}

export async function listModels(deps: AppDeps, ownerId: string | null, page: PageRequest): Promise<{ items: ModelViewT[]; nextCursor?: string }> {
  const p = await modelsRepo.listModels(deps.db, ownerId, page);
  const jobs = await jobsOf(
    deps.db,
    p.items.filter((m) => m.status !== 'ready').map((m) => m.id),
    'inspect-model',
  );
  return { ...p, items: p.items.map((r) => modelView(r, undefined, jobs.get(r.id))) };
}

/** 409 while jobs use it or decompositions of it exist; its finished evaluations go with it. */
export async function deleteModel(deps: AppDeps, id: string, ownerId: string | null): Promise<void> {
  const model = await inTransaction(deps.db, async (tx) => {
    const found = await modelsRepo.findModel(tx, id, ownerId);
    const busy = await countUnfinishedJobsOfModel(tx, id);
    if (busy > 0) throw new ConflictError(`model ${id} is used by ${busy} unfinished job(s)`);
    const decompositions = await modelsRepo.countDecompositionsOfModel(tx, id);
    if (decompositions > 0) throw new ConflictError(`model ${id} has ${decompositions} decomposition(s); delete them first`);
    await modelsRepo.deleteModel(tx, id);
    return found;
  });
  await releaseBlobs(deps.db, deps.blobs, [model.sourceBlob, model.canonicalBlob]);
}
