/**
 * The S3 multipart writer against a real S3-compatible server (s3rver): the object it completes
 * holds exactly the bytes written, a stream below one part is one PutObject, an upload uses at
 * most partsInFlight + 1 part buffers and partsInFlight requests at once, and a failure on either
 * side aborts the multipart upload and leaves no object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { MultipartWriter } from '../../src/store/s3-multipart';
import { startS3Server, TEST_S3_CREDENTIALS, type TestS3 } from '../support/s3-server';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

interface Sent {
  readonly command: string;
  readonly input: Record<string, unknown>;
}

/** A real client that records each command it sends and the most UploadPart requests open at once. */
function recordingClient(endpoint: string, failPart?: number) {
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_S3_CREDENTIALS });
  const sent: Sent[] = [];
  let open = 0;
  const stats = { maxOpenParts: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName);
      const input = args.input as Record<string, unknown>;
      sent.push({ command, input });
      if (command !== 'UploadPartCommand') return next(args);
      if (input.PartNumber === failPart) throw Object.assign(new Error(`injected failure of part ${failPart}`), { name: 'InjectedFailure' });
      stats.maxOpenParts = Math.max(stats.maxOpenParts, ++open);
      try {
        return await next(args);
      } finally {
        open--;
      }
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return { client, sent, stats, names: () => sent.map((s) => s.command) };
}

/** `bytes` as chunks of uneven sizes (1 byte up to ~1.3 MiB), as a request body arrives. */
function unevenChunks(bytes: Buffer, failAfter?: number): Readable {
  const sizes = [1, 65_536, 1_300_000, 7, 400_000, 16_384];
  return Readable.from(
    (function* chunks() {
      for (let at = 0, i = 0; at < bytes.length; i++) {
        if (failAfter !== undefined && at >= failAfter) throw new Error('the client went away');
        const n = Math.min(sizes[i % sizes.length]!, bytes.length - at);
        yield bytes.subarray(at, at + n);
        at += n;
      }
    })(),
    { objectMode: false },
  );
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let s3: TestS3;
let bucket: string;
beforeAll(async () => {
  s3 = await startS3Server();
  bucket = await s3.bucket();
});
afterAll(() => s3.stop());

async function readObject(client: S3Client, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function objectMissing(client: S3Client, key: string): Promise<boolean> {
  return readObject(client, key).then(
    () => false,
    (err: { name?: string }) => err.name === 'NoSuchKey',
  );
}

/**
 * How the writer's abort ended. s3rver does not implement AbortMultipartUpload (it answers
 * MethodNotAllowed), so the tests check that the abort was sent for the right upload; AWS and
 * MinIO drop the parts on it.
 */
function abortOutcome(writer: MultipartWriter): Promise<string> {
  return writer.abort().then(
    () => 'aborted',
    (err: { name?: string }) => String(err.name),
  );
}

describe('MultipartWriter', () => {
  it('writes a stream of many parts exactly, with bounded buffers and requests', async () => {
    const { client, sent, stats, names } = recordingClient(s3.endpoint);
    const bytes = randomBytes(4 * PART + 3 * MiB + 17);
    const key = 'many-parts';
    await pipeline(unevenChunks(bytes), new MultipartWriter({ client, bucket, key, partBytes: PART, partsInFlight: 2 }));

    expect(sha256(await readObject(client, key))).toBe(sha256(bytes));
    const parts = sent.filter((s) => s.command === 'UploadPartCommand');
    expect(parts.map((p) => p.input.PartNumber)).toEqual([1, 2, 3, 4, 5]);
    expect(parts.map((p) => (p.input.Body as Buffer).length)).toEqual([PART, PART, PART, PART, 3 * MiB + 17]);
    // Every part body is a view of one of at most partsInFlight + 1 reused buffers.
    expect(new Set(parts.map((p) => (p.input.Body as Buffer).buffer)).size).toBeLessThanOrEqual(3);
    expect(stats.maxOpenParts).toBeLessThanOrEqual(2);
    expect(names()).toEqual(['CreateMultipartUploadCommand', ...parts.map(() => 'UploadPartCommand'), 'CompleteMultipartUploadCommand', 'GetObjectCommand']);
    client.destroy();
  });

  it('sends a stream below one part, or an empty one, as one PutObject', async () => {
    const { client, names } = recordingClient(s3.endpoint);
    const small = randomBytes(PART - 1);
    await pipeline(unevenChunks(small), new MultipartWriter({ client, bucket, key: 'small', partBytes: PART, partsInFlight: 2 }));
    await pipeline(Readable.from([]), new MultipartWriter({ client, bucket, key: 'empty', partBytes: PART, partsInFlight: 2 }));

    expect(sha256(await readObject(client, 'small'))).toBe(sha256(small));
    expect((await readObject(client, 'empty')).length).toBe(0);
    expect(names()).toEqual(['PutObjectCommand', 'PutObjectCommand', 'GetObjectCommand', 'GetObjectCommand']);
    client.destroy();
  });

  it('writes a stream of exactly one part as a one-part multipart upload', async () => {
    const { client, names } = recordingClient(s3.endpoint);
    const bytes = randomBytes(PART);
    await pipeline(unevenChunks(bytes), new MultipartWriter({ client, bucket, key: 'one-part', partBytes: PART, partsInFlight: 2 }));
    expect(sha256(await readObject(client, 'one-part'))).toBe(sha256(bytes));
    expect(names()).toEqual(['CreateMultipartUploadCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand', 'GetObjectCommand']);
    client.destroy();
  });

  it('aborts the multipart upload when its source fails, and leaves no object', async () => {
    const { client, sent } = recordingClient(s3.endpoint);
    const key = 'source-fails';
    const writer = new MultipartWriter({ client, bucket, key, partBytes: PART, partsInFlight: 2 });
    await expect(pipeline(unevenChunks(randomBytes(4 * PART), 2 * PART + 10), writer)).rejects.toThrow('the client went away');
    expect(await abortOutcome(writer)).toMatch(/^(aborted|MethodNotAllowed)$/);

    const parts = sent.filter((s) => s.command === 'UploadPartCommand');
    const aborted = sent.filter((s) => s.command === 'AbortMultipartUploadCommand');
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(aborted).toHaveLength(1);
    expect(parts.every((p) => p.input.UploadId === aborted[0]!.input.UploadId)).toBe(true);
    expect(sent.some((s) => s.command === 'CompleteMultipartUploadCommand')).toBe(false);
    expect(await objectMissing(client, key)).toBe(true);
    client.destroy();
  });

  it('fails the stream and aborts when S3 refuses a part', async () => {
    const { client, sent } = recordingClient(s3.endpoint, 2);
    const key = 'part-fails';
    const writer = new MultipartWriter({ client, bucket, key, partBytes: PART, partsInFlight: 2 });
    await expect(pipeline(unevenChunks(randomBytes(6 * PART)), writer)).rejects.toThrow('injected failure of part 2');
    expect(await abortOutcome(writer)).toMatch(/^(aborted|MethodNotAllowed)$/);

    expect(sent.filter((s) => s.command === 'AbortMultipartUploadCommand')).toHaveLength(1);
    expect(sent.some((s) => s.command === 'CompleteMultipartUploadCommand')).toBe(false);
    // The writer stopped taking input: at most the parts already in hand went out.
    expect(sent.filter((s) => s.command === 'UploadPartCommand').length).toBeLessThanOrEqual(4);
    expect(await objectMissing(client, key)).toBe(true);
    client.destroy();
  });
});
