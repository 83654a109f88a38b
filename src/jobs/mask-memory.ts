/**
 * The module runners hold every module's masks as float32 tensors: [M, ...shape] for the shared run,
 * [units, M] for its divergence test, and [M, 1, ...shape] for the naive path, so 12 bytes per
 * (module, observed unit). 1000 modules of an ImageNet ResNet-18 (2.3 M observed units) would need
 * about 28 GB: the worker would be killed for memory, retried, and killed again. Such a job fails
 * at once instead, with the figure and what to do (bench/README.md, "Scale").
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
