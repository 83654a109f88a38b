/** The engine's only door: pure TF.js, no service imports. */
export { EngineError, type EngineErrorCode } from './errors';
export { SUPPORTED_LAYERS } from './layers/supported';
export { loadModel, describeModel, type ModelArtifactsLike, type ModelSummary, type LayerSummary } from './model';
export { preprocess, type PreprocessingSpec } from './preprocess';
export { evaluate, predictScores, type LabelledBatch, type EvaluateOptions, type EvaluationResult } from './evaluate';
export const ENGINE_VERSION = '0.1.0';
export { ModelPlan, type ObservationPoint, type HeadWeights } from './graph';
export { decompose, DEFAULT_DECOMPOSE_OPTIONS, DECOMPOSE_BATCH_SIZE, type DecomposeOptions, type Decomposition, type DecomposedModule } from './decompose';
export { ModuleRunner, type ModuleSpec, type MaskPoint } from './modules';
export { moduleHead, marginWeights, type ModuleHead } from './head';
export { topK, rankByMargin, probabilityFromMargin } from './metrics';
export type { SampleSource } from './activity';
export { evaluateModules, maskJaccard, type CompositionMetrics, type CompositionEvalOptions } from './decomposition-metrics';
export { backtrackMasks } from './backtrack';
export { CompositionScorer, compositionMargins, modelScores, type ModuleGroup, type CompositionScore } from './composition';
export { exportModule, EXPORT_WEIGHTS_FILE, type ExportableModule, type ExportedModule, type ExportedModelJson } from './export';
export { fitImage } from './resize';
export { batchCounts, toTensor } from './activity';
