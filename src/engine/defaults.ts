/** Default decomposition options (ALGORITHM.md): plain data, importable without loading TF.js. */
export const DEFAULT_DECOMPOSE_OPTIONS = {
  samplesPerClass: 1000,
  tanglingRatio: 1,
  tau: 0,
  maskPoint: 'post-activation' as 'post-activation' | 'pre-activation',
  backtrack: 'none' as 'none' | 'last-layer' | 'input',
  delta: 0.5,
  confidentOnly: false,
  seed: 0,
  batchSize: 128,
};
