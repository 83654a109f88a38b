/**
 * A budget for the module masks a job's runners hold, counted as 12 bytes per (module, observed
 * unit): float32 [M, ...shape] masks for the shared run, [units, M] for its divergence test (now only
 * the units where masks differ, so this is an upper bound) and [M, 1, ...shape] for the naive path.
 * By that count 1000 modules of an ImageNet ResNet-18 (2.3 M observed units) need about 28 GB; in the
 * scale bench a 1000-module network with a 56x56 stage passed 8 GB before it was stopped. Such a job
 * fails at once with the figure and what to do, instead of the worker running out of memory
 * (bench/README.md, "Scale").
 */
import { UnprocessableError } from '../errors';

export const RUNNER_BYTES_PER_MASK_UNIT = 12;

const size = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`);

/**
 * @param modules modules one job's runners hold
 * @param moduleUnits observed units summed over those modules (modules x the model's units, for one model)
 * @param limit bytes allowed (MAX_MASK_BYTES)
 * @param advice what the user can do instead
 * @throws UnprocessableError (422) when the masks would exceed the limit
 */
export function assertMaskMemory(modules: number, moduleUnits: number, limit: number, advice: string): void {
  const bytes = moduleUnits * RUNNER_BYTES_PER_MASK_UNIT;
  if (bytes <= limit) return;
  throw new UnprocessableError(
    `${modules} modules with ${moduleUnits} observed units in all need about ${size(bytes)} of masks in the worker (${RUNNER_BYTES_PER_MASK_UNIT} bytes each); ` +
      `this service allows ${size(limit)} (MAX_MASK_BYTES). ${advice}`,
  );
}
