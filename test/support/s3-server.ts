/**
 * An S3-compatible server for tests: s3rver from the npm registry (MinIO is not installable
 * here), on a free port of `host`, its data in a temporary directory. The service talks to it
 * through the plain S3 API only, as it would to MinIO or AWS.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export interface TestS3 {
  readonly endpoint: string;
  /** Makes a new empty bucket and returns its name. */
  bucket(): Promise<string>;
  stop(): Promise<void>;
}

/** s3rver accepts any key pair that it was told of; these are its defaults. */
export const TEST_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let buckets = 0;

export async function startS3Server(host = '127.0.0.1'): Promise<TestS3> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 's3rver-'));
  const server = new S3rver({ address: host, port: 0, silent: true, directory });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://${host}:${address.port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_S3_CREDENTIALS });
  return {
    endpoint,
    bucket: async () => {
      const name = `test-${process.pid}-${++buckets}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    stop: async () => {
      client.destroy();
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
