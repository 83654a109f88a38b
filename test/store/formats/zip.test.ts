/**
 * The one zip reader (src/store/formats/zip.ts) and its one policy: the same hostile or broken zip
 * gets the same status and the same message through the model parser and through the dataset parser
 * (format detected, and forced to npz or image-folder). 422 for anything wrong with the archive,
 * 413 for going over the caller's byte budget.
 */
import { AppError, PayloadTooLargeError, UnprocessableError } from '../../../src/errors';
import { parseDataset, type ParseDatasetOptions } from '../../../src/store/formats/datasets';
import { DEFAULT_MODEL_PARSE_LIMITS, parseModelFile, type ModelParseLimits } from '../../../src/store/formats/models';
import { isZip, MAX_COMPRESSION_RATIO, openZip, RATIO_EXEMPT_BYTES } from '../../../src/store/formats/zip';
import { buildZip, type ZipEntrySpec } from '../../support/zip-builder';
import { makeNpy } from './datasets/helpers';

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

/**
 * Parses `bytes` as a model and as a dataset (detected, npz, image-folder) and expects one status
 * and a detail matching `detail` from all four, each naming its source.
 */
async function expectSamePolicy(
  bytes: Buffer,
  cls: typeof UnprocessableError | typeof PayloadTooLargeError,
  detail: RegExp,
  limits: { model?: ModelParseLimits; dataset?: ParseDatasetOptions } = {},
): Promise<void> {
  const file = { name: 'upload.zip', bytes };
  const errors = await Promise.all([
    rejection(parseModelFile(bytes, limits.model)),
    rejection(parseDataset([file], limits.dataset)),
    rejection(parseDataset([file], { ...limits.dataset, format: 'npz' })),
    rejection(parseDataset([file], { ...limits.dataset, format: 'image-folder' })),
  ]);
  const status = cls === PayloadTooLargeError ? 413 : 422;
  for (const err of errors) {
    expect(err).toBeInstanceOf(cls);
    expect({ status: err.status, detail: err.detail }).toEqual({ status, detail: expect.stringMatching(detail) });
  }
  if (cls === UnprocessableError) {
    expect(errors[0]!.detail).toMatch(/^model file: /);
    for (const err of errors.slice(1)) expect(err.detail).toMatch(/^upload\.zip: /);
  }
}

/**
 * Entries each parser reads first, built from `spec`: model.json (TF.js), x.npy (npz, which
 * detection prefers; y.npy is its sound partner) and a/1.png (image-folder).
 */
const readFirst = (spec: Omit<ZipEntrySpec, 'name'>): ZipEntrySpec[] => [
  ...['model.json', 'x.npy', 'a/1.png'].map((name) => ({ name, ...spec })),
  { name: 'y.npy', data: makeNpy('|u1', [1], Buffer.alloc(1)) },
];

describe('one zip policy for models and datasets', () => {
  it('a corrupt zip (local header signature, then garbage) → 422 "corrupt zip"', () =>
    expectSamePolicy(Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(4096, 1)]), UnprocessableError, /corrupt zip \(/));

  it('a zip cut short (its central directory missing) → 422 "corrupt zip"', () => {
    const whole = buildZip(readFirst({ data: Buffer.from('{}') }));
    return expectSamePolicy(whole.subarray(0, whole.length - 40), UnprocessableError, /corrupt zip \(/);
  });

  it('an entry whose data inflates past its declared size → 422, stopped while inflating', () =>
    expectSamePolicy(
      buildZip(readFirst({ data: Buffer.alloc(5000, 0x20), declaredSize: 100 })),
      UnprocessableError,
      /zip entry "(model\.json|x\.npy|a\/1\.png)" is damaged or lies about its size/,
    ));

  it('a 50 MB entry of zeros (a bomb with honest sizes) → 422 from its declared ratio, before inflating', async () => {
    const bomb = buildZip([{ name: 'a/zeros.npy', data: Buffer.alloc(50_000_000) }]);
    expect(bomb.length).toBeLessThan(100_000);
    const started = Date.now();
    await expectSamePolicy(
      bomb,
      UnprocessableError,
      /zip entry "a\/zeros\.npy" declares a compression ratio of \d+:1 .*above 200 is refused as a possible zip bomb/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('files declaring more than the byte budget → 413 with the limit, before inflating', () => {
    // The dataset budget is maxBytes + 64 MiB of container slack; the model budget is set to match.
    const budget = 1024 * 1024 + 64 * 1024 * 1024;
    const big = buildZip([{ name: 'a/big.npy', data: Buffer.alloc(70 * 1024 * 1024, 1), store: true }]);
    return expectSamePolicy(big, PayloadTooLargeError, new RegExp(`^the unzipped contents exceeds the limit of ${budget} bytes$`), {
      model: { ...DEFAULT_MODEL_PARSE_LIMITS, maxUncompressedBytes: budget },
      dataset: { maxBytes: 1024 * 1024 },
    });
  });

  it('more entries than the caller allows → 422 naming the count', () => {
    // Models allow 1000 entries; a dataset of at most 1 image allows 2 * 1 + 1024.
    const many = buildZip(Array.from({ length: 1100 }, (_, i) => ({ name: `a/${i}.png`, data: Buffer.from('x'), store: true })));
    return expectSamePolicy(many, UnprocessableError, /zip has more than (1000|1026) entries \(1100\)/, { dataset: { maxImages: 1 } });
  });

  it.each([
    ['../evil.npy', /unsafe zip entry name \(invalid relative path: \.\.\/evil\.npy\)/],
    ['/etc/evil.npy', /unsafe zip entry name \(absolute path: \/etc\/evil\.npy\)/],
    ['C:/evil.npy', /unsafe zip entry name \(absolute path: C:\/evil\.npy\)/],
    ['a\\..\\evil.npy', /unsafe zip entry name \(invalid characters in fileName/],
    ['a/\0.npy', /unsafe zip entry name "a\/\\u0000\.npy" contains a NUL byte/],
  ])('an entry named %j → 422 "unsafe zip entry name"', (name, detail) =>
    expectSamePolicy(buildZip([...readFirst({ data: Buffer.from('{}') }), { name, data: Buffer.from('x') }]), UnprocessableError, detail),
  );

  it('a name listed twice → 422', () =>
    expectSamePolicy(
      buildZip([...readFirst({ data: Buffer.from('{}') }), { name: 'x.npy', data: Buffer.from('x') }]),
      UnprocessableError,
      /zip lists "x\.npy" twice/,
    ));

  it('an entry in a compression method other than stored or deflate → 422 naming it', () =>
    expectSamePolicy(
      buildZip(readFirst({ data: Buffer.from('{}'), method: 14 })),
      UnprocessableError,
      /"(model\.json|x\.npy|a\/1\.png)" is encrypted or uses compression method 14; only stored and deflate/,
    ));
});

describe('openZip', () => {
  const limits = { maxEntries: 10, maxUncompressedBytes: 10 * RATIO_EXEMPT_BYTES };

  it('lists files (not folders) in central-directory order and reads them', async () => {
    const zip = await openZip(
      buildZip([
        { name: 'b/', data: Buffer.alloc(0), store: true },
        { name: 'b/2.txt', data: Buffer.from('two') },
        { name: 'a.txt', data: Buffer.from('one'), store: true },
      ]),
      limits,
      'test.zip',
    );
    expect([...zip.entries.keys()]).toEqual(['b/2.txt', 'a.txt']);
    expect((await zip.read('b/2.txt')).toString()).toBe('two');
    expect((await zip.read('a.txt')).toString()).toBe('one');
    await expect(zip.read('c.txt')).rejects.toThrow('test.zip: zip has no entry "c.txt"');
    zip.close();
  });

  it(`exempts entries up to ${RATIO_EXEMPT_BYTES} bytes from the ${MAX_COMPRESSION_RATIO}:1 ratio, not one byte more`, async () => {
    const exempt = await openZip(buildZip([{ name: 'zeros', data: Buffer.alloc(RATIO_EXEMPT_BYTES) }]), limits, 'test.zip');
    expect(exempt.entries.get('zeros')!.uncompressedSize / exempt.entries.get('zeros')!.compressedSize).toBeGreaterThan(MAX_COMPRESSION_RATIO);
    expect((await exempt.read('zeros')).length).toBe(RATIO_EXEMPT_BYTES);
    const err = await rejection(openZip(buildZip([{ name: 'zeros', data: Buffer.alloc(RATIO_EXEMPT_BYTES + 1) }]), limits, 'test.zip'));
    expect(err.status).toBe(422);
    expect(err.detail).toMatch(/possible zip bomb/);
  });

  it('reads 60,000 sorted int64 labels (past 200:1), which a 64 KiB floor refused', async () => {
    const labels = new BigInt64Array(60_000).map((_, i) => BigInt(Math.floor(i / 6000)));
    const y = makeNpy('<i8', [60_000], Buffer.from(labels.buffer));
    const npz = buildZip([
      { name: 'x.npy', data: makeNpy('|u1', [60_000, 1, 1], Buffer.alloc(60_000)) },
      { name: 'y.npy', data: y },
    ]);
    const zip = await openZip(npz, DEFAULT_MODEL_PARSE_LIMITS, 'labels.npz');
    const entry = zip.entries.get('y.npy')!;
    expect(entry.uncompressedSize).toBeGreaterThan(64 * 1024);
    expect(entry.uncompressedSize / entry.compressedSize).toBeGreaterThan(MAX_COMPRESSION_RATIO);
    const d = await parseDataset([{ name: 'labels.npz', bytes: npz }]);
    expect(d.classCounts).toEqual(new Array(10).fill(6000));
  });

  it('recognises a zip by its first bytes, the empty archive included', () => {
    expect(isZip(buildZip([{ name: 'a', data: Buffer.from('a') }]))).toBe(true);
    expect(isZip(buildZip([]))).toBe(true);
    expect(isZip(Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'))).toBe(false);
    expect(isZip(Buffer.alloc(0))).toBe(false);
  });
});
