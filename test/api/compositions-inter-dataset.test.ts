/**
 * Inter-dataset reuse (ALGORITHM.md section 6) on two small real models with 28x28x1 inputs, trained
 * by scripts/train-fixtures.ts: a MNIST digit module and a Fashion-MNIST module composed into a
 * 2-class classifier, scored on a mixed test set built from both test sets, without and with
 * continuous learning. Bounded for CI:
 * - MNIST: decomposition samples from the first 3000 training images, test images from t10k;
 * - Fashion-MNIST: the shared data holds only its test set, so decomposition samples come from test
 *   images 0-4999 and the mixed test set from 5000-9999 (disjoint).
 */
import request from 'supertest';
import { FASHION_CLASSES, FASHION_DIR, MNIST_DIR, TRAINED_PREPROCESSING, readIdxGz, trainedZip } from '../support/fixtures';
import { grayImageFolderZip, idxFiles } from '../support/datasets';
import { appWithWorkers } from '../support/workers';
import { untilFinished } from '../support/finished';
import { loadModuleSpec } from '../../src/jobs/module-loader';

const PER = 28 * 28;
const DIGITS = Array.from({ length: 10 }, (_, i) => String(i));
// 1 and Trouser look alike (a vertical bar); 0 and Bag scored lowest of five pairs tried.
const PAIRS: [string, string][] = [
  ['1', 'Trouser'],
  ['0', 'Bag'],
];

interface Split {
  images: Uint8Array;
  labels: Uint8Array;
}

function split(dir: string, prefix: 'train' | 't10k', from: number, to: number): Split {
  const images = readIdxGz(dir, `${prefix}-images-idx3-ubyte.gz`);
  const labels = readIdxGz(dir, `${prefix}-labels-idx1-ubyte.gz`);
  return { images: images.subarray(from * PER, to * PER), labels: labels.subarray(from, to) };
}

/** The first `n` images of class `c`, one array each. */
function ofClass(s: Split, c: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < s.labels.length && out.length < n; i++) if (s.labels[i] === c) out.push(s.images.subarray(i * PER, (i + 1) * PER));
  return out;
}

describe('inter-dataset reuse: MNIST + Fashion-MNIST modules', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });
  const mnistTrain = split(MNIST_DIR, 'train', 0, 3000);
  const mnistTest = split(MNIST_DIR, 't10k', 0, 10000);
  const fashionTrain = split(FASHION_DIR, 't10k', 0, 5000);
  const fashionTest = split(FASHION_DIR, 't10k', 5000, 10000);
  let mnistModules: { id: string; className: string }[];
  let fashionModules: { id: string; className: string }[];

  const done = (kind: 'decompositions' | 'compositions', id: string) => untilFinished(t.app.server, `/${kind}/${id}`);

  async function dataset(files: [Buffer, string][], format?: string): Promise<{ id: string; classNames?: string[]; count: number }> {
    let req = request(t.app.server).post('/datasets');
    if (format) req = req.field('format', format);
    for (const [b, n] of files) req = req.attach('file', b, n);
    return (await req.expect(201)).body;
  }

  /** Decomposition datasets (IDX: classes named "0".."9" in both), by model. */
  const trainSets: Record<'mnist' | 'fashion', string> = { mnist: '', fashion: '' };

  async function decompose(zip: Buffer, classNames: string[], train: Split, which: 'mnist' | 'fashion'): Promise<{ id: string; className: string }[]> {
    const model = await request(t.app.server)
      .post('/models')
      .field('preprocessing', JSON.stringify(TRAINED_PREPROCESSING))
      .field('classNames', JSON.stringify(classNames))
      .attach('file', zip, 'model.zip')
      .expect(201);
    expect(model.body.inputShape).toEqual([28, 28, 1]);
    const idx = idxFiles(train.images, train.labels, 28, 28);
    const ds = await dataset([
      [idx.images, 'images.idx'],
      [idx.labels, 'labels.idx'],
    ]);
    trainSets[which] = ds.id;
    const r = await request(t.app.server)
      .post('/decompositions')
      .send({ modelId: model.body.id, datasetId: ds.id, options: { samplesPerClass: 200, seed: 1 } })
      .expect(202);
    const dec = await done('decompositions', r.body.id);
    expect(dec.status).toBe('completed');
    return dec.modules;
  }

  beforeAll(async () => {
    mnistModules = await decompose(trainedZip('mnist-cnn'), DIGITS, mnistTrain, 'mnist');
    fashionModules = await decompose(trainedZip('fashion-cnn'), FASHION_CLASSES, fashionTrain, 'fashion');
  });
  it.each(PAIRS)('digit %s + %s: well above chance on a mixed test set, without and with continuous learning', async (digit, item) => {
    const d = Number(digit);
    const f = FASHION_CLASSES.indexOf(item);
    const digitModule = mnistModules.find((m) => m.className === digit)!;
    const itemModule = fashionModules.find((m) => m.className === item)!;
    // Folder names are the composition labels, so the service matches them by class name.
    const mixed = await dataset(
      [[grayImageFolderZip({ [digit]: ofClass(mnistTest, d, 300), [item]: ofClass(fashionTest, f, 300) }, 28, 28), 'mixed.zip']],
      'image-folder',
    );
    expect(mixed.count).toBe(600);
    // Continuous learning: samples of the other module's class, from the data each module was decomposed on.
    const cl = await dataset(
      [[grayImageFolderZip({ [digit]: ofClass(mnistTrain, d, 200), [item]: ofClass(fashionTrain, f, 200) }, 28, 28), 'cl.zip']],
      'image-folder',
    );
    const modules = [{ moduleId: digitModule.id }, { moduleId: itemModule.id }];
    const originals = await t.deps.db.module.findMany({ where: { id: { in: [digitModule.id, itemModule.id] } }, orderBy: { id: 'asc' } });

    const plain = await request(t.app.server).post('/compositions').send({ modules, evalDatasetId: mixed.id }).expect(202);
    const withCl = await request(t.app.server)
      .post('/compositions')
      .send({ modules, evalDatasetId: mixed.id, continuousLearning: { datasetIds: [cl.id] } })
      .expect(202);
    const a = await done('compositions', plain.body.id);
    const b = await done('compositions', withCl.body.id);
    expect(a.status).toBe('completed');
    expect(b.status).toBe('completed');
    expect(a.labels).toEqual([digit, item]);
    expect(b.labels).toEqual([digit, item]);
    console.log(
      `inter-dataset ${digit} (MNIST) + ${item} (Fashion), 300+300 test images: top-1 ${a.metrics.top1} (per class ${a.metrics.perClass}), ` +
        `with continuous learning ${b.metrics.top1} (per class ${b.metrics.perClass}; ${b.metrics.continuousLearning.modulesChanged} module(s) changed); ` +
        `modules kept ${originals.map((o) => `${o.className} ${o.keptFraction.toFixed(3)}`).join(', ')}`,
    );
    for (const m of [a.metrics, b.metrics]) {
      expect(m.count).toBe(600);
      expect(m.confusion.flat().reduce((s: number, v: number) => s + v, 0)).toBe(600);
      // Modules of two different models: no single-model baseline.
      expect(m.baseline).toBeUndefined();
    }
    expect(a.modules).toEqual([
      { moduleId: digitModule.id, label: digit },
      { moduleId: itemModule.id, label: item },
    ]);

    // Continuous learning: every changed module is a new version of the original, which is left as it was.
    const changed = b.modules.filter((m: { moduleId: string }, i: number) => m.moduleId !== modules[i].moduleId);
    expect(changed).toHaveLength(b.metrics.continuousLearning.modulesChanged);
    expect(await t.deps.db.module.findMany({ where: { id: { in: [digitModule.id, itemModule.id] } }, orderBy: { id: 'asc' } })).toEqual(originals);
    for (const [i, m] of b.modules.entries()) {
      if (m.moduleId === modules[i].moduleId) continue;
      const version = await t.deps.db.module.findUniqueOrThrow({ where: { id: m.moduleId }, include: { decomposition: true } });
      const parent = originals.find((o) => o.id === modules[i].moduleId)!;
      expect(version.parentModuleId).toBe(parent.id);
      expect(version.className).toBe(parent.className);
      expect(version.headBlob).toBe(parent.headBlob);
      const points = version.decomposition.observationPoints as { units: number }[];
      const before = (await loadModuleSpec(t.deps.blobs, parent, points)).masks;
      const after = (await loadModuleSpec(t.deps.blobs, version, points)).masks;
      let turnedOn = 0;
      before.forEach((mask, p) =>
        mask.forEach((v, u) => {
          // Only ever turned on, never off.
          expect(after[p][u]).toBeGreaterThanOrEqual(v);
          if (after[p][u] > v) turnedOn++;
        }),
      );
      console.log(
        `continuous learning: module "${m.label}" kept ${parent.keptFraction.toFixed(3)} -> ${version.keptFraction.toFixed(3)} of its units (${turnedOn} turned on)`,
      );
      expect(turnedOn).toBeGreaterThan(0);
      expect(version.keptFraction).toBeGreaterThan(parent.keptFraction);
    }
    // The new versions change what the composition computes, if not (here) its top-1.
    const inputs = [...ofClass(mnistTest, d, 5), ...ofClass(fashionTest, f, 5)].map((img) =>
      Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [img[y * 28 + x]])),
    );
    const pa = (await request(t.app.server).post(`/compositions/${a.id}/predict`).send({ inputs }).expect(200)).body.predictions;
    const pb = (await request(t.app.server).post(`/compositions/${b.id}/predict`).send({ inputs }).expect(200)).body.predictions;
    const prob = (p: { label: string; probability: number }[], label: string) => p.find((e) => e.label === label)!.probability;
    const diffs = pa.flatMap((p: { label: string; probability: number }[], i: number) => [digit, item].map((l) => Math.abs(prob(p, l) - prob(pb[i], l))));
    console.log(
      `P(label) with vs without continuous learning on 10 test images: max |diff| ${Math.max(...diffs).toExponential(2)}, ${diffs.filter((x: number) => x > 0).length}/20 differ`,
    );
    expect(Math.max(...diffs)).toBeGreaterThan(0);
    // Chance is 0.5.
    expect(a.metrics.top1).toBeGreaterThan(0.75);
    expect(b.metrics.top1).toBeGreaterThan(0.75);
  });

  it('continuous learning from the decomposition datasets themselves, told per dataset which class serves which label', async () => {
    // Both IDX datasets name their classes "0".."9": one shared mapping could not tell MNIST's 1 from
    // Fashion's 1 (Trouser). Per-dataset mappings can, and then give exactly the module versions
    // that a hand-built set of the same images gives (continuous learning is a union over samples).
    const [digit, item] = PAIRS[0];
    const d = Number(digit);
    const f = FASHION_CLASSES.indexOf(item);
    const modules = [{ moduleId: mnistModules.find((m) => m.className === digit)!.id }, { moduleId: fashionModules.find((m) => m.className === item)!.id }];
    const handBuilt = await dataset(
      [[grayImageFolderZip({ [digit]: ofClass(mnistTrain, d, 200), [item]: ofClass(fashionTrain, f, 200) }, 28, 28), 'cl.zip']],
      'image-folder',
    );
    const byFolder = await request(t.app.server)
      .post('/compositions')
      .send({ modules, continuousLearning: { datasetIds: [handBuilt.id] } })
      .expect(202);
    const labelMappings = { [trainSets.mnist]: { [digit]: digit }, [trainSets.fashion]: { [String(f)]: item } };
    const byMapping = await request(t.app.server)
      .post('/compositions')
      .send({ modules, continuousLearning: { datasetIds: [trainSets.mnist, trainSets.fashion], labelMappings } })
      .expect(202);
    const a = await done('compositions', byFolder.body.id);
    const b = await done('compositions', byMapping.body.id);
    expect([a.status, b.status]).toEqual(['completed', 'completed']);
    expect(b.metrics.continuousLearning.modulesChanged).toBe(a.metrics.continuousLearning.modulesChanged);
    expect(b.metrics.continuousLearning.modulesChanged).toBeGreaterThan(0);
    for (const [i, m] of b.modules.entries()) {
      const [va, vb] = await Promise.all(
        [a.modules[i].moduleId, m.moduleId].map((id: string) => t.deps.db.module.findUniqueOrThrow({ where: { id }, include: { decomposition: true } })),
      );
      const points = va.decomposition.observationPoints as { units: number }[];
      expect((await loadModuleSpec(t.deps.blobs, vb, points)).masks).toEqual((await loadModuleSpec(t.deps.blobs, va, points)).masks);
    }

    // A mapping for a dataset that is not among datasetIds is refused, with nothing stored.
    const before = await t.deps.db.composition.count();
    const bad = await request(t.app.server)
      .post('/compositions')
      .send({ modules, continuousLearning: { datasetIds: [trainSets.mnist], labelMappings } })
      .expect(422);
    expect(bad.body.detail).toContain(trainSets.fashion);
    expect(await t.deps.db.composition.count()).toBe(before);
  });
});
