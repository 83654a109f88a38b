/**
 * Decomposition defaults have one definition (engine/defaults.ts): the API request schema's
 * `default:` values are read from it, and batch size, an engine tuning value, is not a user option.
 */
import { DecompositionOptions } from '../../src/api/schemas/decompositions';
import { DECOMPOSE_BATCH_SIZE, DEFAULT_DECOMPOSE_OPTIONS, decomposeBatchSize } from '../../src/engine/defaults';

describe('decomposition defaults', () => {
  it('the request schema offers exactly the user-facing options, with the engine defaults', () => {
    const schemaDefaults = Object.fromEntries(Object.entries(DecompositionOptions.properties).map(([k, v]) => [k, (v as { default?: unknown }).default]));
    expect(schemaDefaults).toEqual(DEFAULT_DECOMPOSE_OPTIONS);
  });

  it('batch size is an engine constant, not a recorded option', () => {
    expect(DEFAULT_DECOMPOSE_OPTIONS).not.toHaveProperty('batchSize');
    expect(DecompositionOptions.properties).not.toHaveProperty('batchSize');
    expect(DECOMPOSE_BATCH_SIZE).toBe(128);
  });

  it('counting batches shrink only for models whose observed activations pass the batch byte cap', () => {
    expect(decomposeBatchSize(188_416)).toBe(128); // ResNet-20, 32x32
    expect(decomposeBatchSize(753_664)).toBe(89); // ResNet-20, 64x64
    expect(decomposeBatchSize(2_308_096)).toBe(29); // ResNet-18, 224x224
    expect(decomposeBatchSize(1e9)).toBe(1);
    expect(decomposeBatchSize(0)).toBe(128);
  });
});
