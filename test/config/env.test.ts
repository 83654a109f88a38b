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
});
