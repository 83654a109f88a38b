/**
 * Streams a multipart request: file parts go straight into the blob store (never buffered whole,
 * never named after the client's path), text fields are collected. If anything fails, the blobs
 * this request wrote are removed again unless another row already refers to the same content.
 */
import type { FastifyRequest } from 'fastify';
import '@fastify/multipart';
import { Transform } from 'node:stream';
import { BadRequestError, PayloadTooLargeError } from '../errors';
import type { BlobRef, BlobStore } from '../store/blobs';
import { isBlobReferenced } from '../store/blob-refs';
import type { AppDeps } from './deps';

export interface UploadedFile {
  readonly field: string;
  readonly filename: string;
  readonly blob: BlobRef;
  /** The first bytes, for format sniffing without reading the blob back. */
  readonly head: Buffer;
}

export interface Upload {
  readonly files: UploadedFile[];
  readonly fields: Record<string, string>;
}

export interface UploadOptions {
  readonly blobs: BlobStore;
  readonly maxBytes: number;
  readonly fileFields: readonly string[];
  readonly textFields: readonly string[];
  readonly maxFiles: number;
  /** How long the body may make no progress while the next part is awaited. */
  readonly idleMs: number;
  /** Whether a blob may be deleted (no row refers to it). */
  readonly isUnreferenced: (key: string) => Promise<boolean>;
}

const HEAD_BYTES = 64;

function headCapture(): { stream: Transform; head: () => Buffer } {
  const parts: Buffer[] = [];
  let have = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (have < HEAD_BYTES) {
        parts.push(chunk.subarray(0, HEAD_BYTES - have));
        have += Math.min(chunk.length, HEAD_BYTES - have);
      }
      done(null, chunk);
    },
  });
  return { stream, head: () => Buffer.concat(parts) };
}

export async function readUpload(request: FastifyRequest, opts: UploadOptions): Promise<Upload> {
  if (!request.isMultipart()) throw new BadRequestError('expected a multipart/form-data body');
  const files: UploadedFile[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  const parts = request.parts()[Symbol.asyncIterator]();
  // The part being stored, if any: a stalled client ends it so the blob write fails and cleans up.
  let storing: Transform | undefined;
  const idle = idleWatch(
    request.raw,
    opts.idleMs,
    () => storing !== undefined,
    (err) => storing?.destroy(err),
  );
  try {
    for (;;) {
      const next = await Promise.race([parts.next(), idle.expired]);
      if (next.done) break;
      const part = next.value;
      if (part.type === 'file') {
        if (!opts.fileFields.includes(part.fieldname)) {
          part.file.resume();
          throw new BadRequestError(`unexpected file field "${part.fieldname}"; expected ${opts.fileFields.join(', ')}`);
        }
        if (files.length >= opts.maxFiles) {
          part.file.resume();
          throw new BadRequestError(`at most ${opts.maxFiles} files per request`);
        }
        const cap = headCapture();
        const remaining = opts.maxBytes - total;
        if (remaining <= 0) throw new PayloadTooLargeError(opts.maxBytes);
        part.file.on('error', (err: Error) => cap.stream.destroy(err));
        storing = cap.stream;
        const blob = await opts.blobs.putStream(part.file.pipe(cap.stream), { maxBytes: remaining });
        storing = undefined;
        // The client's file name is only ever a default display name: strip what text columns cannot hold.
        files.push({ field: part.fieldname, filename: part.filename.replace(/\u0000/g, ''), blob, head: cap.head() });
        // multipart stops a file at its size limit and marks it truncated instead of failing the stream.
        if ((part.file as { truncated?: boolean }).truncated) throw new PayloadTooLargeError(opts.maxBytes);
        total += blob.size;
      } else {
        if (!opts.textFields.includes(part.fieldname)) {
          throw new BadRequestError(`unknown field "${part.fieldname}"; expected ${[...opts.fileFields, ...opts.textFields].join(', ')}`);
        }
        if (part.fieldname in fields) throw new BadRequestError(`field "${part.fieldname}" given twice`);
        const value = String(part.value);
        if (value.includes('\u0000')) throw new BadRequestError(`field "${part.fieldname}" must not contain NUL characters`);
        fields[part.fieldname] = value;
      }
    }
  } catch (err) {
    await discardUpload({ files, fields }, opts);
    throw isMalformedMultipart(err) ? new BadRequestError(`malformed multipart body: ${(err as Error).message}`) : err;
  } finally {
    idle.stop();
  }
  return { files, fields };
}

/**
 * Notices an upload that stopped making progress: a client that stops sending, or a malformed
 * body that stalls the parser (a part without a Content-Disposition, now and then, leaves it
 * waiting with the body half read). Either would otherwise hold the request open for good.
 * Progress is any body data within a window of `idleMs`. While a part is being stored, a body
 * paused by our own backpressure (a slow disk) is not idle. An expired window is judged only after
 * the event loop's pending I/O has run, so a loop blocked by other work (TF.js in an in-process
 * worker) is not mistaken for a silent client.
 */
function idleWatch(
  raw: FastifyRequest['raw'],
  idleMs: number,
  storingPart: () => boolean,
  onIdle: (err: Error) => void,
): { expired: Promise<never>; stop(): void } {
  let chunks = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let fail: (err: Error) => void = () => undefined;
  const expired = new Promise<never>((_, reject) => (fail = reject));
  expired.catch(() => undefined);
  const onData = () => chunks++;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    raw.off('data', onData);
  };
  const watch = () => {
    const seen = chunks;
    timer = setTimeout(
      () =>
        setImmediate(() => {
          if (stopped) return;
          if (chunks !== seen || (storingPart() && raw.readableFlowing === false)) return watch();
          stop();
          const err = new BadRequestError(`malformed or stalled multipart body: no progress for ${idleMs} ms`);
          onIdle(err);
          fail(err);
        }),
      idleMs,
    );
  };
  raw.on('data', onData);
  watch();
  return { expired, stop };
}

/** The multipart parser reports a broken body (no boundary, truncated, unterminated part) as plain Errors. */
function isMalformedMultipart(err: unknown): boolean {
  return err instanceof Error && /^Multipart: Boundary not found$|unexpected end of multipart data|^The needle cannot/i.test(err.message);
}

/** What every upload route shares: the blob store, the configured limits, and the blob-in-use check. */
export function uploadStore(deps: AppDeps): Pick<UploadOptions, 'blobs' | 'maxBytes' | 'idleMs' | 'isUnreferenced'> {
  return {
    blobs: deps.blobs,
    maxBytes: deps.config.maxUploadBytes,
    idleMs: deps.config.uploadIdleMs,
    isUnreferenced: async (key) => !(await isBlobReferenced(deps.db, key)),
  };
}

export async function discardUpload(upload: Upload, opts: Pick<UploadOptions, 'blobs' | 'isUnreferenced'>): Promise<void> {
  for (const f of upload.files) {
    if (await opts.isUnreferenced(f.blob.key).catch(() => false)) await opts.blobs.delete(f.blob.key);
  }
}
