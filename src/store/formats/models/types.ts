/** The parser's public shapes; kept apart from index.ts so the format readers can share them without a cycle. */

export type ModelFileFormat = 'keras' | 'h5' | 'tfjs';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

export interface ParsedModel {
  readonly format: ModelFileFormat;
  /** keras_version recorded in the file, when present (e.g. '2.2.4', '3.15.1'). */
  readonly kerasVersion?: string;
  /**
   * tfjs-layers (Keras 2 schema) model config: `{class_name: 'Sequential'|'Functional'|'Model', config}`,
   * exactly what `tf.models.modelFromJSON` / `tf.io.fromMemory`'s `modelTopology` accepts.
   */
  readonly modelTopology: Record<string, unknown>;
  /** One entry per weight, named as tfjs-layers expects (`<layer>/<weight>`), dtype float32. */
  readonly weightSpecs: WeightSpec[];
  /** All weights concatenated in weightSpecs order, float32 little-endian. */
  readonly weightData: ArrayBuffer;
}

/**
 * Bounds on extraction; they protect the worker from zip bombs and huge archives. The compression
 * ratio is not one of them: it is the shared zip policy's (`MAX_COMPRESSION_RATIO` in `../zip.ts`).
 */
export interface ModelParseLimits {
  /** Most entries a zip may list in its central directory. */
  maxEntries: number;
  /** Most bytes all extracted zip entries (or all HDF5 weights) may add up to, counted while inflating. */
  maxUncompressedBytes: number;
}

export const DEFAULT_MODEL_PARSE_LIMITS: ModelParseLimits = Object.freeze({
  maxEntries: 1000,
  maxUncompressedBytes: 2 * 1024 ** 3,
});
