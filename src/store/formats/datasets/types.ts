/**
 * Types shared by the dataset readers. They live apart from `index.ts` so the per-format files can
 * use them without importing the module that imports them (no cycles for `madge`).
 */

export type DatasetFormat = 'cifar-bin' | 'idx' | 'npz' | 'image-folder';

export interface DatasetFile {
  readonly name: string;
  readonly bytes: Buffer;
}

export interface ParseDatasetOptions {
  /** Detected from the bytes (and, for CIFAR meta files, the names) when absent. */
  readonly format?: DatasetFormat;
  /** CIFAR-100 only: its records carry 2 label bytes (coarse, fine). */
  readonly labelMode?: 'fine' | 'coarse';
  /** Default 5,000,000. */
  readonly maxImages?: number;
  /** Total decoded image tensor bytes, default 4 GiB. */
  readonly maxBytes?: number;
  /** Per image H*W, default 4096*4096; guards huge declared dimensions. */
  readonly maxImagePixels?: number;
}

export type Shape4 = [number, number, number, number];

export interface ParsedDataset {
  readonly format: DatasetFormat;
  readonly count: number;
  /** [N, H, W, C], channels-last. */
  readonly shape: Shape4;
  readonly dtype: 'uint8' | 'float32';
  /** NHWC, length N*H*W*C. */
  readonly images: Uint8Array | Float32Array;
  /** Length N. */
  readonly labels: Int32Array;
  readonly numClasses: number;
  /** Length numClasses. */
  readonly classCounts: number[];
  readonly classNames?: string[];
}

/**
 * What a format reader hands to `drainPlan` (drain.ts): the declared tensor, checked against the
 * limits from headers alone, and the passes that produce it. A pass streams the upload and
 * yields bounded chunks, so neither tensor is ever whole in memory unless a sink collects it
 * (`parseDataset`) or the format cannot be streamed (Fortran-ordered .npy).
 */
export type TensorPlan = TensorInfo & (SeparatePasses | SharedPass);

export interface TensorInfo {
  readonly shape: Shape4;
  readonly dtype: 'uint8' | 'float32';
  readonly classNames?: string[];
  /** A ceiling the format itself implies (CIFAR-10 has 10 classes), used when there are no names. */
  readonly maxClasses?: number;
  /** Where images and labels come from, for error details. */
  readonly imageSource: string;
  readonly labelSource: string;
  /** Releases what the plan holds open (zip readers). */
  close(): void;
}

/** Labels and images in files or entries of their own: a cheap labels pass, then the images. */
export interface SeparatePasses {
  /** The labels in order; a format's own label checks (integer range) run here. */
  labels(): AsyncIterable<Int32Array>;
  /** The NHWC tensor in order: Uint8Array chunks for uint8, Float32Array chunks for float32. Format checks (finite floats) run here. */
  images(): AsyncIterable<Uint8Array | Float32Array>;
  readonly records?: undefined;
}

/**
 * Labels that come with the images (CIFAR's records; an image folder's chunks, so a bad image keeps
 * no labels): one pass yields both, for sinks that run side by side (split.ts).
 */
export interface SharedPass {
  records(): AsyncIterable<{ readonly labels: Int32Array; readonly images: Uint8Array | Float32Array }>;
  readonly labels?: undefined;
  readonly images?: undefined;
}
