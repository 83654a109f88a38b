/**
 * Where a decomposition's time goes, batch by batch: reading and preprocessing the inputs
 * ("data"), the forward pass with its per-point reductions ("forward"), reading those back and
 * folding them into counts or bitsets ("counting"), and, once at the end, the module masks
 * ("masking"). A bench option (`--only phases`), not a service one.
 *
 * A backend may queue kernels and run them later (tfjs-node-gpu, webgl): left alone, a forward
 * pass would be billed to the first readback after it. So the timed code calls `settle` with the
 * forward pass's last output before it laps "forward", which waits for it (and, in order, for
 * every kernel before it). That wait is the one thing the clock adds to a run; on the CPU backends
 * the values are already there.
 */
import type * as tf from '@tensorflow/tfjs';

export type BatchPhase = 'data' | 'forward' | 'counting';

export interface BatchTimes {
  readonly inputs: number;
  readonly data: number;
  readonly forward: number;
  readonly counting: number;
}

export class PhaseClock {
  /** Per batch, milliseconds of each phase. */
  readonly batches: BatchTimes[] = [];
  /** Milliseconds making the module masks from the counts. */
  masking = 0;
  private current: { data: number; forward: number; counting: number } = { data: 0, forward: 0, counting: 0 };
  private last = performance.now();

  /** Starts timing a batch (or the masking). */
  start(): void {
    this.current = { data: 0, forward: 0, counting: 0 };
    this.last = performance.now();
  }

  /** Bills the time since the last start or lap to `phase`. */
  lap(phase: BatchPhase): void {
    const now = performance.now();
    this.current[phase] += now - this.last;
    this.last = now;
  }

  /** Waits until `t` has been computed, so queued kernels are billed to the phase that ran them. */
  settle(t: tf.Tensor): void {
    t.dataSync();
  }

  /** Closes the batch started last, of `inputs` inputs. */
  endBatch(inputs: number): void {
    this.batches.push({ inputs, ...this.current });
  }

  /** Bills the time since the last start to masking. */
  endMasking(): void {
    this.masking += performance.now() - this.last;
  }
}
