/**
 * Compositions on the real ResNet-20 (bounded for CI): intra-dataset reuse of 2 modules against the
 * original model restricted to those 2 classes; replacing a ResNet-20 module by the module for the
 * same class of a weaker model (test/fixtures/trained/cifar10-weak, trained on data_batch_1 only)
 * makes a new composition that differs exactly in it, both evaluated; mismatched input shapes and
 * duplicate labels are refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { CIFAR_DIR, CIFAR_PREPROCESSING, KMNIST_DIR, RESNET_DIR, TRAINED_PREPROCESSING, trainedZip } from '../support/fixtures';
import { idxFiles } from '../support/datasets';
import { appWithWorkers } from '../support/workers';
import { downloadExport } from '../support/exported-module';
import { uploadCifarResnet } from '../support/cifar-resnet';
import { untilFinished } from '../support/finished';
import * as tf from '@tensorflow/tfjs';
import { ModelPlan, ModuleRunner, loadModel, probabilityFromMargin } from '../../src/engine';
import { toTensor } from '../../src/engine/activity';
import { loadModuleSpec } from '../../src/jobs/module-loader';
import { parseModelFile } from '../../src/store/formats/models';
import { cifarRecords } from '../support/fixtures';

/** The label whose module the replace test swaps. */
const REPLACED = 'cat';

describe('compositions', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });
  let modulesA: { id: string; className: string }[];
  /** The weak model's modules for the same classes. */
  let modulesB: { id: string; className: string }[];
  let weakModelId: string;
  let testSet: string;

  const done = (kind: 'decompositions' | 'compositions', id: string) => untilFinished(t.app.server, `/${kind}/${id}`, { timeoutMs: 600_000 });

  beforeAll(async () => {
    const { train, test, model } = await uploadCifarResnet(t.app.server, 1000);
    testSet = test.id;
    const weak = await request(t.app.server)
      .post('/models')
      .field('preprocessing', JSON.stringify(TRAINED_PREPROCESSING))
      .field('classNames', JSON.stringify(train.classNames))
      .attach('file', trainedZip('cifar10-weak'), 'cifar10-weak.zip')
      .expect(201);
    weakModelId = weak.body.id;
    const decompose = async (modelId: string, options: object) => {
      const r = await request(t.app.server)
        .post('/decompositions')
        .send({ modelId, datasetId: train.id, classes: [0, 3, 5, 8], options })
        .expect(202);
      const dec = await done('decompositions', r.body.id);
      expect(dec.status).toBe('completed');
      return dec.modules;
    };
    modulesA = await decompose(model.id, { samplesPerClass: 200, seed: 1 });
    modulesB = await decompose(weakModelId, { samplesPerClass: 200, seed: 1 });
  });
  it('intra-dataset reuse: 2 modules score at least the model restricted to their 2 classes minus 0.2 pt', async () => {
    const cat = modulesA.find((m) => m.className === 'cat')!;
    const dog = modulesA.find((m) => m.className === 'dog')!;
    const r = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: cat.id }, { moduleId: dog.id }], evalDatasetId: testSet })
      .expect(202);
    const c = await done('compositions', r.body.id);
    expect(c.status).toBe('completed');
    expect(c.labels).toEqual(['cat', 'dog']);
    const m = c.metrics;
    console.log(
      `cat+dog on their test images (of the first 1000): composition top-1 ${m.top1}, model restricted to the 2 classes ${m.baseline.top1} (n=${m.count})`,
    );
    expect(m.count).toBeGreaterThan(150);
    expect(m.top1).toBeGreaterThanOrEqual(m.baseline.top1 - 0.002);
    expect(m.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(m.count);
    expect(m.energy.seconds).toBeGreaterThan(0);
    expect(m.decompositionEnergy).toMatchObject({ decompositions: 1, seconds: expect.any(Number) });
    expect(m.decompositionEnergy.kWh).toBeGreaterThan(0);
  });

  it("replace: a ResNet-20 module swapped for the weak model's module of the same class; exactly that module differs, the base is unchanged", async () => {
    const pick = (ms: { id: string; className: string }[], name: string) => ms.find((m) => m.className === name)!.id;
    const names = ['airplane', 'cat', 'dog', 'ship'];
    const base = await request(t.app.server)
      .post('/compositions')
      .send({ modules: names.map((n) => ({ moduleId: pick(modulesA, n) })), evalDatasetId: testSet })
      .expect(202);
    const baseDone = await done('compositions', base.body.id);
    expect(baseDone.status).toBe('completed');
    const rep = await request(t.app.server)
      .post('/compositions')
      .send({ baseCompositionId: base.body.id, replace: [{ label: REPLACED, moduleId: pick(modulesB, REPLACED) }], evalDatasetId: testSet })
      .expect(202);
    const repDone = await done('compositions', rep.body.id);
    expect(repDone.status).toBe('completed');
    expect(repDone.baseCompositionId).toBe(base.body.id);
    expect(repDone.labels).toEqual(baseDone.labels);
    const diff = repDone.modules.filter((m: { moduleId: string }, i: number) => m.moduleId !== baseDone.modules[i].moduleId);
    expect(diff).toEqual([{ label: REPLACED, moduleId: pick(modulesB, REPLACED) }]);
    const swapped = await request(t.app.server)
      .get(`/modules/${pick(modulesB, REPLACED)}`)
      .expect(200);
    expect(swapped.body).toMatchObject({ modelId: weakModelId, className: REPLACED });
    const again = await request(t.app.server).get(`/compositions/${base.body.id}`).expect(200);
    expect(again.body.modules).toEqual(baseDone.modules);
    expect(again.body.metrics).toEqual(baseDone.metrics);

    const b = baseDone.metrics;
    const r = repDone.metrics;
    const at = names.indexOf(REPLACED);
    console.log(
      `replace ${REPLACED} (ResNet-20 -> cifar10-weak) on the 4 classes' images of the first 1000 test images (n=${r.count}): ` +
        `top-1 ${b.top1} -> ${r.top1}, per class [${names.join(', ')}] ${b.perClass} -> ${r.perClass}; ResNet-20 restricted ${b.baseline.top1}`,
    );
    // Both evaluated on the same images; the mixed composition has no single-model baseline.
    expect(r.count).toBe(b.count);
    expect(r.count).toBeGreaterThan(300);
    expect(r.perClass).toHaveLength(4);
    expect(r.baseline).toBeUndefined();
    expect(b.top1).toBeGreaterThan(0.85);
    // The weak model (54 % top-1 over 10 classes) is not worthless, but the swap costs accuracy, on
    // the replaced class above all (measured: cat 0.93 -> 0.22, top-1 0.93 -> 0.77; the other classes
    // gained, as the weak module's margins are smaller and win less often).
    expect(r.top1).toBeGreaterThan(0.5);
    expect(r.top1).toBeLessThan(b.top1);
    expect(r.perClass[at]).toBeLessThan(b.perClass[at] - 0.2);
  });

  it('GET /modules/:id/export: a zip that plain tfjs loads and that matches the service P(class) within 1e-5 on 100 images', async () => {
    const cat = modulesA.find((m) => m.className === 'cat')!;
    const { contentType, zipBytes, model: exported } = await downloadExport(t.app.server, cat.id);
    expect(contentType).toBe('application/zip');
    const test = cifarRecords('test_batch.bin', 100);
    const fromExport = (exported.predict(tf.tensor4d(Float32Array.from(test.images), [100, 32, 32, 3])) as tf.Tensor).dataSync();

    // The service's own P(class): the stored module run by the engine.
    const row = await t.deps.db.module.findUniqueOrThrow({ where: { id: cat.id }, include: { decomposition: true } });
    const model = await loadModel(await parseModelFile(fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))));
    const plan = new ModelPlan(model);
    const spec = await loadModuleSpec(t.deps.blobs, row, row.decomposition.observationPoints as { units: number }[]);
    const runner = new ModuleRunner(plan, [spec]);
    const x = toTensor(plan, test.images, 100, [32, 32, 3], CIFAR_PREPROCESSING);
    const margins = runner.margins(x).dataSync();
    let maxDiff = 0;
    for (let i = 0; i < 100; i++) maxDiff = Math.max(maxDiff, Math.abs(fromExport[i] - probabilityFromMargin(margins[i])));
    console.log(`export round trip: max |P_export - P_service| over 100 images = ${maxDiff.toExponential(2)}; zip ${zipBytes} bytes`);
    expect(maxDiff).toBeLessThan(1e-5);
    runner.dispose();
    x.dispose();
    model.dispose();
    exported.dispose();
    // Built once: the second request streams the stored zip.
    const again = await request(t.app.server).get(`/modules/${cat.id}/export`).expect(200);
    expect(again.headers['content-type']).toBe('application/zip');
  });

  it('predict: a real CIFAR-10 test image as PNG gets the same top-1 as the evaluation path', async () => {
    const { PNG } = require('pngjs');
    const names = ['airplane', 'cat', 'dog', 'ship'];
    const comp = await request(t.app.server)
      .post('/compositions')
      .send({ modules: names.map((n) => ({ moduleId: modulesA.find((m) => m.className === n)!.id })) })
      .expect(202);
    const test = cifarRecords('test_batch.bin', 40);
    // Test images of the composition's classes; each as a PNG, as raw pixels, and as a 1-image dataset.
    const picks = Array.from(test.labels.keys())
      .filter((i) => [0, 3, 5, 8].includes(test.labels[i]))
      .slice(0, 4);
    for (const i of picks) {
      const png = new PNG({ width: 32, height: 32 });
      for (let p = 0; p < 1024; p++) {
        png.data.set(test.images.subarray(i * 3072 + p * 3, i * 3072 + p * 3 + 3), p * 4);
        png.data[p * 4 + 3] = 255;
      }
      const byPng = await request(t.app.server).post(`/compositions/${comp.body.id}/predict`).attach('image', PNG.sync.write(png), 'x.png').expect(200);
      const pixels = Array.from({ length: 32 }, (_, y) =>
        Array.from({ length: 32 }, (_, x) => Array.from(test.images.subarray(i * 3072 + (y * 32 + x) * 3, i * 3072 + (y * 32 + x) * 3 + 3))),
      );
      const byJson = await request(t.app.server)
        .post(`/compositions/${comp.body.id}/predict`)
        .send({ inputs: [pixels] })
        .expect(200);
      expect(byPng.body.predictions[0]).toEqual(byJson.body.predictions[0]);
      expect(byPng.body.predictions[0]).toHaveLength(4);

      const record = fs.readFileSync(path.join(CIFAR_DIR, 'test_batch.bin')).subarray(i * 3073, (i + 1) * 3073);
      const one = await request(t.app.server)
        .post('/datasets')
        .field('format', 'cifar-bin')
        .attach('file', record, 'one.bin')
        .attach('file', path.join(CIFAR_DIR, 'batches.meta.txt'))
        .expect(201);
      const ev = await request(t.app.server)
        .post('/compositions')
        .send({
          baseCompositionId: comp.body.id,
          replace: [{ label: 'cat', moduleId: modulesA.find((m) => m.className === 'cat')!.id }],
          evalDatasetId: one.body.id,
        })
        .expect(202);
      const evDone = await done('compositions', ev.body.id);
      const row = evDone.metrics.confusion[names.indexOf(names[[0, 3, 5, 8].indexOf(test.labels[i])])];
      expect(evDone.labels[row.indexOf(1)]).toBe(byPng.body.predictions[0][0].label);
    }
    const bad = await request(t.app.server)
      .post(`/compositions/${comp.body.id}/predict`)
      .send({ inputs: [[[[1, 2, 'x']]]] })
      .expect(400);
    expect(bad.body.detail).toMatch(/inputs/);
    await request(t.app.server).post(`/compositions/${comp.body.id}/predict`).attach('image', Buffer.from('not an image'), 'x.png').expect(400);
  });

  it('refuses two modules with one label (409), a replaced label that does not exist (422) and mixed input shapes (422)', async () => {
    const dup = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: modulesA[0].id }, { moduleId: modulesB[0].id }] })
      .expect(409);
    expect(dup.body.detail).toMatch(/both claim the label/);
    const base = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: modulesA[0].id }, { moduleId: modulesA[1].id }] })
      .expect(202);
    const bad = await request(t.app.server)
      .post('/compositions')
      .send({ baseCompositionId: base.body.id, replace: [{ label: 'truck', moduleId: modulesB[0].id }] })
      .expect(422);
    expect(bad.body.detail).toMatch(/no label "truck"/);

    const kmnist = await request(t.app.server).post('/models').attach('file', path.join(KMNIST_DIR, 'kmnist.h5')).expect(201);
    const tiny = idxFiles(
      new Uint8Array(28 * 28 * 4).map((_, i) => i % 251),
      [0, 1, 0, 1],
      28,
      28,
    );
    const ds = await request(t.app.server).post('/datasets').attach('file', tiny.images, 'i.idx').attach('file', tiny.labels, 'l.idx').expect(201);
    const d = await request(t.app.server)
      .post('/decompositions')
      .send({ modelId: kmnist.body.id, datasetId: ds.body.id, classes: [0, 1], options: { samplesPerClass: 2 } })
      .expect(202);
    const dec = await done('decompositions', d.body.id);
    const mixed = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: dec.modules[0].id, label: 'kmnist-0' }, { moduleId: modulesA[0].id }] })
      .expect(422);
    expect(mixed.body.detail).toMatch(/different input shapes/);
    expect(mixed.body.detail).toContain(dec.modules[0].id);
    await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: 'nope' }, { moduleId: modulesA[0].id }] })
      .expect(404);
  });
});
