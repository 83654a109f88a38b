import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { parseDataset } from '../../../../src/store/formats/datasets';
import { expectAppError, makeZip, sharedFile, type ZipInput } from './helpers';

const cifar = sharedFile('fixtures/cifar10-bin/test_batch.bin').bytes;

/** Record i of the CIFAR test batch as HWC RGB. */
function cifarHwc(i: number): Uint8Array {
  const rec = cifar.subarray(i * 3073 + 1, (i + 1) * 3073);
  const hwc = new Uint8Array(3072);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = rec[c * 1024 + p]!;
  return hwc;
}

function png(rgb: Uint8Array, width: number, height: number, colorType: 0 | 2 | 6 = 2): Buffer {
  const image = new PNG({ width, height });
  for (let p = 0; p < width * height; p++) {
    image.data[p * 4] = rgb[p * 3]!;
    image.data[p * 4 + 1] = rgb[p * 3 + 1]!;
    image.data[p * 4 + 2] = rgb[p * 3 + 2]!;
    image.data[p * 4 + 3] = 255;
  }
  return PNG.sync.write(image, { colorType });
}

function jpg(rgb: Uint8Array, width: number, height: number): Buffer {
  const rgba = Buffer.alloc(width * height * 4, 255);
  for (let p = 0; p < width * height; p++) rgb.subarray(p * 3, p * 3 + 3).forEach((v, c) => (rgba[p * 4 + c] = v));
  return jpeg.encode({ data: rgba, width, height }, 95).data;
}

const zipFile = (entries: ZipInput[], name = 'images.zip') => ({ name, bytes: makeZip(entries) });

describe('image-folder', () => {
  it('reads class folders of PNG and JPEG images (PNG pixels round-trip)', async () => {
    // CIFAR test records 0 (cat), 1 and 2 (ship), 3 (airplane, saved as JPEG under cat/).
    const file = zipFile([
      { name: 'cifar/ship/b.png', data: png(cifarHwc(2), 32, 32), deflate: true },
      { name: 'cifar/cat/a.png', data: png(cifarHwc(0), 32, 32, 6) },
      { name: 'cifar/ship/a.png', data: png(cifarHwc(1), 32, 32) },
      { name: 'cifar/cat/z.jpg', data: jpg(cifarHwc(3), 32, 32) },
      { name: 'cifar/cat/.DS_Store', data: Buffer.from('junk') },
      { name: '__MACOSX/cifar/cat/._a.png', data: Buffer.from('junk') },
      { name: 'cifar/README.txt', data: Buffer.from('not an image') },
    ]);
    const d = await parseDataset([file]);
    expect(d.format).toBe('image-folder');
    expect(d.classNames).toEqual(['cat', 'ship']);
    expect(d.shape).toEqual([4, 32, 32, 3]);
    expect(Array.from(d.labels)).toEqual([0, 0, 1, 1]);
    expect(d.classCounts).toEqual([2, 2]);
    const image = (i: number) => d.images.subarray(i * 3072, (i + 1) * 3072);
    expect(image(0)).toEqual(cifarHwc(0));
    expect(image(2)).toEqual(cifarHwc(1));
    expect(image(3)).toEqual(cifarHwc(2));
    // JPEG is lossy: compare the mean absolute error.
    const want = cifarHwc(3);
    const mae = Array.from(image(1)).reduce((sum, v, i) => sum + Math.abs(v - want[i]!), 0) / 3072;
    expect(mae).toBeLessThan(6);
  });

  it('gives grayscale PNGs one channel', async () => {
    const gray = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => Math.floor(i / 3) * 10);
    const d = await parseDataset([
      zipFile([
        { name: 'digits/7/a.png', data: png(gray, 4, 4, 0) },
        { name: 'digits/1/b.png', data: png(gray, 4, 4, 0) },
      ]),
    ]);
    expect(d.shape).toEqual([2, 4, 4, 1]);
    expect(d.classNames).toEqual(['1', '7']);
    expect(Array.from(d.images.subarray(0, 16))).toEqual(Array.from({ length: 16 }, (_, i) => i * 10));
  });

  it('rejects ragged image sizes, naming the first offending file', async () => {
    const file = zipFile([
      { name: 'a/1.png', data: png(cifarHwc(0), 32, 32) },
      { name: 'a/2.png', data: png(new Uint8Array(16 * 16 * 3), 16, 16) },
      { name: 'b/3.png', data: png(new Uint8Array(8 * 8 * 3), 8, 8) },
    ]);
    await expectAppError(parseDataset([file]), 400, /ragged image sizes: "a\/2\.png" is 16x16x3, but "a\/1\.png" is 32x32x3/);
  });

  it('rejects an entry named ../evil.png with 422', async () => {
    const file = zipFile([
      { name: 'a/1.png', data: png(cifarHwc(0), 32, 32) },
      { name: '../evil.png', data: png(cifarHwc(0), 32, 32) },
    ]);
    await expectAppError(parseDataset([file], { format: 'image-folder' }), 422, /images\.zip: unsafe zip entry name .*\.\.\/evil\.png/);
  });

  it('rejects a zip bomb (50 MB of zeros) from its declared ratio, before inflating', async () => {
    const file = zipFile([{ name: 'a/zeros.png', data: Buffer.alloc(50 * 1024 * 1024), deflate: true }]);
    expect(file.bytes.length).toBeLessThan(200_000);
    await expectAppError(parseDataset([file], { format: 'image-folder' }), 422, /zip entry "a\/zeros\.png" declares a compression ratio of \d+:1/);
  });

  // 422 as on the model route: a damaged zip is unusable, not a malformed request (shared zip policy, src/store/formats/zip.ts).
  it('fails an entry that inflates past its declared size, while inflating, with 422', async () => {
    const liar = zipFile([{ name: 'a/1.png', data: png(cifarHwc(0), 32, 32), deflate: true, declaredSize: 100 }]);
    await expectAppError(parseDataset([liar], { format: 'image-folder' }), 422, /images\.zip: zip entry "a\/1\.png" is damaged or lies about its size/);
  });

  it('rejects declared entry sizes over the byte budget with 413, before inflating', async () => {
    // The budget is maxBytes plus 64 MiB of container slack; a 70 MB stored entry passes the ratio guard.
    const big = zipFile([
      { name: 'a/1.png', data: png(cifarHwc(0), 32, 32) },
      { name: 'a/big.png', data: Buffer.alloc(70 * 1024 * 1024, 1) },
    ]);
    await expectAppError(
      parseDataset([big], { format: 'image-folder', maxBytes: 1024 * 1024 }),
      413,
      /^the unzipped contents exceeds the limit of 68157440 bytes$/,
    );
  });

  it('rejects a PNG declaring 100000x100000 pixels from its header', async () => {
    const header = png(cifarHwc(0), 32, 32);
    header.writeUInt32BE(100_000, 16);
    header.writeUInt32BE(100_000, 20);
    const started = Date.now();
    await expectAppError(parseDataset([zipFile([{ name: 'a/huge.png', data: header }])]), 400, /a\/huge\.png: declares 100000x100000 images/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('rejects images outside class folders', async () => {
    await expectAppError(
      parseDataset([
        zipFile([
          { name: 'a/1.png', data: png(cifarHwc(0), 32, 32) },
          { name: 'loose.png', data: png(cifarHwc(0), 32, 32) },
        ]),
      ]),
      400,
      /"loose\.png" is not in a class folder/,
    );
  });

  it('refuses a folder without images, which Keras would count as a class', async () => {
    const image = png(cifarHwc(0), 32, 32);
    // "bird" sorts first: dropped, it would make "cat" class 0 where Keras has it at 1.
    for (const [bird, what] of [
      [{ name: 'set/bird/notes.txt', data: Buffer.from('todo') }, 'only another file'],
      [{ name: 'set/bird/', data: Buffer.alloc(0) }, 'nothing (a folder entry)'],
    ] as const) {
      await expectAppError(
        parseDataset([zipFile([bird, { name: 'set/cat/1.png', data: image }, { name: 'set/dog/1.png', data: image }])]),
        400,
        /images\.zip: folder "bird" holds no PNG or JPEG image; Keras would count it as a class/,
      ).catch((err: Error) => {
        throw new Error(`${what}: ${err.message}`);
      });
    }
    // Folders of the wrapper, hidden ones and __MACOSX are not classes.
    const d = await parseDataset([
      zipFile([
        { name: 'set/', data: Buffer.alloc(0) },
        { name: 'set/cat/', data: Buffer.alloc(0) },
        { name: 'set/cat/1.png', data: image },
        { name: 'set/dog/1.png', data: image },
        { name: 'set/.git/config', data: Buffer.from('x') },
        { name: '__MACOSX/set/bird/._x', data: Buffer.from('x') },
        { name: 'set/README.md', data: Buffer.from('x') },
      ]),
    ]);
    expect(d.classNames).toEqual(['cat', 'dog']);
  });
});
