/**
 * The bounded caches of models and composition runtimes: an entry evicted while a job still holds
 * it is disposed only when the last holder lets go; unheld entries go at once; failed loads are
 * not cached. With a real TF.js model: a held model keeps predicting after eviction.
 */
import * as tf from '@tensorflow/tfjs';
import { PinnedCache, PinScope } from '../../src/jobs/pinned-cache';

interface Value {
  readonly key: string;
  disposed: boolean;
}

function cache(max: number) {
  const loads: string[] = [];
  const c = new PinnedCache<Value>(max, (v) => (v.disposed = true));
  const get = (key: string, scope: PinScope) =>
    c.get(
      key,
      async () => {
        loads.push(key);
        return { key, disposed: false };
      },
      scope,
    );
  return { c, get, loads };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('PinnedCache', () => {
  it('loads once, evicts the least recently used, and disposes an evicted value only after its last lease', async () => {
    const { c, get, loads } = cache(2);
    const job = new PinScope();
    const a = await get('a', job);
    const other = new PinScope();
    expect(await get('a', other)).toBe(a);
    expect(loads).toEqual(['a']);
    other.release();

    const free = new PinScope();
    const b = await get('b', free);
    free.release();
    await get('c', free); // evicts a (held by job), keeps b and c
    await get('d', free); // evicts b (held by nobody)
    free.release();
    await settle();
    expect(c.size).toBe(2);
    expect(b.disposed).toBe(true);
    expect(a.disposed).toBe(false);

    job.release();
    job.release(); // releasing twice changes nothing
    await settle();
    expect(a.disposed).toBe(true);
    // Evicted: the next request loads it again.
    await get('a', free);
    expect(loads.filter((k) => k === 'a')).toHaveLength(2);
  });

  it('does not cache a failed load', async () => {
    const c = new PinnedCache<Value>(2, (v) => (v.disposed = true));
    const scope = new PinScope();
    await expect(c.get('x', () => Promise.reject(new Error('unreadable')), scope)).rejects.toThrow('unreadable');
    await settle();
    expect(c.size).toBe(0);
    expect(await c.get('x', async () => ({ key: 'x', disposed: false }), scope)).toMatchObject({ key: 'x' });
  });

  it('a real model held by a job keeps predicting after another job evicts it', async () => {
    const c = new PinnedCache<tf.LayersModel>(1, (m) => m.dispose());
    const make = async () => {
      const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], kernelInitializer: 'ones' })] });
      return m;
    };
    const job = new PinScope();
    const model = await c.get('m1', make, job);
    const other = new PinScope();
    await c.get('m2', make, other); // evicts m1 while job holds it
    other.release();
    const y = tf.tidy(() => (model.predict(tf.ones([1, 3])) as tf.Tensor).dataSync());
    expect(Array.from(y)).toEqual([3, 3]);
    job.release();
    await settle();
    expect(() => model.predict(tf.ones([1, 3]))).toThrow(/disposed/i);
  });
});
