/** The shared pass of split.ts: both sides in order, at the slower one's pace, and failures end both. */
import { OtherSideStopped, split } from '../../../../src/store/formats/datasets/split';

async function* pairs(count: number, failAt = -1, produced: number[] = []) {
  for (let i = 0; i < count; i++) {
    if (i === failAt) throw new Error(`pass failed at ${i}`);
    produced.push(i);
    yield { labels: i, images: i * 10 };
  }
}

const drain = async <T>(side: AsyncIterable<T>, delayMs = 0): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of side) {
    out.push(x);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
  return out;
};

describe('split', () => {
  it('hands both sides every item in order, never running far ahead of the slower side', async () => {
    const produced: number[] = [];
    const { labels, images } = split(pairs(20, -1, produced));
    const seen: number[] = [];
    const slow = (async () => {
      const out: number[] = [];
      for await (const x of images) {
        out.push(x);
        seen.push(produced.length - out.length);
        await new Promise((r) => setTimeout(r, 2));
      }
      return out;
    })();
    const [a, b] = await Promise.all([drain(labels), slow]);
    expect(a).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(b).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    // Items produced but not yet taken by the slow side: a few at most, whatever the count.
    expect(Math.max(...seen)).toBeLessThanOrEqual(3);
  });

  it('ends both sides with the error of a failing pass', async () => {
    const { labels, images } = split(pairs(10, 4));
    const results = await Promise.allSettled([drain(labels), drain(images)]);
    for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { message: 'pass failed at 4' } });
  });

  it('stops the pass and ends the other side when one consumer gives up', async () => {
    const produced: number[] = [];
    const { labels, images } = split(pairs(1000, -1, produced));
    const quitter = (async () => {
      for await (const x of labels) if (x === 3) throw new Error('sink failed');
    })();
    const results = await Promise.allSettled([quitter, drain(images, 1)]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { message: 'sink failed' } });
    expect(results[1]).toMatchObject({ status: 'rejected' });
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(OtherSideStopped);
    expect(produced.length).toBeLessThan(10);
  });
});
