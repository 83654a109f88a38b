/** Side-by-side lookups report failures in argument order, whichever settles first. */
import { setTimeout as sleep } from 'node:timers/promises';
import { bothInOrder } from '../../src/api/services/look-up';

const late = async <T>(ms: number, value: T) => {
  await sleep(ms);
  return value;
};
const failLate = async (ms: number, message: string) => {
  await sleep(ms);
  throw new Error(message);
};

describe('bothInOrder', () => {
  it('returns both values in argument order', async () => {
    expect(await bothInOrder(late(30, 'a'), late(1, 2))).toEqual(['a', 2]);
  });

  it("throws the first lookup's error even when the second fails sooner", async () => {
    await expect(bothInOrder(failLate(40, 'model missing'), failLate(1, 'dataset missing'))).rejects.toThrow('model missing');
    await expect(bothInOrder(late(1, 'a'), failLate(20, 'dataset missing'))).rejects.toThrow('dataset missing');
  });
});
