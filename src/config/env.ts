/**
 * The service's configuration: read once from environment variables, validated, frozen.
 * Defaults work on a developer machine with local PostgreSQL and Redis. This is the only
 * file that reads `process.env`.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ConfigError } from './errors';

export { ConfigError };

/** CopyObject's limit: the largest blob the S3 store can stream in. */
const S3_COPY_MAX_BYTES = 5_000_000_000;

export type TfjsBackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
/** Where `npm start` runs its WORKERS workers: child processes (default) or the API's own process. */
export type WorkerMode = 'process' | 'inline';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /**
   * Prefix of every BullMQ key in Redis; lets several deployments (or tests) share one Redis. By
   * default `cnn-<database name>` (queuePrefixFor), so deployments with different databases never
   * share queues.
   */
  readonly queuePrefix: string;
  /** Where blobs live: `fs` (BLOB_DIR) or `s3` (S3_*; BLOB_DIR then holds workers' local cache). */
  readonly blobStore: BlobStoreKind;
  readonly blobDir: string;
  readonly s3: S3Config;
  /** Size limit of a worker's local cache of blobs read whole (weights, masks) on the s3 store; 0: none. */
  readonly blobCacheBytes: number;
  /** The built web UI (`npm run build` writes it), served under /ui/. */
  readonly webDir: string;
  readonly maxUploadBytes: number;
  /** An upload whose body makes no progress this long (client stalled, parser stuck) is refused. */
  readonly uploadIdleMs: number;
  readonly workerConcurrency: number;
  /** Workers started by `npm start`; 0 runs the API alone. */
  readonly workers: number;
  /**
   * `process`: each worker is a child process, so TF.js work never blocks the API's event loop;
   * `inline`: the workers share the API's process (tests, tiny setups).
   */
  readonly workerMode: WorkerMode;
  /**
   * Scheduling niceness of every thread of a worker process, set before TF.js starts its own, and
   * of its autogroup when it leads a session (`npm start`'s children) (0 = as the API).
   */
  readonly workerNice: number;
  readonly tfjsBackend: TfjsBackendChoice;
  readonly logLevel: string;
  /** How long a worker holds a job lock without renewing it; a killed worker's job is retried after it. */
  readonly jobLockMs: number;
  readonly jobAttempts: number;
  /** How long POST /models waits for the import job before answering 202 instead of 201. */
  readonly importWaitMs: number;
  /** Fault injection for tests: a worker pauses this long after each progress report. */
  readonly jobTestDelayMs: number;
  readonly apiKeys: readonly string[];
  /** Largest model accepted, in parameters (422 over it). */
  readonly maxModelParams: number;
  /** Largest decoded dataset tensor accepted, in bytes (413 over it). */
  readonly maxDatasetBytes: number;
  /** Most bytes of module masks one decomposition or composition may hold in a worker (422 over it). */
  readonly maxMaskBytes: number;
  /** Longest a job may run before it fails (checked at its progress reports). */
  readonly jobTimeoutMs: number;
  /** How often workers compare unfinished job rows with the queue and re-queue the ones Redis lost; 0 never. */
  readonly reconcileIntervalMs: number;
  /** A job row younger than this is never re-queued (its request may still be enqueuing it). */
  readonly reconcileGraceMs: number;
  /** Requests per minute per API key (per client address when keys are off). */
  readonly rateLimitPerMinute: number;
  /** Power figures for the energy/CO2e estimate of each job (ALGORITHM.md section 7). */
  readonly energy: EnergyConfig;
}

export interface EnergyConfig {
  readonly pue: number;
  readonly cpuWatts: number;
  readonly dramWatts: number;
  readonly gpuWatts: number;
  readonly gpus: number;
  readonly co2eKgPerKwh: number;
}

type Env = Record<string, string | undefined>;

const DEFAULTS = {
  PORT: '3000',
  HOST: '0.0.0.0',
  DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_modules',
  REDIS_URL: 'redis://127.0.0.1:6379',
  // Empty: derived from DATABASE_URL's database name (queuePrefixFor).
  QUEUE_PREFIX: '',
  BLOB_STORE: 'fs',
  BLOB_DIR: './.data/blobs',
  BLOB_CACHE_BYTES: String(2 * 1024 ** 3),
  // Empty: AWS S3 itself; set for MinIO, Ceph RGW, R2, ...
  S3_ENDPOINT: '',
  S3_BUCKET: '',
  S3_REGION: 'us-east-1',
  S3_PREFIX: '',
  // Empty: path-style when S3_ENDPOINT is set (MinIO and most self-hosted servers), else virtual-hosted.
  S3_FORCE_PATH_STYLE: '',
  // Empty: the AWS SDK's default chain (instance role, profile) supplies credentials.
  AWS_ACCESS_KEY_ID: '',
  AWS_SECRET_ACCESS_KEY: '',
  AWS_SESSION_TOKEN: '',
  WEB_DIR: './dist/web',
  MAX_UPLOAD_BYTES: String(1024 * 1024 * 1024),
  UPLOAD_IDLE_MS: '30000',
  WORKER_CONCURRENCY: '1',
  WORKERS: '1',
  WORKER_MODE: 'process',
  WORKER_NICE: '19',
  TFJS_BACKEND: 'auto',
  LOG_LEVEL: 'info',
  JOB_LOCK_MS: '30000',
  JOB_ATTEMPTS: '3',
  JOB_TEST_DELAY_MS: '0',
  IMPORT_WAIT_MS: '60000',
  API_KEYS: '',
  RATE_LIMIT_PER_MINUTE: '1200',
  MAX_MODEL_PARAMS: '50000000',
  MAX_DATASET_BYTES: String(4 * 1024 ** 3),
  MAX_MASK_BYTES: String(8 * 1024 ** 3),
  JOB_TIMEOUT_MS: String(6 * 3600 * 1000),
  RECONCILE_INTERVAL_MS: '30000',
  RECONCILE_GRACE_MS: '15000',
  ENERGY_PUE: '1.58',
  ENERGY_CPU_WATTS: '65',
  ENERGY_DRAM_WATTS: '8',
  ENERGY_GPU_WATTS: '250',
  ENERGY_GPUS: '0',
  ENERGY_CO2E_KG_PER_KWH: '0.433',
} as const;

/** Documented variables: README, compose and the outside checks use these names. */
export const ENV_VARS = Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[];

export type BlobStoreKind = 'fs' | 's3';
const BLOB_STORES: readonly BlobStoreKind[] = ['fs', 's3'];

export interface S3Config {
  /** Unset: AWS S3 itself. */
  readonly endpoint?: string;
  readonly bucket: string;
  readonly region: string;
  /** '' or ending in '/': several deployments can share a bucket. */
  readonly prefix: string;
  readonly forcePathStyle: boolean;
  /** Unset: the SDK's default chain (instance role, profile). */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

function s3Config(get: (name: keyof typeof DEFAULTS) => string, problems: string[]): S3Config {
  const endpoint = get('S3_ENDPOINT');
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) problems.push(`S3_ENDPOINT must be an http(s) URL, got "${endpoint}"`);
  const prefix = get('S3_PREFIX');
  if (prefix && (!prefix.endsWith('/') || prefix.startsWith('/'))) problems.push(`S3_PREFIX must end with "/" and not start with one, got "${prefix}"`);
  const pathStyle = get('S3_FORCE_PATH_STYLE');
  if (!['', 'true', 'false'].includes(pathStyle)) problems.push(`S3_FORCE_PATH_STYLE must be true or false, got "${pathStyle}"`);
  const accessKeyId = get('AWS_ACCESS_KEY_ID');
  const secretAccessKey = get('AWS_SECRET_ACCESS_KEY');
  const sessionToken = get('AWS_SESSION_TOKEN');
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together');
  return {
    ...(endpoint ? { endpoint } : {}),
    bucket: get('S3_BUCKET'),
    region: get('S3_REGION'),
    prefix,
    forcePathStyle: pathStyle === '' ? Boolean(endpoint) : pathStyle === 'true',
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } } : {}),
  };
}

const BACKENDS: readonly TfjsBackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];
const WORKER_MODES: readonly WorkerMode[] = ['process', 'inline'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const PREFIX_CHARS = /^[A-Za-z0-9_-]+$/;

/**
 * The default BullMQ prefix of a deployment: `cnn-<database name>`. Two deployments with different
 * databases on one Redis then never take each other's jobs (issue 10), while the API and workers of
 * one deployment agree however they reach the database (host, port, user and options are left out).
 * A name with characters a prefix cannot hold, or too long, is cut and gets a hash of the full name,
 * so distinct names stay distinct. Deployments on different PostgreSQL servers with the same
 * database name still share queues: set QUEUE_PREFIX for them (a worker leaves alone a job whose
 * row is not in its database, so sharing costs delay, not failures).
 */
export function queuePrefixFor(databaseUrl: string): string {
  let name = '';
  try {
    const u = new URL(databaseUrl);
    // PostgreSQL's default database is the user's name.
    name = decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || 'postgres';
  } catch {
    // An invalid DATABASE_URL is reported by its own check.
    return 'cnn';
  }
  if (PREFIX_CHARS.test(name) && name.length <= 60) return `cnn-${name}`;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `cnn-${name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 50)}-${hash}`;
}

/**
 * Builds the configuration from `env` (default `process.env`) with `overrides` on top.
 * @throws ConfigError listing every invalid variable at once.
 */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];
  const get = (name: keyof typeof DEFAULTS): string => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? DEFAULTS[name] : v.trim();
  };
  const int = (name: keyof typeof DEFAULTS, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = get(name);
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer in [${min}, ${max}], got "${raw}"`);
      return Number(DEFAULTS[name]);
    }
    return n;
  };
  const num = (name: keyof typeof DEFAULTS, min: number, max: number): number => {
    const raw = get(name);
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${name} must be a number in [${min}, ${max}], got "${raw}"`);
      return Number(DEFAULTS[name]);
    }
    return n;
  };
  const url = (name: keyof typeof DEFAULTS, protocols: string[]): string => {
    const raw = get(name);
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
    } catch {
      problems.push(`${name} must be a ${protocols.join(' or ')}// URL, got "${raw}"`);
    }
    return raw;
  };

  const tfjsBackend = get('TFJS_BACKEND') as TfjsBackendChoice;
  if (!BACKENDS.includes(tfjsBackend)) {
    problems.push(`TFJS_BACKEND must be one of ${BACKENDS.join('|')}, got "${tfjsBackend}"`);
  }
  const workerMode = get('WORKER_MODE') as WorkerMode;
  if (!WORKER_MODES.includes(workerMode)) {
    problems.push(`WORKER_MODE must be one of ${WORKER_MODES.join('|')}, got "${workerMode}"`);
  }
  const logLevel = get('LOG_LEVEL');
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join('|')}, got "${logLevel}"`);
  }
  const queuePrefix = get('QUEUE_PREFIX') || queuePrefixFor(get('DATABASE_URL'));
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(queuePrefix)) {
    problems.push(`QUEUE_PREFIX must be 1-64 characters of [A-Za-z0-9_-], got "${queuePrefix}"`);
  }
  const blobStore = get('BLOB_STORE') as BlobStoreKind;
  if (!BLOB_STORES.includes(blobStore)) problems.push(`BLOB_STORE must be one of ${BLOB_STORES.join('|')}, got "${blobStore}"`);
  const s3 = s3Config(get, problems);
  if (blobStore === 's3' && !s3.bucket) problems.push('BLOB_STORE=s3 needs S3_BUCKET');
  const apiKeys = get('API_KEYS')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  if (apiKeys.some((k) => k.length < 16)) problems.push('API_KEYS entries must be at least 16 characters');

  const config: Config = {
    port: int('PORT', 0, 65535),
    host: get('HOST'),
    databaseUrl: url('DATABASE_URL', ['postgresql:', 'postgres:']),
    redisUrl: url('REDIS_URL', ['redis:', 'rediss:']),
    queuePrefix,
    blobStore,
    blobDir: path.resolve(get('BLOB_DIR')),
    s3,
    blobCacheBytes: int('BLOB_CACHE_BYTES', 0),
    webDir: path.resolve(get('WEB_DIR')),
    maxUploadBytes: int('MAX_UPLOAD_BYTES', 1),
    uploadIdleMs: int('UPLOAD_IDLE_MS', 100, 3_600_000),
    workerConcurrency: int('WORKER_CONCURRENCY', 1, 64),
    workers: int('WORKERS', 0, 64),
    workerMode,
    workerNice: int('WORKER_NICE', 0, 19),
    tfjsBackend,
    logLevel,
    jobLockMs: int('JOB_LOCK_MS', 1000),
    jobAttempts: int('JOB_ATTEMPTS', 1, 100),
    jobTestDelayMs: int('JOB_TEST_DELAY_MS', 0, 600_000),
    importWaitMs: int('IMPORT_WAIT_MS', 0, 3_600_000),
    apiKeys,
    rateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 1, 1_000_000),
    maxModelParams: int('MAX_MODEL_PARAMS', 1),
    maxDatasetBytes: int('MAX_DATASET_BYTES', 1),
    maxMaskBytes: int('MAX_MASK_BYTES', 1),
    jobTimeoutMs: int('JOB_TIMEOUT_MS', 1000),
    reconcileIntervalMs: int('RECONCILE_INTERVAL_MS', 0, 86_400_000),
    reconcileGraceMs: int('RECONCILE_GRACE_MS', 0, 86_400_000),
    energy: {
      pue: num('ENERGY_PUE', 1, 10),
      cpuWatts: num('ENERGY_CPU_WATTS', 0, 10_000),
      dramWatts: num('ENERGY_DRAM_WATTS', 0, 10_000),
      gpuWatts: num('ENERGY_GPU_WATTS', 0, 10_000),
      gpus: int('ENERGY_GPUS', 0, 64),
      co2eKgPerKwh: num('ENERGY_CO2E_KG_PER_KWH', 0, 10),
    },
    ...overrides,
  };
  if (config.blobStore === 's3') {
    // A streamed blob reaches its content address with one CopyObject, which S3 caps at 5 GB.
    for (const [name, value] of [
      ['MAX_UPLOAD_BYTES', config.maxUploadBytes],
      ['MAX_DATASET_BYTES', config.maxDatasetBytes],
    ] as const) {
      if (value > S3_COPY_MAX_BYTES)
        problems.push(`${name} can be at most ${S3_COPY_MAX_BYTES} with BLOB_STORE=s3 (S3 copies at most 5 GB at once), got ${value}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
