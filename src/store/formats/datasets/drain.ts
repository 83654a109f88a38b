/**
 * Runs a format reader's plan into two sinks, and applies the checks every format shares on the
 * way: labels in the class range and counted per class, as many labels as images, as many values
 * as the shape declares. The sinks decide where the tensors go: typed arrays (`parseDataset`) or
 * the blob store (`ingestDataset`).
 *
 * Separate passes run labels first: they are small, so every label check runs before the big
 * image pass, and a bad label costs nothing written but the labels. A shared pass (CIFAR, image
 * folders) feeds both sinks at once.
 */
import { BadRequestError } from '../../../errors';
import { LabelTally, type ClassSummary } from './labels';
import { OtherSideStopped, split } from './split';
import type { TensorPlan } from './types';

export interface TensorSinks<I, L> {
  labels(chunks: AsyncIterable<Int32Array>): Promise<L>;
  images(chunks: AsyncIterable<Uint8Array | Float32Array>): Promise<I>;
}

export interface Drained<I, L> extends ClassSummary {
  readonly images: I;
  readonly labels: L;
}

export async function drainPlan<I, L>(plan: TensorPlan, sinks: TensorSinks<I, L>): Promise<Drained<I, L>> {
  const [n, h, w, c] = plan.shape;
  if (n === 0) throw new BadRequestError(`${plan.imageSource}: holds no images`);

  const tally = new LabelTally(plan);
  const countLabels = () => {
    if (tally.count !== n) {
      throw new BadRequestError(`image/label count mismatch: ${n} images in ${plan.imageSource}, ${tally.count} labels in ${plan.labelSource}`);
    }
  };
  let images: I;
  let labels: L;
  if (plan.records) {
    const pass = split(plan.records());
    [labels, images] = await both(sinks.labels(tallied(pass.labels, tally)), sinks.images(counted(plan, pass.images, n * h * w * c)));
    countLabels();
  } else {
    labels = await sinks.labels(tallied(plan.labels(), tally));
    countLabels();
    images = await sinks.images(counted(plan, plan.images(), n * h * w * c));
  }
  return { images, labels, ...tally.summary() };
}

/**
 * Both results, or the error that stopped them: each sink has settled (a failed blob write has
 * cleaned up after itself) before this returns, and a side stopped only because the other failed
 * does not hide the cause.
 */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'fulfilled' && rb.status === 'fulfilled') return [ra.value, rb.value];
  const errors = [ra, rb].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  throw errors.find((e) => !(e instanceof OtherSideStopped)) ?? errors[0];
}

async function* tallied(chunks: AsyncIterable<Int32Array>, tally: LabelTally): AsyncGenerator<Int32Array> {
  for await (const chunk of chunks) {
    tally.add(chunk);
    yield chunk;
  }
}

/** A reader that hands out more or fewer values than its shape, or the wrong type, is a defect: fail loudly. */
async function* counted(plan: TensorPlan, chunks: AsyncIterable<Uint8Array | Float32Array>, expected: number): AsyncGenerator<Uint8Array | Float32Array> {
  const type = plan.dtype === 'float32' ? Float32Array : Uint8Array;
  let produced = 0;
  for await (const chunk of chunks) {
    if (!(chunk instanceof type)) throw new Error(`dataset reader produced ${chunk.constructor.name} chunks for ${plan.dtype} images`);
    produced += chunk.length;
    if (produced > expected) break;
    yield chunk;
  }
  if (produced !== expected) throw new Error(`dataset reader produced ${produced} values for shape [${plan.shape.join(', ')}]`);
}
