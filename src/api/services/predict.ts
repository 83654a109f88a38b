/**
 * POST /compositions/:id/predict: PNG/JPEG images (multipart `image`, repeatable) or JSON
 * {inputs: number[][][][]} of raw pixels. Decoded here, run by a predict job in a worker (the
 * engine lives there); the request waits up to IMPORT_WAIT_MS for the answer, else 202 + job.
 */
import type { FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BadRequestError } from '../../errors';
import { releaseBlobs } from '../../store/blob-refs';
import { decodeImage } from '../../store/formats/image';
import type { JobErrorInfo } from '../../store/jobs';
import { discardUpload, readUpload, uploadStore } from '../upload';
import { recordAndEnqueue } from './record-job';
import { findUsableComposition } from './usable-composition';
import { errorOfFailedJob, waitForJob } from './wait-job';
import type { AppDeps } from '../deps';

const MAX_INPUTS = 64;
const MAX_SIDE = 4096;

export const PredictJson = Type.Object(
  {
    inputs: Type.Array(
      Type.Array(Type.Array(Type.Array(Type.Number(), { minItems: 1, maxItems: 4 }), { minItems: 1, maxItems: MAX_SIDE }), { minItems: 1, maxItems: MAX_SIDE }),
      { minItems: 1, maxItems: MAX_INPUTS },
    ),
  },
  { additionalProperties: false },
);

interface Input {
  height: number;
  width: number;
  channels: number;
  pixels: ArrayLike<number>;
}

function fromJson(body: unknown): Input[] {
  if (!Value.Check(PredictJson, body)) {
    const first = [...Value.Errors(PredictJson, body)][0];
    throw new BadRequestError(`body ${first ? `${first.path || '(root)'} ${first.message}` : 'is invalid'}; expected {inputs: number[N][H][W][C]}`);
  }
  return (body as { inputs: number[][][][] }).inputs.map((img, n) => {
    const h = img.length;
    const w = img[0].length;
    const c = img[0][0].length;
    const pixels = new Float32Array(h * w * c);
    img.forEach((row, y) => {
      if (row.length !== w) throw new BadRequestError(`inputs[${n}] row ${y} has ${row.length} pixels, expected ${w}`);
      row.forEach((px, x) => {
        if (px.length !== c) throw new BadRequestError(`inputs[${n}][${y}][${x}] has ${px.length} channels, expected ${c}`);
        px.forEach((v, ch) => {
          // Stored as float32: a value past its range would turn into Infinity there.
          if (!Number.isFinite(Math.fround(v))) throw new BadRequestError(`inputs[${n}][${y}][${x}][${ch}] is ${v}, outside the float32 range`);
          pixels[(y * w + x) * c + ch] = v;
        });
      });
    });
    return { height: h, width: w, channels: c, pixels };
  });
}

async function fromImages(deps: AppDeps, request: FastifyRequest): Promise<Input[]> {
  const store = uploadStore(deps);
  const upload = await readUpload(request, { ...store, fileFields: ['image'], textFields: [], maxFiles: MAX_INPUTS });
  try {
    if (upload.files.length === 0) throw new BadRequestError('field "image" is required (PNG or JPEG, repeatable)');
    const out: Input[] = [];
    for (const f of upload.files) out.push(decodeImage(await deps.blobs.get(f.blob.key), f.filename || 'image'));
    return out;
  } finally {
    await discardUpload(upload, store);
  }
}

export type PredictOutcome = { ready: true; predictions: unknown } | { ready: false; jobId: string };

export async function predict(deps: AppDeps, request: FastifyRequest, id: string, ownerId: string | null): Promise<PredictOutcome> {
  await findUsableComposition(deps, id, ownerId, 'predicted with');
  const inputs = request.isMultipart() ? await fromImages(deps, request) : fromJson(request.body);
  const total = inputs.reduce((s, i) => s + i.pixels.length, 0);
  const packed = new Float32Array(total);
  let offset = 0;
  for (const i of inputs) {
    packed.set(i.pixels, offset);
    offset += i.pixels.length;
  }
  const blob = await deps.blobs.putBuffer(new Uint8Array(packed.buffer));
  const items = inputs.map(({ height, width, channels }) => ({ height, width, channels }));
  let jobId: string;
  try {
    jobId = await recordAndEnqueue(deps, { type: 'predict', data: { compositionId: id, inputBlob: blob.key, items }, ownerId, resourceId: id });
  } catch (err) {
    await releaseBlobs(deps.db, deps.blobs, [blob.key]);
    throw err;
  }
  const job = await waitForJob(deps, jobId, deps.config.importWaitMs);
  if (!job || job.state === 'queued' || job.state === 'active') return { ready: false, jobId };
  if (job.state !== 'completed') throw errorOfFailedJob(job.error as JobErrorInfo | null);
  return { ready: true, predictions: (job.result as { predictions: unknown }).predictions };
}
