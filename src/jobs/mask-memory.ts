/**
 * A budget for what a job holds per (module, observed unit) in a worker, so that a job too large
 * for it fails at once with the figure and what to do, instead of the worker running out of memory:
 * - the module masks, one byte per unit;
 * - the shared run's divergence bitsets, 1/8 byte;
 * - float32 tensors while they are small: the dense divergence test (8 bytes) and the naive
 *   fallback's masks (4), at most DENSE_MASK_BYTES in all past that size (engine/divergence.ts);
 * - pre-activation masks, which only run the naive way: 4 more bytes;
 * - a decomposition's activity snapshots, two per class: packed bits at tau = 0 (2/8 byte),
 *   int32 counts otherwise (8 bytes).
 * By that count 1000 modules of a ResNet-18 at 224x224 (2.3 M observed units) need 3.7 GB to
 * decompose at tau = 0 and 3.1 GB to compose (bench/README.md, "Scale").
 */
import { DENSE_MASK_BYTES } from '../engine/defaults';
import { UnprocessableError } from '../errors';

export interface MaskJob {
  readonly modules: number;
  /** Observed units summed over the modules (modules x the model's units, for one model). */
  readonly moduleUnits: number;
  readonly maskPoint: 'post-activation' | 'pre-activation';
  /** A decomposition's tau; undefined for a composition. */
  readonly tau?: number;
}

/** Bytes a job's masks, tensors and snapshots take by the count above. */
export function maskJobBytes(job: MaskJob): number {
  let perUnit = 1 + 1 / 8;
  if (job.maskPoint === 'pre-activation') perUnit += 4;
  if (job.tau !== undefined) perUnit += job.tau === 0 ? 2 / 8 : 8;
  return job.moduleUnits * perUnit + Math.min(DENSE_MASK_BYTES, 12 * job.moduleUnits);
}

const size = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`);

/**
 * @param parts the job's runners (a composition of compact modules has one per network)
 * @param limit bytes allowed (MAX_MASK_BYTES)
 * @param advice what the user can do instead
 * @throws UnprocessableError (422) when the job would exceed the limit
 */
export function assertMaskMemory(parts: readonly MaskJob[], limit: number, advice: string): void {
  const bytes = parts.reduce((a, p) => a + maskJobBytes(p), 0);
  if (bytes <= limit) return;
  const modules = parts.reduce((a, p) => a + p.modules, 0);
  const units = parts.reduce((a, p) => a + p.moduleUnits, 0);
  throw new UnprocessableError(
    `${modules} modules with ${units} observed units in all need about ${size(bytes)} of masks in the worker; ` +
      `this service allows ${size(limit)} (MAX_MASK_BYTES). ${advice}`,
  );
}
