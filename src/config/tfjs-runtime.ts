/**
 * Picks the TF.js runtime once per process: tfjs-node-gpu, then tfjs-node, then wasm, then the
 * pure-JS cpu backend. Every package registers its backend into the one `@tensorflow/tfjs` the
 * engine imports, so the engine's code path is the same on all of them.
 */
import * as tf from '@tensorflow/tfjs';
import type { TfjsBackendChoice } from './env';

export interface TfjsRuntime {
  /** TF.js backend name: `tensorflow` (tfjs-node or tfjs-node-gpu), `wasm` or `cpu`. */
  readonly backend: string;
  /** The npm package that provides it. */
  readonly package: string;
  readonly version: string;
  /** Why preferred runtimes were skipped, for the start-up log. */
  readonly skipped: readonly string[];
}

let current: Promise<TfjsRuntime> | undefined;

interface Candidate {
  backend: string;
  package: string;
  load: () => Promise<void>;
}

const CANDIDATES: Record<Exclude<TfjsBackendChoice, 'auto'>, Candidate[]> = {
  tensorflow: [
    { backend: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', load: async () => void require('@tensorflow/tfjs-node-gpu') },
    { backend: 'tensorflow', package: '@tensorflow/tfjs-node', load: async () => void require('@tensorflow/tfjs-node') },
  ],
  wasm: [{ backend: 'wasm', package: '@tensorflow/tfjs-backend-wasm', load: async () => void require('@tensorflow/tfjs-backend-wasm') }],
  cpu: [{ backend: 'cpu', package: '@tensorflow/tfjs', load: async () => undefined }],
};

function candidatesFor(choice: TfjsBackendChoice): Candidate[] {
  if (choice === 'auto') return [...CANDIDATES.tensorflow, ...CANDIDATES.wasm, ...CANDIDATES.cpu];
  return CANDIDATES[choice];
}

async function select(choice: TfjsBackendChoice): Promise<TfjsRuntime> {
  const skipped: string[] = [];
  for (const c of candidatesFor(choice)) {
    try {
      await c.load();
      if (!(await tf.setBackend(c.backend))) throw new Error(`backend ${c.backend} did not initialise`);
      await tf.ready();
      return { backend: tf.getBackend(), package: c.package, version: tf.version.tfjs, skipped };
    } catch (err) {
      skipped.push(`${c.package}: ${firstLine(err)}`);
    }
  }
  throw new Error(`No TF.js runtime available for TFJS_BACKEND=${choice}:\n${skipped.join('\n')}`);
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0];
}

/** Selects (once) and returns the runtime; later calls return the first result. */
export function initTfjsRuntime(choice: TfjsBackendChoice): Promise<TfjsRuntime> {
  current ??= select(choice);
  return current;
}

/** The runtime chosen so far, if any (for `/ready` and `/metrics`). */
export function tfjsRuntime(): Promise<TfjsRuntime> | undefined {
  return current;
}
