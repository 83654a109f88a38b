/**
 * Default decomposition options (ALGORITHM.md): plain data, importable without loading TF.js. The
 * one definition: the API's request schema takes its `default:` values from here.
 */
export const DEFAULT_DECOMPOSE_OPTIONS = {
  samplesPerClass: 1000,
  tanglingRatio: 1,
  tau: 0,
  maskPoint: 'post-activation' as 'post-activation' | 'pre-activation',
  backtrack: 'none' as 'none' | 'last-layer' | 'input',
  delta: 0.5,
  confidentOnly: false,
  seed: 0,
};

/**
 * Inputs per forward pass while sampling and counting activity: an engine tuning value (memory
 * against speed), so not a user option and not recorded with a job's options.
 */
export const DECOMPOSE_BATCH_SIZE = 128;

/**
 * Float32 bytes of observed activations one counting batch may read back. A batch's every
 * observation point is summed and read back at once, and the backend holds the batch's
 * activations besides: a ResNet-18 at 224x224 (2.3 M units, 9.2 MB per input) in batches of 128
 * held about 4 GB beyond the counts; capped, it runs in batches of 29.
 */
export const DECOMPOSE_BATCH_BYTES = 256 * 1024 ** 2;

/** The counting batch for a model with `units` observed units per input: DECOMPOSE_BATCH_SIZE, less for large ones. */
export function decomposeBatchSize(units: number): number {
  return Math.max(1, Math.min(DECOMPOSE_BATCH_SIZE, Math.floor(DECOMPOSE_BATCH_BYTES / (4 * Math.max(1, units)))));
}

/**
 * Bytes of the largest layer output one prediction batch may hold (predictBatchSize): a forward
 * pass holds a few of its largest activations at a time. predict's own default, 32 images per
 * batch, ran ResNet-20 about 1.4x slower per image than 256 on tfjs-node; capped by this, ResNet-20
 * runs whole 256-image batches and a 224x224 ResNet-18 (a 64x112x112 output) batches of 83.
 */
export const PREDICT_BATCH_BYTES = 256 * 1024 ** 2;

/**
 * Bytes the float32 tensors of the dense divergence test may take in all (8 per module and unit:
 * the [M, ...] masks and the [U' x M] indicator); points past it, smallest first, use the
 * bitsets (1/8 byte per module and unit). 1000 modules of a 224x224 ResNet-18 would need 18 GB dense.
 */
export const DENSE_MASK_BYTES = 512 * 1024 ** 2;

/**
 * Defaults of `options.compact` (compact modules) besides its required FLOPs budget. The criterion,
 * allocation and ridge strength are the winners of `npm run bench -- --only compact`
 * (bench/README.md); `calibration` is concern inputs per module (as many tangling inputs).
 */
export const DEFAULT_COMPACT_OPTIONS = {
  criterion: 'taylor' as 'activation-rate' | 'energy' | 'taylor',
  allocation: 'uniform' as 'uniform' | 'global',
  refit: true,
  ridge: 1e-3,
  calibration: 256,
};
