/**
 * Shared helpers of the benchmarks: command-line flags, backend selection, the ResNet-20 fixture,
 * CIFAR-10 binary batches as NHWC uint8, an in-memory SampleSource, timing and peak RSS.
 * Benchmarks only read the fixtures; they never touch the service's database, queue or blobs.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModel, type SampleSource } from '../src/engine';
import { parseModelFile } from '../src/store/formats/models';
import { initTfjsRuntime, type TfjsRuntime } from '../src/config/tfjs-runtime';
import type { TfjsBackendChoice } from '../src/config/env';

export const REPO_ROOT = path.resolve(__dirname, '..');
export const SHARED = path.resolve(REPO_ROOT, '..', 'shared');
export const RESNET_DIR = path.join(SHARED, 'fixtures', 'resnet20-cifar10');
export const CIFAR_DIR = path.join(SHARED, 'fixtures', 'cifar10-bin');
export const RESULTS_DIR = path.join(__dirname, 'results');
export const IMAGE_SHAPE = [32, 32, 3] as const;
export const PER_IMAGE = 32 * 32 * 3;

/** The fixture's preprocessing (ImageNet mean/std, see the fixture README). */
export const CIFAR_PREPROCESSING = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** `--name value` / `--name=value` / `--flag` parsing; unknown flags are an error. */
export function parseArgs(argv: string[], known: Record<string, 'string' | 'number' | 'boolean'>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let [name, value] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const kind = known[name];
    if (!kind)
      throw new Error(
        `unknown option --${name}; known: ${Object.keys(known)
          .map((k) => `--${k}`)
          .join(' ')}`,
      );
    if (kind === 'boolean') {
      out[name] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${value}`);
      out[name] = n;
    } else out[name] = value;
  }
  return out;
}

const BACKENDS: TfjsBackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** Selects the backend the way the service does (`auto`: tfjs-node, then wasm, then cpu). */
export async function selectBackend(choice: string): Promise<TfjsRuntime> {
  if (!BACKENDS.includes(choice as TfjsBackendChoice)) throw new Error(`--backend must be one of ${BACKENDS.join('|')}`);
  const runtime = await initTfjsRuntime(choice as TfjsBackendChoice);
  if (choice !== 'auto' && tf.getBackend() !== (choice === 'tensorflow' ? 'tensorflow' : choice)) {
    throw new Error(`asked for backend ${choice}, got ${tf.getBackend()}`);
  }
  return runtime;
}

/** ResNet-20 from model.h5, through the service's own parser and loader. */
export async function loadResnet(): Promise<tf.LayersModel> {
  return loadModel(await parseModelFile(fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))));
}

export interface Records {
  /** NHWC uint8, n * 3072. */
  readonly images: Uint8Array;
  readonly labels: Int32Array;
}

/** The first `n` records of a CIFAR-10 binary batch as NHWC uint8 plus labels (CHW planes transposed). */
export function cifarRecords(file: string, n = 10_000): Records {
  const buf = fs.readFileSync(path.join(CIFAR_DIR, file));
  const count = Math.min(n, Math.floor(buf.length / 3073));
  const images = new Uint8Array(count * PER_IMAGE);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const rec = buf.subarray(i * 3073, (i + 1) * 3073);
    labels[i] = rec[0];
    const base = i * PER_IMAGE;
    for (let p = 0; p < 1024; p++) {
      images[base + p * 3] = rec[1 + p];
      images[base + p * 3 + 1] = rec[1025 + p];
      images[base + p * 3 + 2] = rec[2049 + p];
    }
  }
  return { images, labels };
}

/** A SampleSource over images held in memory (a gather per read, as a dataset reader would do). */
export function memorySource(images: Uint8Array, shape: readonly number[] = IMAGE_SHAPE): SampleSource {
  const per = shape.reduce((a, b) => a * b, 1);
  return {
    imageShape: shape,
    read: async (idx) => {
      const out = new Uint8Array(idx.length * per);
      idx.forEach((i, j) => out.set(images.subarray(i * per, (i + 1) * per), j * per));
      return out;
    },
  };
}

export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** Peak resident set size of this process so far, KiB (getrusage ru_maxrss; VmHWM as a cross-check). */
export function peakRssKiB(): { maxRSS: number; vmHWM?: number } {
  const maxRSS = process.resourceUsage().maxRSS;
  let vmHWM: number | undefined;
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) vmHWM = Number(m[1]);
  } catch {
    // not Linux
  }
  return { maxRSS, vmHWM };
}

export function writeJson(name: string, data: unknown): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, name);
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** Plain-text table with right-aligned columns after the first. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)));
  const line = (r: string[]) => r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

export function pct(x: number, digits = 2): string {
  return `${(100 * x).toFixed(digits)}%`;
}

export function machine(): Record<string, unknown> {
  const os = require('node:os') as typeof import('node:os');
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavgAtStart: os.loadavg(),
    tfjs: tf.version.tfjs,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface Step {
  run: () => Promise<void>;
}

/**
 * Several batch sequences run interleaved by progress (the one furthest behind, as a fraction of its
 * length, goes next), each batch timed alone. Load from other processes drifts over seconds, so
 * batch-level interleaving spreads it evenly over the sequences: their sums compare fairly even
 * on a busy machine. Returns the summed seconds per sequence.
 */
export async function interleave(sequences: Record<string, Step[]>): Promise<Record<string, number>> {
  const names = Object.keys(sequences);
  const next = Object.fromEntries(names.map((n) => [n, 0]));
  const sum = Object.fromEntries(names.map((n) => [n, 0]));
  for (;;) {
    const open = names.filter((n) => next[n] < sequences[n].length);
    if (open.length === 0) break;
    const pick = open.reduce((a, b) => (next[b] / sequences[b].length < next[a] / sequences[a].length ? b : a));
    const t0 = now();
    await sequences[pick][next[pick]++].run();
    sum[pick] += now() - t0;
  }
  return sum;
}
