/**
 * Proves that `POST /models` streams uploads to disk with flat memory.
 *
 * Starts the real API server (`node --import tsx src/main.ts`, API only, no worker) as a child
 * process, streams a generated multipart upload of `--size-mb` MiB (default 500) to it over HTTP,
 * samples the server's VmRSS from /proc every 100 ms while doing so, and prints the figures.
 * Cleans up afterwards: cancels the import job, deletes the model, stops the server, drops its
 * database, removes its BullMQ keys and its temp blob directory.
 *
 *   npm run bench:upload -- [--size-mb 500] [--port 3917] [--chunked] [--no-warmup] [--trace[=MS]]
 *
 * --chunked sends Transfer-Encoding: chunked instead of a Content-Length. By default a 1 MiB
 * warm-up upload runs first (it opens the DB pool and Redis connection and JIT-compiles the upload
 * path), so the baseline is a warm idle server; --no-warmup measures from the cold idle server.
 * --trace prints the sampled RSS timeline (every 500 ms, or every MS).
 *
 * Linux only (/proc). Needs local PostgreSQL and Redis, like the server itself. Exit code 0 when
 * the upload was answered 202/201 with the right size, 1 otherwise.
 *
 * bench/blobs.ts reuses its pieces (the server, the RSS sampler, the streamed multipart upload).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { procStatFields, STAT } from '../src/proc-stat';
import { dropDatabase, dropRedisPrefix } from './scratch-services';

const ROOT = path.resolve(__dirname, '..');
const MiB = 1024 * 1024;
const DB_NAME = 'cnn_modules_rss';
const DATABASE_URL = `postgresql://postgres:postgres@127.0.0.1:5432/${DB_NAME}`;
const REDIS_URL = 'redis://127.0.0.1:6379';
const QUEUE_PREFIX = 'rss';
const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
export const SAMPLE_MS = 100;
const STARTUP_TIMEOUT_MS = 90_000;
const OVERALL_TIMEOUT_MS = 6 * 60_000;

interface Options {
  sizeMb: number;
  port: number;
  chunked: boolean;
  warmup: boolean;
  /** Print the RSS timeline every this many ms (0: not at all). */
  trace: number;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { sizeMb: 500, port: 3917, chunked: false, warmup: true, trace: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positiveInt = (v: string, name: string, max: number): number => {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1 || n > max) throw new Error(`${name} must be an integer in [1, ${max}], got "${v}"`);
      return n;
    };
    switch (flag) {
      case '--size-mb':
        opts.sizeMb = positiveInt(value(), '--size-mb', 1000);
        break;
      case '--port':
        opts.port = positiveInt(value(), '--port', 65535);
        break;
      case '--chunked':
        opts.chunked = true;
        break;
      case '--no-warmup':
        opts.warmup = false;
        break;
      case '--trace':
        opts.trace = inline !== undefined ? positiveInt(inline, '--trace', 60_000) : 500;
        break;
      case '-h':
      case '--help':
        console.log('usage: npm run bench:upload -- [--size-mb N (default 500, max 1000)] [--port P] [--chunked] [--no-warmup] [--trace[=MS]]');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument "${arg}"`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------- memory sampling

export interface ProcMem {
  rssKb: number;
  hwmKb: number;
}

export function readProcMem(pid: number): ProcMem | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

/** CPU seconds (user + system) the process has used; /proc/<pid>/stat counts in USER_HZ = 100 ticks/s on Linux. */
export function readCpuSeconds(pid: number): number {
  const fields = procStatFields(pid);
  return fields ? (Number(fields[STAT.utime]) + Number(fields[STAT.stime])) / 100 : NaN;
}

export class Sampler {
  readonly samples: { t: number; rssKb: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pid: number) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  private sample(): void {
    const m = readProcMem(this.pid);
    if (m && Number.isFinite(m.rssKb)) this.samples.push({ t: performance.now(), rssKb: m.rssKb });
  }

  get peakKb(): number {
    return this.samples.reduce((max, s) => Math.max(max, s.rssKb), 0);
  }

  get lastKb(): number {
    return this.samples.at(-1)?.rssKb ?? NaN;
  }
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- server

export interface Server {
  child: ChildProcess;
  pid: number;
  output: () => string;
}

/**
 * The API alone (`WORKERS=0`, no import wait, 1 GiB upload limit, no API keys) on 127.0.0.1:`port`;
 * `overrides` adds the database, Redis prefix and blob store (and may override any of those).
 */
export function startServer(port: number, overrides: NodeJS.ProcessEnv): Server {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    WORKERS: '0',
    IMPORT_WAIT_MS: '0',
    MAX_UPLOAD_BYTES: String(1024 * MiB),
    LOG_LEVEL: 'warn',
    API_KEYS: '',
    ...overrides,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not start the server');
  // Keep only the tail of the server's output, to show it if something goes wrong.
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, pid: child.pid, output: () => tail };
}

export interface HttpResult {
  status: number;
  body: string;
}

export function request(port: number, method: string, urlPath: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export async function waitForHealth(server: Server, port: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < STARTUP_TIMEOUT_MS) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`the server exited during startup (code ${server.child.exitCode}, signal ${server.child.signalCode}):\n${server.output()}`);
    }
    try {
      const res = await request(port, 'GET', '/health');
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`GET /health did not answer 200 within ${STARTUP_TIMEOUT_MS / 1000} s:\n${server.output()}`);
}

export async function stopServer(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(35_000).then(() => true)]);
  if (timedOut) {
    console.warn('server did not exit 35 s after SIGTERM; sending SIGKILL');
    child.kill('SIGKILL');
    await exited;
  }
}

// ---------------------------------------------------------------- upload

export interface MultipartUpload {
  /** e.g. `/models`. */
  readonly path: string;
  readonly filename: string;
  /** Payload bytes of the `file` part. */
  readonly size: number;
  /** The payload from byte `offset` on: the next chunk (any length, at most size - offset). */
  readonly chunk: (offset: number) => Buffer;
  /** Text fields sent before the file. */
  readonly fields?: Readonly<Record<string, string>>;
  /** Transfer-Encoding: chunked instead of a Content-Length. */
  readonly chunked?: boolean;
  /** Destroys the request and rejects after this long (default: never). */
  readonly timeoutMs?: number;
}

export type UploadResult = HttpResult & { sentBytes: number; sentAt: number };

/** Streams a multipart body with text `fields` then one `file` part; never holds more than one chunk. */
export function uploadMultipart(port: number, upload: MultipartUpload): Promise<UploadResult> {
  const { size, chunked = false } = upload;
  const boundary = `----rss-${Date.now().toString(16)}${Math.random().toString(16).slice(2)}`;
  const fields = Object.entries(upload.fields ?? {})
    .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
    .join('');
  const preamble = Buffer.from(
    `${fields}--${boundary}\r\n` +
      `Content-Disposition: form-data; name="file"; filename="${upload.filename}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
  const headers: http.OutgoingHttpHeaders = { 'content-type': `multipart/form-data; boundary=${boundary}` };
  if (chunked) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = String(preamble.length + size + epilogue.length);

  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let sentAt = NaN; // when the last byte was handed to the socket
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    };
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: upload.path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body, sentBytes, sentAt });
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.on('finish', () => (sentAt = performance.now()));
    if (upload.timeoutMs !== undefined) {
      timer = setTimeout(() => req.destroy(new Error(`POST ${upload.path} timed out after ${upload.timeoutMs} ms`)), upload.timeoutMs);
    }

    let offset = 0; // payload bytes generated so far
    let aborted = false;
    req.on('close', () => (aborted = true));
    // An early answer (e.g. 413/415) ends the exchange: stop generating.
    req.on('response', () => (aborted = offset < size));

    const write = (buf: Buffer): boolean => {
      sentBytes += buf.length;
      return req.write(buf);
    };
    const pump = (): void => {
      while (!aborted && offset < size) {
        const chunk = upload.chunk(offset);
        if (chunk.length === 0 || chunk.length > size - offset) {
          req.destroy(new Error(`bad chunk of ${chunk.length} bytes at ${offset}`));
          return;
        }
        offset += chunk.length;
        if (!write(chunk)) {
          req.once('drain', pump); // backpressure: wait until the socket takes more
          return;
        }
      }
      if (!aborted) {
        write(epilogue);
        req.end();
      }
    };
    write(preamble);
    pump();
  });
}

/** A model upload of `size` random bytes that start with the HDF5 signature. */
function uploadModel(port: number, size: number, chunked: boolean): Promise<UploadResult> {
  return uploadMultipart(port, {
    path: '/models',
    filename: 'big.h5',
    size,
    chunked,
    chunk: (offset) => {
      // A fresh buffer per chunk: a written buffer may still sit in the socket's queue.
      const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(MiB, size - offset)));
      if (offset === 0) HDF5_SIGNATURE.copy(chunk, 0, 0, Math.min(HDF5_SIGNATURE.length, chunk.length));
      return chunk;
    },
  });
}

// ---------------------------------------------------------------- cleanup

// ---------------------------------------------------------------- main

export interface UploadBody {
  id?: string;
  jobId?: string;
  sizeBytes?: number;
  sha256?: string;
}

export function parseBody(raw: string): UploadBody {
  try {
    return JSON.parse(raw) as UploadBody;
  } catch {
    return {};
  }
}

/** Cancels the queued import (no worker runs), then deletes the model and its blob. */
async function deleteUpload(port: number, body: UploadBody): Promise<string[]> {
  const done: string[] = [];
  const call = (method: string, p: string) =>
    request(port, method, p).then(
      (r) => done.push(`${method} ${p} -> ${r.status}`),
      (e: Error) => done.push(`${method} ${p} failed: ${e.message}`),
    );
  if (body.jobId) await call('DELETE', `/jobs/${body.jobId}`);
  if (body.id) await call('DELETE', `/models/${body.id}`);
  return done;
}

/** Median VmRSS over ~1 s, after `settleMs` of quiet. */
export async function idleRss(pid: number, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const idle: number[] = [];
  for (let i = 0; i < 10; i++) {
    idle.push(readProcMem(pid)!.rssKb);
    await sleep(SAMPLE_MS);
  }
  return idle.sort((a, b) => a - b)[idle.length >> 1]!;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const size = opts.sizeMb * MiB;
  const blobDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cnn-rss-blobs-'));
  let server: Server | undefined;
  let ok = false;
  const cleanups: string[] = [];

  const overall = setTimeout(() => {
    console.error(`giving up after ${OVERALL_TIMEOUT_MS / 1000} s`);
    server?.child.kill('SIGKILL');
    fs.rmSync(blobDir, { recursive: true, force: true });
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  overall.unref();

  try {
    console.log(`starting the server on port ${opts.port} (blobs in ${blobDir}, database ${DB_NAME}) ...`);
    server = startServer(opts.port, { BLOB_DIR: blobDir, DATABASE_URL, REDIS_URL, QUEUE_PREFIX });
    const startupMs = await waitForHealth(server, opts.port);
    const { pid } = server;
    console.log(`server pid ${pid} healthy after ${(startupMs / 1000).toFixed(1)} s`);

    // Cold idle baseline: let startup garbage settle first.
    const coldKb = await idleRss(pid, 2000);
    let warmKb = coldKb;
    let warmup = '';
    if (opts.warmup) {
      // The first request opens the PostgreSQL pool and the Redis connection and JIT-compiles the
      // upload path; a 1 MiB upload pays for that so the measured delta is the upload's own.
      const t = performance.now();
      const w = await uploadModel(opts.port, MiB, opts.chunked);
      const wBody = parseBody(w.body);
      warmup = `1 MiB -> ${w.status} in ${((performance.now() - t) / 1000).toFixed(2)} s; ${(await deleteUpload(opts.port, wBody)).join(', ')}`;
      if (w.status !== 202 && w.status !== 201) throw new Error(`warm-up upload answered ${w.status}: ${w.body}`);
      warmKb = await idleRss(pid, 2000);
    }
    const baselineKb = warmKb;
    const hwmBeforeKb = readProcMem(pid)!.hwmKb;

    console.log(`uploading ${opts.sizeMb} MiB (${size} bytes, ${opts.chunked ? 'chunked' : 'content-length'}) to POST /models ...`);
    const sampler = new Sampler(pid);
    sampler.start();
    const cpu0 = readCpuSeconds(pid);
    const t0 = performance.now();
    const res = await uploadModel(opts.port, size, opts.chunked);
    const tEnd = performance.now();
    const serverCpu = readCpuSeconds(pid) - cpu0;
    const elapsedMs = tEnd - t0;
    const peakKb = sampler.peakKb;
    const duringCount = sampler.samples.length;
    // After: keep sampling 2 s more, so allocations right after the response are seen too.
    await sleep(2000);
    sampler.stop();
    const after = readProcMem(pid)!;
    const peakInclAfterKb = sampler.peakKb;

    const body = parseBody(res.body);
    const blobPath = body.sha256 ? path.join(blobDir, 'sha256', body.sha256.slice(0, 2), body.sha256) : undefined;
    const blobSize = blobPath && fs.existsSync(blobPath) ? fs.statSync(blobPath).size : undefined;
    ok = (res.status === 202 || res.status === 201) && body.sizeBytes === size && blobSize === size;

    const rows: [string, string][] = [
      ['upload size', `${opts.sizeMb} MiB = ${size} bytes payload (${res.sentBytes} bytes on the wire incl. multipart framing)`],
      ['HTTP status', String(res.status)],
      ['response body', res.body.length > 600 ? `${res.body.slice(0, 600)}…` : res.body],
      ['blob on disk', blobSize === undefined ? 'not found' : `${blobSize} bytes`],
      [
        'time',
        `${(elapsedMs / 1000).toFixed(2)} s (last byte sent at ${((res.sentAt - t0) / 1000).toFixed(2)} s; after that: hash/write tail, fsync, DB row, enqueue)`,
      ],
      ['throughput', `${(size / MiB / (elapsedMs / 1000)).toFixed(1)} MiB/s`],
      [
        'server CPU during upload',
        `${serverCpu.toFixed(2)} s (${((100 * serverCpu) / (elapsedMs / 1000)).toFixed(0)}% of one core; ${os.cpus().length} cores shared with this script)`,
      ],
      ...(opts.warmup
        ? ([
            ['warm-up', warmup],
            ['RSS idle before warm-up', mb(coldKb)],
          ] as [string, string][])
        : []),
      [`RSS baseline (${opts.warmup ? 'warm ' : ''}idle)`, mb(baselineKb)],
      ['RSS peak during upload', `${mb(peakKb)} (${duringCount} samples every ${SAMPLE_MS} ms)`],
      ['peak - baseline', mb(peakKb - baselineKb)],
      ['RSS peak incl. 2 s after', `${mb(peakInclAfterKb)} (delta ${mb(peakInclAfterKb - baselineKb)})`],
      ['RSS after (+2 s)', mb(after.rssKb)],
      ['VmHWM before upload', mb(hwmBeforeKb)],
      [
        'VmHWM at end',
        `${mb(after.hwmKb)}${after.hwmKb > hwmBeforeKb ? ` (raised by ${mb(after.hwmKb - hwmBeforeKb)})` : ' (unchanged: the lifetime peak predates the upload)'}`,
      ],
      ['client (this script) maxRSS', mb(process.resourceUsage().maxRSS)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log('\n=== upload memory report ===');
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    if (opts.trace) {
      const every = Math.max(1, Math.round(opts.trace / SAMPLE_MS));
      const line = sampler.samples
        .filter((_, i) => i % every === 0)
        .map((s) => `${((s.t - t0) / 1000).toFixed(1)}s:${(s.rssKb / 1024).toFixed(0)}${s.t > tEnd ? '*' : ''}`)
        .join(' ');
      console.log(`${'RSS timeline (MiB, * = after response)'.padEnd(width)}  ${line}`);
    }
    console.log(`result: ${ok ? 'OK' : 'UNEXPECTED (see status/body above)'}\n`);

    cleanups.push(...(await deleteUpload(opts.port, body)));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    if (server) console.error(`--- server output (tail) ---\n${server.output()}`);
  } finally {
    if (server) {
      await stopServer(server);
      cleanups.push(`server stopped (code ${server.child.exitCode}, signal ${server.child.signalCode})`);
    }
    await fsp.rm(blobDir, { recursive: true, force: true });
    cleanups.push(`removed ${blobDir}`);
    await dropDatabase(DATABASE_URL).then(
      () => cleanups.push(`dropped database ${DB_NAME}`),
      (e: Error) => cleanups.push(`could not drop database ${DB_NAME}: ${e.message}`),
    );
    await dropRedisPrefix(REDIS_URL, QUEUE_PREFIX).then(
      (n) => cleanups.push(`removed ${n} Redis key(s) under "${QUEUE_PREFIX}:"`),
      (e: Error) => cleanups.push(`could not clean Redis: ${e.message}`),
    );
    console.log(`cleanup: ${cleanups.join('; ')}`);
    clearTimeout(overall);
  }
  return ok ? 0 : 1;
}

// Run as a script (npm run bench:upload), not when bench/blobs.ts imports the pieces above.
if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
