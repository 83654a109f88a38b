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
