/**
 * The phase clock (`npm run bench -- --only phases`): it times every counting batch and the
 * masking of a decomposition, for the tau = 0 bitsets and the tau > 0 counts, and changes nothing
 * the decomposition finds.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-node';
import { DEFAULT_DECOMPOSE_OPTIONS, PhaseClock, decompose } from '../../src/engine';
import { memorySource } from '../support/sample-source';
import { seededClassifier } from '../support/seeded-net';

describe('PhaseClock', () => {
  const model = seededClassifier(4, 4, [12, 12, 3]);
  const n = 120;
  const images = Uint8Array.from({ length: n * 12 * 12 * 3 }, (_, i) => (i * 7919) % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  const source = memorySource(images, [12, 12, 3]);
  afterAll(() => model.dispose());

  it.each([0, 0.1])('times every batch and the masking at tau %p, and finds the same masks', async (tau) => {
    const options = { ...DEFAULT_DECOMPOSE_OPTIONS, preprocessing: { scale: 1 / 255 }, samplesPerClass: 20, tau, batchSize: 16 };
    const plain = await decompose(model, source, labels, options);
    const clock = new PhaseClock();
    const tensors = tf.memory().numTensors;
    const timed = await decompose(model, source, labels, { ...options, clock });
    expect(timed.modules.map((m) => m.masks)).toEqual(plain.modules.map((m) => m.masks));
    // One entry per counting batch, covering every input run, each phase a duration.
    expect(clock.batches.length).toBeGreaterThan(1);
    expect(clock.batches.reduce((a, b) => a + b.inputs, 0)).toBe(timed.inputsRun);
    expect(clock.batches.every((b) => b.inputs <= 16 && [b.data, b.forward, b.counting].every((ms) => ms >= 0))).toBe(true);
    // The forward pass is what a batch mostly does: never billed nothing.
    expect(clock.batches.every((b) => b.forward > 0)).toBe(true);
    expect(clock.masking).toBeGreaterThan(0);
    // Waiting for a forward pass holds on to nothing.
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
