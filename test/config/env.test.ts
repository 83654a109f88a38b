import { ConfigError, ENV_VARS, loadConfig } from '../../src/config/env';

describe('loadConfig', () => {
  it('has working defaults for every documented variable', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      redisUrl: 'redis://127.0.0.1:6379',
      workers: 1,
      workerConcurrency: 1,
      tfjsBackend: 'auto',
      maxUploadBytes: 1024 ** 3,
    });
    expect(c.databaseUrl).toMatch(/^postgresql:\/\/.*127\.0\.0\.1:5432\//);
    expect(Object.isFrozen(c)).toBe(true);
    expect(ENV_VARS).toEqual(
      expect.arrayContaining(['PORT', 'HOST', 'DATABASE_URL', 'REDIS_URL', 'BLOB_DIR', 'MAX_UPLOAD_BYTES', 'WORKER_CONCURRENCY', 'WORKERS', 'TFJS_BACKEND']),
    );
  });

  it('reads the environment', () => {
    const c = loadConfig({ PORT: '8080', WORKERS: '0', TFJS_BACKEND: 'wasm', MAX_UPLOAD_BYTES: '1000', REDIS_URL: 'redis://h:1' });
    expect(c).toMatchObject({ port: 8080, workers: 0, tfjsBackend: 'wasm', maxUploadBytes: 1000, redisUrl: 'redis://h:1' });
  });

  it('reports every invalid variable at once, by name', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', TFJS_BACKEND: 'gpu', DATABASE_URL: 'mysql://x', WORKERS: '-1', MAX_UPLOAD_BYTES: '0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    for (const name of ['PORT', 'TFJS_BACKEND', 'DATABASE_URL', 'WORKERS', 'MAX_UPLOAD_BYTES']) expect(msg).toContain(name);
    expect((err as ConfigError).problems).toHaveLength(5);
  });

  it('chooses the blob store: fs by default, s3 with a bucket, path-style for an endpoint', () => {
    expect(loadConfig({}).blobStore).toBe('fs');
    const minio = loadConfig({ BLOB_STORE: 's3', S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' });
    expect(minio.s3).toEqual({
      endpoint: 'http://minio:9000',
      bucket: 'b',
      region: 'us-east-1',
      prefix: '',
      forcePathStyle: true,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    });
    // AWS itself: virtual-hosted URLs, and credentials from the SDK's chain when none are given.
    const aws = loadConfig({ BLOB_STORE: 's3', S3_BUCKET: 'b', S3_REGION: 'eu-west-1', S3_PREFIX: 'prod/' });
    expect(aws.s3).toEqual({ bucket: 'b', region: 'eu-west-1', prefix: 'prod/', forcePathStyle: false });
    expect(loadConfig({ BLOB_STORE: 's3', S3_BUCKET: 'b', S3_ENDPOINT: 'http://x:1', S3_FORCE_PATH_STYLE: 'false' }).s3.forcePathStyle).toBe(false);
  });

  it('refuses an s3 store it could not use, naming each variable', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(problems({ BLOB_STORE: 's3' })).toMatch(/S3_BUCKET/);
    expect(problems({ BLOB_STORE: 'gcs' })).toMatch(/BLOB_STORE must be one of fs\|s3/);
    expect(problems({ S3_ENDPOINT: 'minio:9000' })).toMatch(/S3_ENDPOINT must be an http\(s\) URL/);
    expect(problems({ S3_PREFIX: 'no-slash' })).toMatch(/S3_PREFIX must end with/);
    expect(problems({ S3_FORCE_PATH_STYLE: 'yes' })).toMatch(/S3_FORCE_PATH_STYLE/);
    expect(problems({ AWS_ACCESS_KEY_ID: 'k' })).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together/);
    // Streamed blobs reach their key with one CopyObject: at most 5 GB on S3, unlimited on disk.
    const big = String(6 * 1024 ** 3);
    expect(problems({ BLOB_STORE: 's3', S3_BUCKET: 'b', MAX_UPLOAD_BYTES: big })).toMatch(/MAX_UPLOAD_BYTES can be at most 5000000000 with BLOB_STORE=s3/);
    expect(problems({ BLOB_STORE: 's3', S3_BUCKET: 'b', MAX_DATASET_BYTES: big })).toMatch(/MAX_DATASET_BYTES can be at most 5000000000/);
    expect(problems({ BLOB_STORE: 's3', S3_BUCKET: 'b', MAX_UPLOAD_BYTES: '5000000000' })).toBe('');
    expect(problems({ MAX_UPLOAD_BYTES: big, MAX_DATASET_BYTES: big })).toBe('');
  });
});
