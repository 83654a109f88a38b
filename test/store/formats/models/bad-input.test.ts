/**
 * Bad model files: each becomes a typed AppError (415, 422, 413 or 400) whose detail names the problem,
 * never a raw exception. The malicious files are built here from the real fixtures.
 */
import { type AppError, BadRequestError, PayloadTooLargeError, UnprocessableError, UnsupportedFormatError } from '../../../../src/errors';
import { parseModelFile, type ModelParseLimits } from '../../../../src/store/formats/models';
import { readFixture, readZipEntry, resnetTfjsEntries } from './fixtures';
import { buildZip, type ZipEntrySpec } from '../../../support/zip-builder';

type ErrorClass = new (...args: never[]) => AppError;

async function expectRejected(bytes: Buffer, cls: ErrorClass, status: number, detail: RegExp, limits?: ModelParseLimits): Promise<void> {
  const err = await parseModelFile(bytes, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  expect((err as AppError).status).toBe(status);
  expect((err as AppError).detail).toMatch(detail);
}

const kmnist = () => readFixture('fse-kmnist1', 'kmnist.h5');

/** The ResNet TF.js model as editable parts: model.json (parsed) and its one shard. */
function tfjsParts() {
  const [modelJson, shard] = ['model.json', 'group1-shard1of1.bin'].map((n) => resnetTfjsEntries().find((e) => e.name === n)!.data);
  type Manifest = { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
  const json = JSON.parse(modelJson!.toString('utf8')) as { weightsManifest: Manifest; modelTopology: { model_config: { config: Record<string, unknown> } } };
  return { json, shard: Buffer.from(shard!) };
}

function tfjsZip(json: unknown, shard: Buffer, extra: ZipEntrySpec[] = []): Buffer {
  return buildZip([{ name: 'model.json', data: Buffer.from(JSON.stringify(json)) }, { name: 'group1-shard1of1.bin', data: shard }, ...extra]);
}

/** Byte offset of a weight inside the ResNet shard, from the manifest order. */
function shardOffset(json: ReturnType<typeof tfjsParts>['json'], name: string): number {
  let offset = 0;
  for (const w of json.weightsManifest[0]!.weights) {
    if (w.name === name) return offset;
    offset += w.shape.reduce((a, b) => a * b, 1) * 4;
  }
  throw new Error(`no weight ${name}`);
}

describe('parseModelFile rejects bad files with typed errors', () => {
  describe('not a model / damaged containers', () => {
    it('an empty file → 400', () => expectRejected(Buffer.alloc(0), BadRequestError, 400, /empty/));

    it('bytes of no model format (a PNG header) → 415', () =>
      expectRejected(Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), UnsupportedFormatError, 415, /not a Keras HDF5/));

    it('truncated HDF5 (the first 1000 bytes of kmnist.h5) → 422', () => expectRejected(kmnist().subarray(0, 1000), UnprocessableError, 422, /truncated/));

    it('HDF5 cut 100 bytes short, where every weight is still present → 422', () => {
      const b = kmnist();
      return expectRejected(b.subarray(0, b.length - 100), UnprocessableError, 422, /truncated.*491592 bytes/);
    });

    it('the HDF5 signature followed by garbage → 422', () =>
      expectRejected(Buffer.concat([kmnist().subarray(0, 8), Buffer.alloc(4096, 0x37)]), UnprocessableError, 422, /HDF5/));

    it('a corrupt zip (local header signature, then garbage) → 422', () =>
      expectRejected(Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(4096, 1)]), UnprocessableError, 422, /zip/));

    it('a Keras 3 weights-only HDF5 (model.weights.h5 from the .keras) → 422', async () => {
      const weightsOnly = await readZipEntry(readFixture('resnet20-cifar10', 'model.keras'), 'model.weights.h5');
      await expectRejected(weightsOnly, UnprocessableError, 422, /weights-only/);
    });
  });

  describe('zips that are no model', () => {
    it('a zip without model.json (and not a .keras) → 415 naming model.json', () =>
      expectRejected(
        buildZip([
          { name: 'readme.txt', data: Buffer.from('hello') },
          { name: 'weights.bin', data: Buffer.alloc(64) },
        ]),
        UnsupportedFormatError,
        415,
        /no model\.json/,
      ));

    it('half a .keras (config.json without model.weights.h5) → 422 naming the missing entry', () =>
      expectRejected(buildZip([{ name: 'config.json', data: Buffer.from('{}') }]), UnprocessableError, 422, /no model\.weights\.h5/));

    it('a TF.js zip whose shard is missing → 422 naming the shard', () => {
      const { json } = tfjsParts();
      return expectRejected(
        buildZip([{ name: 'model.json', data: Buffer.from(JSON.stringify(json)) }]),
        UnprocessableError,
        422,
        /group1-shard1of1\.bin.*missing/,
      );
    });

    it('a TF.js graph model → 422', () =>
      expectRejected(
        buildZip([{ name: 'model.json', data: Buffer.from('{"format":"graph-model","modelTopology":{}}') }]),
        UnprocessableError,
        422,
        /graph-model/,
      ));

    it('model.json that is not JSON → 422', () =>
      expectRejected(buildZip([{ name: 'model.json', data: Buffer.from('{"modelTopology": ') }]), UnprocessableError, 422, /not valid JSON/));
  });

  describe('bombs and size limits', () => {
    const tight: ModelParseLimits = { maxEntries: 10, maxUncompressedBytes: 1_000_000 };

    it('an entry of 50 MB of zeros (honest sizes) is refused from its declared ratio, before inflating', async () => {
      const bomb = buildZip([...resnetTfjsEntries(), { name: 'zeros.bin', data: Buffer.alloc(50_000_000) }]);
      const t0 = Date.now();
      await expectRejected(bomb, UnprocessableError, 422, /"zeros\.bin".*ratio above 200.*zip bomb/);
      expect(Date.now() - t0).toBeLessThan(2000);
    });

    it('an entry that declares 1000 bytes but inflates to 50 MB is stopped while inflating', () =>
      expectRejected(
        buildZip([{ name: 'model.json', data: Buffer.alloc(50_000_000, 0x20), declaredSize: 1000 }]),
        UnprocessableError,
        422,
        /"model\.json".*lies about its size/,
      ));

    // 413 as on the dataset route: the byte budget is a size limit (shared zip policy, src/store/formats/zip.ts).
    it('a zip whose entries together exceed maxUncompressedBytes → 413', () => {
      const parts = [0, 1, 2].map((i) => ({ name: `part${i}.bin`, data: Buffer.alloc(400_000, i), store: true }));
      return expectRejected(tfjsZip({}, Buffer.alloc(0), parts), PayloadTooLargeError, 413, /exceeds the limit of 1000000 bytes/, tight);
    });

    it('HDF5 weights beyond maxUncompressedBytes (kmnist.h5 holds 155,860 bytes of weights)', () =>
      expectRejected(kmnist(), UnprocessableError, 422, /weights add up to more than 100000 bytes/, { ...tight, maxUncompressedBytes: 100_000 }));

    it('a zip with more entries than maxEntries', () => {
      const many = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') }));
      return expectRejected(buildZip(many), UnprocessableError, 422, /more than 10 entries/, tight);
    });
  });

  describe('path traversal and absolute entry names → 422, next to a valid model', () => {
    it.each([
      ['../evil.txt', /relative path|escapes/],
      ['tfjs/../../evil.txt', /relative path|escapes/],
      ['/etc/passwd', /absolute path/],
      ['C:/evil.txt', /absolute path/],
      ['C:\\evil.txt', /invalid characters|backslash/],
      ['..\\evil.txt', /invalid characters|backslash/],
    ])('entry %j', (name, detail) => expectRejected(buildZip([...resnetTfjsEntries(), { name, data: Buffer.from('x') }]), UnprocessableError, 422, detail));

    it('a shard path in model.json that leaves the archive', () => {
      const { json, shard } = tfjsParts();
      json.weightsManifest[0]!.paths = ['../group1-shard1of1.bin'];
      return expectRejected(tfjsZip(json, shard), UnprocessableError, 422, /shard path.*escapes/);
    });
  });

  describe('weights', () => {
    it('NaN in a TF.js shard → 422 naming the weight', () => {
      const { json, shard } = tfjsParts();
      shard.writeFloatLE(NaN, shardOffset(json, 'bn1/gamma') + 4 * 5);
      return expectRejected(tfjsZip(json, shard), UnprocessableError, 422, /"bn1\/gamma" contains NaN \(at flat index 5\)/);
    });

    it('Infinity in a TF.js shard → 422 naming the weight', () => {
      const { json, shard } = tfjsParts();
      shard.writeFloatLE(-Infinity, shardOffset(json, 'fc/kernel'));
      return expectRejected(tfjsZip(json, shard), UnprocessableError, 422, /"fc\/kernel" contains -Infinity/);
    });

    it('NaN in a Keras 2 HDF5 weight → 422 naming the weight', async () => {
      const ok = await parseModelFile(kmnist());
      const spec = ok.weightSpecs.find((s) => s.name === 'output/bias')!;
      const start = ok.weightSpecs.slice(0, ok.weightSpecs.indexOf(spec)).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0);
      const bias = Buffer.from(ok.weightData, start, 40);
      const file = kmnist();
      const at = file.indexOf(bias);
      expect(at).toBeGreaterThan(0);
      file.writeFloatLE(NaN, at + 8);
      await expectRejected(file, UnprocessableError, 422, /"output\/bias" contains NaN/);
    });

    it('a manifest shape inconsistent with the shard → 422 shard size mismatch', () => {
      const { json, shard } = tfjsParts();
      json.weightsManifest[0]!.weights[0]!.shape = [3, 3, 3, 8];
      return expectRejected(tfjsZip(json, shard), UnprocessableError, 422, /shard size mismatch/);
    });

    it('a truncated shard → 422 shard size mismatch', () => {
      const { json, shard } = tfjsParts();
      return expectRejected(tfjsZip(json, shard.subarray(0, shard.length - 4)), UnprocessableError, 422, /hold 1094628 bytes but .* need 1094632/);
    });

    it('a weight missing from the manifest (and the shard) → 422 naming it', () => {
      const { json, shard } = tfjsParts();
      const weights = json.weightsManifest[0]!.weights;
      expect(weights.at(-1)!.name).toBe('fc/bias');
      weights.pop();
      return expectRejected(tfjsZip(json, shard.subarray(0, shard.length - 40)), UnprocessableError, 422, /missing weight "fc\/bias"/);
    });

    it('a weight that belongs to no layer → 422', () => {
      const { json, shard } = tfjsParts();
      json.weightsManifest[0]!.weights[0]!.name = 'conv99/kernel';
      return expectRejected(tfjsZip(json, shard), UnprocessableError, 422, /"conv99\/kernel" belongs to no layer/);
    });

    it('a .keras whose config implies other weights than model.weights.h5 holds → 422 naming the layer', async () => {
      const keras = readFixture('resnet20-cifar10', 'model.keras');
      const config = JSON.parse((await readZipEntry(keras, 'config.json')).toString('utf8')) as { config: { layers: { config: Record<string, unknown> }[] } };
      config.config.layers[1]!.config.use_bias = true; // conv1
      const zip = buildZip([
        { name: 'config.json', data: Buffer.from(JSON.stringify(config)) },
        { name: 'model.weights.h5', data: await readZipEntry(keras, 'model.weights.h5') },
      ]);
      await expectRejected(zip, UnprocessableError, 422, /layer "conv1" \(Conv2D\) has 1 weight arrays.*implies 2 \(kernel, bias\)/);
    });
  });

  it('a model with two outputs, visible in its config → 422', () => {
    const { json, shard } = tfjsParts();
    json.modelTopology.model_config.config.output_layers = [
      ['fc', 0, 0],
      ['avgpool', 0, 0],
    ];
    return expectRejected(tfjsZip(json, shard), UnprocessableError, 422, /1 inputs and 2 outputs/);
  });
});
