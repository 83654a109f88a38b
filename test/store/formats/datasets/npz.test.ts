import { parseDataset } from '../../../../src/store/formats/datasets';
import { expectAppError, makeNpy, makeZip, sharedFile } from './helpers';

const kmnistImages = sharedFile('fixtures/fse-kmnist1/kmnist-test-imgs.npz');
const kmnistLabels = sharedFile('fixtures/fse-kmnist1/kmnist-test-labels.npz');

const u8 = (values: number[]) => Buffer.from(values);
const npz = (name: string, arrays: Record<string, Buffer>) => ({
  name,
  bytes: makeZip(Object.entries(arrays).map(([key, data]) => ({ name: `${key}.npy`, data, deflate: true }))),
});

describe('npz', () => {
  it('reads KMNIST: arr_0 images in one npz, arr_0 labels in another', async () => {
    const d = await parseDataset([kmnistImages, kmnistLabels]);
    expect(d.format).toBe('npz');
    expect(d.shape).toEqual([10000, 28, 28, 1]);
    expect(d.dtype).toBe('uint8');
    expect(d.numClasses).toBe(10);
    expect(d.classCounts).toEqual(new Array(10).fill(1000));
    expect(Array.from(d.labels.subarray(0, 10))).toEqual([2, 9, 3, 8, 3, 3, 8, 3, 2, 5]);
    // Row 10 of the first image, checked with NumPy.
    expect(Array.from(d.images.subarray(10 * 28, 10 * 28 + 10))).toEqual([0, 0, 170, 141, 0, 0, 0, 9, 182, 9]);
    // The order of the two files does not matter.
    const swapped = await parseDataset([kmnistLabels, kmnistImages], { format: 'npz' });
    expect(swapped.labels).toEqual(d.labels);
  });

  it('reads x/y float32 images with int64 labels, and [N,H,W,C] shapes', async () => {
    const x = new Float32Array(2 * 2 * 2 * 3).map((_, i) => i / 10);
    const y = new BigInt64Array([1n, 0n]);
    const d = await parseDataset([
      npz('data.npz', {
        x: makeNpy('<f4', [2, 2, 2, 3], Buffer.from(x.buffer)),
        y: makeNpy('<i8', [2], Buffer.from(y.buffer)),
      }),
    ]);
    expect(d.dtype).toBe('float32');
    expect(d.shape).toEqual([2, 2, 2, 3]);
    expect(d.images).toEqual(x);
    expect(Array.from(d.labels)).toEqual([1, 0]);
  });

  it('reads Keras-style x_test/y_test with [N,1] big-endian labels', async () => {
    const labels = Buffer.alloc(6);
    [2, 0, 1].forEach((v, i) => labels.writeUInt16BE(v, i * 2));
    const d = await parseDataset([npz('cifar-like.npz', { x_test: makeNpy('|u1', [3, 1, 1, 3], Buffer.alloc(9, 7)), y_test: makeNpy('>u2', [3, 1], labels) })]);
    expect(Array.from(d.labels)).toEqual([2, 0, 1]);
  });

  it('reads arr_0 images with a bare .npy labels file, and transposes Fortran order', async () => {
    // C-order values 0..11 of shape [2,2,3], written in column-major order.
    const shape = [2, 2, 3];
    const fortran = Buffer.alloc(12);
    for (let n = 0; n < 2; n++) for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) fortran[n + 2 * h + 4 * w] = n * 6 + h * 3 + w;
    const d = await parseDataset([
      npz('imgs.npz', { arr_0: makeNpy('|u1', shape, fortran, true) }),
      { name: 'labels.npy', bytes: makeNpy('|u1', [2], u8([0, 1])) },
    ]);
    expect(d.shape).toEqual([2, 2, 3, 1]);
    expect(Array.from(d.images)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('rejects a negative label, naming file, index and value', async () => {
    const y = new Int32Array([0, 1, -3, 1]);
    await expectAppError(
      parseDataset([npz('d.npz', { x: makeNpy('|u1', [4, 1, 1], Buffer.alloc(4)), y: makeNpy('<i4', [4], Buffer.from(y.buffer)) })]),
      400,
      /label -3 at index 2 in d\.npz:y\.npy is out of range/,
    );
  });

  it('rejects an image/label count mismatch (100 vs 99)', async () => {
    const files = [npz('d.npz', { x: makeNpy('|u1', [100, 2, 2], Buffer.alloc(400)), y: makeNpy('|u1', [99], Buffer.alloc(99)) })];
    await expectAppError(parseDataset(files), 400, /count mismatch: 100 images in d\.npz:x\.npy, 99 labels in d\.npz:y\.npy/);
  });

  it('rejects a header declaring 10^12 elements without allocating', async () => {
    const huge = makeNpy('|u1', [1_000_000, 1000, 1000], Buffer.alloc(16));
    const started = Date.now();
    await expectAppError(
      parseDataset([
        { name: 'huge.npy', bytes: huge },
        { name: 'y.npy', bytes: makeNpy('|u1', [1], Buffer.alloc(1)) },
      ]),
      413,
      /^the decoded dataset exceeds the limit of 4294967296 bytes$/,
    );
    await expectAppError(
      parseDataset([
        { name: 'x.npy', bytes: makeNpy('|u1', [1, 1, 1], Buffer.alloc(1)) },
        { name: 'y.npy', bytes: makeNpy('<i8', [1e12], Buffer.alloc(8)) },
      ]),
      400,
      /y\.npy: declares 1000000000000 images, more than the limit/,
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('rejects non-finite float images', async () => {
    const x = new Float32Array([0, 0.5, Number.NaN, 1]);
    const files = [npz('d.npz', { x: makeNpy('<f4', [1, 2, 2], Buffer.from(x.buffer)), y: makeNpy('|u1', [1], u8([0])) })];
    await expectAppError(parseDataset(files), 400, /d\.npz:x\.npy: image value NaN at flat index 2 is not finite/);
  });

  it('rejects object arrays, unsupported dtypes, float labels and a truncated payload', async () => {
    const y = makeNpy('|u1', [1], u8([0]));
    const withX = (x: Buffer, labels = y) => parseDataset([npz('d.npz', { x, y: labels })]);
    await expectAppError(withX(makeNpy('|O', [1, 1, 1], Buffer.alloc(8))), 400, /d\.npz:x\.npy: object arrays are not supported/);
    await expectAppError(withX(makeNpy('<f8', [1, 1, 1], Buffer.alloc(8))), 400, /image dtype <f8 is not supported; convert to uint8 or float32/);
    await expectAppError(withX(makeNpy('|u1', [1, 1, 1], Buffer.alloc(1)), makeNpy('<f4', [1], Buffer.alloc(4))), 400, /label dtype <f4 is not supported/);
    await expectAppError(withX(makeNpy('|u1', [1, 4, 4], Buffer.alloc(10))), 400, /truncated: shape \(1, 4, 4\) needs 16 data bytes, found 10/);
  });

  it('rejects ambiguous or missing arrays', async () => {
    const a = makeNpy('|u1', [1, 1, 1], Buffer.alloc(1));
    await expectAppError(parseDataset([npz('one.npz', { arr_0: a })]), 400, /found one\.npz:arr_0\.npy/);
    await expectAppError(parseDataset([npz('two.npz', { arr_0: a, arr_1: a })]), 400, /cannot tell images from labels/);
  });
});
