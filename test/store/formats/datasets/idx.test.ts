import zlib from 'node:zlib';
import { parseDataset } from '../../../../src/store/formats/datasets';
import { expectAppError, makeIdx, sharedFile } from './helpers';

const mnistTestImages = sharedFile('data/mnist/t10k-images-idx3-ubyte.gz');
const mnistTestLabels = sharedFile('data/mnist/t10k-labels-idx1-ubyte.gz');

describe('idx', () => {
  it('reads gzip MNIST test (README class counts)', async () => {
    // Labels first: which file is which comes from the magic, not the order or the name.
    const d = await parseDataset([mnistTestLabels, mnistTestImages]);
    expect(d.format).toBe('idx');
    expect(d.shape).toEqual([10000, 28, 28, 1]);
    expect(d.dtype).toBe('uint8');
    expect(d.classCounts).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect(Array.from(d.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
    const raw = zlib.gunzipSync(mnistTestImages.bytes);
    expect(Buffer.from(d.images.buffer, d.images.byteOffset, 784).equals(raw.subarray(16, 16 + 784))).toBe(true);
  });

  it('reads MNIST train (60000)', async () => {
    const d = await parseDataset([sharedFile('data/mnist/train-images-idx3-ubyte.gz'), sharedFile('data/mnist/train-labels-idx1-ubyte.gz')]);
    expect(d.count).toBe(60000);
    expect(d.shape).toEqual([60000, 28, 28, 1]);
    expect(d.classCounts.reduce((a, b) => a + b, 0)).toBe(60000);
    expect(Array.from(d.labels.subarray(0, 5))).toEqual([5, 0, 4, 1, 9]);
  });

  it('reads Fashion-MNIST test (1000 per class)', async () => {
    const d = await parseDataset([sharedFile('data/fashion-mnist/t10k-images-idx3-ubyte.gz'), sharedFile('data/fashion-mnist/t10k-labels-idx1-ubyte.gz')]);
    expect(d.shape).toEqual([10000, 28, 28, 1]);
    expect(d.classCounts).toEqual(new Array(10).fill(1000));
    expect(Array.from(d.labels.subarray(0, 5))).toEqual([9, 2, 1, 1, 6]);
  });

  it('reads uncompressed files and a 4-dim image file', async () => {
    const pixels = Uint8Array.from({ length: 3 * 2 * 2 * 3 }, (_, i) => i);
    const d = await parseDataset([
      { name: 'a', bytes: makeIdx([3, 2, 2, 3], pixels) },
      { name: 'b', bytes: zlib.gzipSync(makeIdx([3], Uint8Array.from([2, 0, 2]))) },
    ]);
    expect(d.shape).toEqual([3, 2, 2, 3]);
    expect(Array.from(d.images)).toEqual(Array.from(pixels));
    expect(d.classCounts).toEqual([1, 0, 2]);
  });

  it('rejects an image/label count mismatch (100 vs 99)', async () => {
    const files = [
      { name: 'imgs.idx', bytes: makeIdx([100, 4, 4], new Uint8Array(1600)) },
      { name: 'lbls.idx', bytes: makeIdx([99], new Uint8Array(99)) },
    ];
    await expectAppError(parseDataset(files), 400, /count mismatch: 100 images in imgs\.idx, 99 labels in lbls\.idx/);
  });

  it('rejects a header claiming 1e9 x 1e9 images without allocating', async () => {
    const header = makeIdx([10, 1e9, 1e9], new Uint8Array(0));
    const labels = makeIdx([10], new Uint8Array(10));
    const before = process.memoryUsage().arrayBuffers;
    const started = Date.now();
    for (const bytes of [header, zlib.gzipSync(header)]) {
      await expectAppError(
        parseDataset(
          [
            { name: 'huge.idx', bytes },
            { name: 'l.idx', bytes: labels },
          ],
          { format: 'idx' },
        ),
        400,
        /huge\.idx: declares 1000000000x1000000000 images/,
      );
    }
    expect(Date.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('rejects a total size over maxBytes with 413', async () => {
    await expectAppError(parseDataset([mnistTestImages, mnistTestLabels], { maxBytes: 1_000_000 }), 413, /1000000 bytes/);
  });

  it('rejects a truncated gzip file', async () => {
    const cut = { name: 'cut-labels.gz', bytes: mnistTestLabels.bytes.subarray(0, mnistTestLabels.bytes.length - 50) };
    await expectAppError(parseDataset([mnistTestImages, cut]), 400, /cut-labels\.gz: truncated or corrupt gzip/);
  });

  it('rejects a raw file shorter than its header declares', async () => {
    const files = [
      { name: 'imgs.idx', bytes: makeIdx([10, 4, 4], new Uint8Array(150)) },
      { name: 'lbls.idx', bytes: makeIdx([10], new Uint8Array(10)) },
    ];
    await expectAppError(parseDataset(files, { format: 'idx' }), 400, /imgs\.idx: truncated: header declares 10x4x4 \(160 bytes\), found 150/);
  });

  it('takes numClasses as max label + 1 when no class names are given', async () => {
    const files = [
      { name: 'imgs.idx', bytes: makeIdx([3, 2, 2], new Uint8Array(12)) },
      { name: 'lbls.idx', bytes: makeIdx([3], Uint8Array.from([0, 4, 4])) },
    ];
    const d = await parseDataset(files);
    expect(d.numClasses).toBe(5);
    expect(d.classCounts).toEqual([1, 0, 0, 0, 2]);
  });

  it('rejects non-uint8 element types and two image files', async () => {
    const floats = makeIdx([1, 1, 1], new Uint8Array(4));
    floats[2] = 0x0d;
    const lbl = { name: 'l', bytes: makeIdx([1], new Uint8Array(1)) };
    await expectAppError(parseDataset([{ name: 'f.idx', bytes: floats }, lbl], { format: 'idx' }), 400, /f\.idx: IDX element type float32/);
    const img = makeIdx([1, 1, 1], new Uint8Array(1));
    await expectAppError(
      parseDataset(
        [
          { name: 'a', bytes: img },
          { name: 'b', bytes: img },
        ],
        { format: 'idx' },
      ),
      400,
      /both a and b are image files/,
    );
  });
});
