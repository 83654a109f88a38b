/** The engine's SampleSource over images held in memory (a gather per read, as a dataset reader does). */
import type { SampleSource } from '../../src/engine';

export function memorySource(images: Uint8Array | Float32Array, shape: readonly number[]): SampleSource {
  const per = shape.reduce((a, b) => a * b, 1);
  return {
    imageShape: shape,
    read: async (idx) => {
      const out = images instanceof Float32Array ? new Float32Array(idx.length * per) : new Uint8Array(idx.length * per);
      idx.forEach((i, j) => out.set(images.subarray(i * per, (i + 1) * per), j * per));
      return out;
    },
  };
}
