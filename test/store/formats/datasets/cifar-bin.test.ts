import { parseDataset } from '../../../../src/store/formats/datasets';
import { expectAppError, sharedFile } from './helpers';

const testBatch = sharedFile('fixtures/cifar10-bin/test_batch.bin');
const batch1 = sharedFile('fixtures/cifar10-bin/data_batch_1.bin');
const meta = sharedFile('fixtures/cifar10-bin/batches.meta.txt');
const NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

describe('cifar-bin', () => {
  it('reads the official test batch with class names (README figures)', async () => {
    const d = await parseDataset([testBatch, meta]);
    expect(d.format).toBe('cifar-bin');
    expect(d.count).toBe(10000);
    expect(d.shape).toEqual([10000, 32, 32, 3]);
    expect(d.dtype).toBe('uint8');
    expect(d.images).toHaveLength(10000 * 32 * 32 * 3);
    expect(d.classNames).toEqual(NAMES);
    expect(d.numClasses).toBe(10);
    expect(d.classCounts).toEqual(new Array(10).fill(1000));
    // README: the first test record starts 03 9e 9f a5 -> label 3, red 158, 159, 165 along the top row.
    expect(d.labels[0]).toBe(3);
    expect([d.images[0], d.images[3], d.images[6]]).toEqual([158, 159, 165]);
  });

  it('transposes CHW planes to HWC for every channel', async () => {
    const d = await parseDataset([testBatch], { format: 'cifar-bin' });
    const rec = 1 * 3073; // second record
    for (const [y, x] of [
      [0, 0],
      [5, 17],
      [31, 31],
    ] as const) {
      for (let c = 0; c < 3; c++) {
        expect(d.images[3072 + (y * 32 + x) * 3 + c]).toBe(testBatch.bytes[rec + 1 + c * 1024 + y * 32 + x]);
      }
    }
    expect(d.classNames).toBeUndefined();
    expect(d.numClasses).toBe(10);
  });

  it('reads data_batch_1 class counts', async () => {
    const d = await parseDataset([batch1]);
    expect(d.classCounts).toEqual([1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]);
  });

  it('joins several batches in the order given', async () => {
    const d = await parseDataset([batch1, testBatch, meta]);
    expect(d.count).toBe(20000);
    expect(d.shape).toEqual([20000, 32, 32, 3]);
    expect(d.classCounts).toEqual([2005, 1974, 2032, 2016, 1999, 1937, 2030, 2001, 2025, 1981]);
    expect(d.labels[10000]).toBe(3);
    expect(d.images[10000 * 3072]).toBe(158);
  });

  it('reads CIFAR-100 records with fine or coarse labels', async () => {
    const record = (coarse: number, fine: number, red: number) => {
      const r = Buffer.alloc(3074);
      r[0] = coarse;
      r[1] = fine;
      r.fill(red, 2, 2 + 1024);
      return r;
    };
    const file = { name: 'test.bin', bytes: Buffer.concat([record(4, 72, 9), record(19, 99, 7)]) };
    const fineNames = { name: 'fine_label_names.txt', bytes: Buffer.from(Array.from({ length: 100 }, (_, i) => `f${i}`).join('\n')) };
    const fine = await parseDataset([file, fineNames], { format: 'cifar-bin', labelMode: 'fine' });
    expect(Array.from(fine.labels)).toEqual([72, 99]);
    expect(fine.numClasses).toBe(100);
    expect(fine.images[0]).toBe(9);
    expect(fine.images[3072]).toBe(7);
    const coarse = await parseDataset([file], { labelMode: 'coarse' });
    expect(Array.from(coarse.labels)).toEqual([4, 19]);
    expect(coarse.numClasses).toBe(20);
  });

  it('trims meta lines and skips blank ones', async () => {
    const messy = { name: 'batches.meta.txt', bytes: Buffer.from(`\n${NAMES.map((n) => ` ${n} `).join('\r\n')}\n\n\n`) };
    const d = await parseDataset([{ name: 'one.bin', bytes: testBatch.bytes.subarray(0, 3073) }, messy]);
    expect(d.classNames).toEqual(NAMES);
    expect(d.classCounts).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('rejects a file whose length is not a multiple of 3073, naming file and size', async () => {
    const bad = { name: 'cut.bin', bytes: testBatch.bytes.subarray(0, 3073 * 2 + 100) };
    await expectAppError(parseDataset([bad], { format: 'cifar-bin' }), 400, /cut\.bin: 6246 bytes .*3073-byte CIFAR-10 record/);
  });

  it('rejects a CIFAR-10 label above 9, naming file, record and value', async () => {
    const bytes = Buffer.from(testBatch.bytes.subarray(0, 3073 * 3));
    bytes[2 * 3073] = 10;
    await expectAppError(parseDataset([{ name: 'b.bin', bytes }], { format: 'cifar-bin' }), 400, /b\.bin: record 2 has label 10/);
  });

  it('rejects a label beyond the class names given', async () => {
    const three = { name: 'batches.meta.txt', bytes: Buffer.from('a\nb\nc\n') };
    // The first record's label is 3 (cat).
    const one = { name: 'one.bin', bytes: testBatch.bytes.subarray(0, 3073) };
    await expectAppError(parseDataset([one, three]), 400, /one\.bin: record 0 has label 3; batches\.meta\.txt lists 3 classes/);
  });

  it('hints at labelMode for CIFAR-100-sized files', async () => {
    const file = { name: 'train.bin', bytes: Buffer.alloc(3074 * 5) };
    await expectAppError(parseDataset([file], { format: 'cifar-bin' }), 400, /pass labelMode/);
  });
});
