/**
 * The worker's memory budget for masks (mask-memory.ts): what an ImageNet-size job is counted at,
 * and which jobs the default MAX_MASK_BYTES (8 GiB) lets through.
 */
import { assertMaskMemory, maskJobBytes } from '../../src/jobs/mask-memory';

const GiB = 1024 ** 3;
// 1000 modules of a ResNet-18 at 224x224: 2,308,096 observed units each.
const resnet18 = { modules: 1000, moduleUnits: 1000 * 2_308_096 };

describe('mask memory budget', () => {
  it('counts bitsets and packed snapshots past the dense limit: 1000 ResNet-18 modules fit the default budget at tau 0', () => {
    const decompose = maskJobBytes({ ...resnet18, maskPoint: 'post-activation', tau: 0 });
    const compose = maskJobBytes({ ...resnet18, maskPoint: 'post-activation' });
    expect(decompose / 1e9).toBeCloseTo(3.71, 2);
    expect(compose / 1e9).toBeCloseTo(3.13, 2);
    expect(() => assertMaskMemory([{ ...resnet18, maskPoint: 'post-activation', tau: 0 }], 8 * GiB, '')).not.toThrow();
    // int32 counts (tau > 0) and the naive path's float32 masks (pre-activation) do not.
    expect(() => assertMaskMemory([{ ...resnet18, maskPoint: 'post-activation', tau: 0.1 }], 8 * GiB, 'Fewer.')).toThrow(
      /^1000 modules with 2308096000 observed units in all need about 20\.1 GiB of masks in the worker; this service allows 8\.0 GiB \(MAX_MASK_BYTES\)\. Fewer\.$/,
    );
    expect(() => assertMaskMemory([{ ...resnet18, maskPoint: 'pre-activation' }], 8 * GiB, '')).toThrow(/11\.5 GiB/);
  });

  it('counts small jobs at their dense tensors, and sums the parts of a composition', () => {
    expect(maskJobBytes({ modules: 10, moduleUnits: 1000, maskPoint: 'post-activation' })).toBe(1000 * (1.125 + 12));
    const part = { modules: 100, moduleUnits: 310_400, maskPoint: 'post-activation' as const };
    expect(() => assertMaskMemory([part], 5 * 1024 ** 2, '')).not.toThrow();
    expect(() => assertMaskMemory([part, part], 5 * 1024 ** 2, '')).toThrow(/^200 modules with 620800 observed units in all need about 7\.8 MiB/);
  });
});
