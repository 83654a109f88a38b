/**
 * Compact modules through the API on the real ResNet-20 (bounded for CI: 2 classes, 100 samples
 * per class, 48 calibration inputs per module, metrics on 300 test images): POST /decompositions
 * with options.compact makes modules with their own small network; their cost is reported beside
 * the model's; compositions mix them with mask modules and predict with what the engine computes
 * on the stored networks; an exported compact module is a small standalone model that plain
 * TF.js loads and that reproduces the service's margins. Full-size figures: `npm run bench -- --only compact`.
 */
import * as tf from '@tensorflow/tfjs';
import request from 'supertest';
import { probabilityFromMargin } from '../../src/engine';
import { toTensor } from '../../src/engine/activity';
import { loadModule } from '../../src/jobs/module-loader';
import { PinScope } from '../../src/jobs/pinned-cache';
import { moduleSource } from '../../src/store/modules';
import { CIFAR_PREPROCESSING, cifarRecords } from '../support/fixtures';
import { untilFinished } from '../support/finished';
import { appWithWorkers } from '../support/workers';
import { downloadExport } from '../support/exported-module';
import { uploadCifarResnet } from '../support/cifar-resnet';

interface ModuleBody {
  id: string;
  className: string;
  flopsFraction: number;
  paramsFraction: number;
  compact?: {
    module: { params: number; flops: number; sizeBytes: number };
    model: { params: number; flops: number; sizeBytes: number };
    layers: { layer: string; channels: number; kept: number }[];
  };
}

interface DecompositionBody {
  status: string;
  modules: ModuleBody[];
  options: { compact?: object };
  metrics: {
    count: number;
    model: { top1: number; classCounts: number[] };
    baseline: { top1: number; classCounts: number[] };
    composed: { top1: number };
    compact: { flopsFraction: number };
  };
}

describe('compact modules', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });
  let compact: ModuleBody[];
  let masks: ModuleBody[];
  let decompose: (options: object) => Promise<DecompositionBody>;
  let testSetId: string;
  let compactModelId: string;
  let trainId: string;
  const done = (kind: 'decompositions' | 'compositions', id: string) => untilFinished(t.app.server, `/${kind}/${id}`, { timeoutMs: 600_000 });

  beforeAll(async () => {
    const { train, test, model } = await uploadCifarResnet(t.app.server, 300);
    testSetId = test.id;
    compactModelId = model.id;
    trainId = train.id;
    decompose = async (options: object) => {
      const r = await request(t.app.server)
        .post('/decompositions')
        .send({ modelId: model.id, datasetId: train.id, evalDatasetId: test.id, classes: [3, 5], options })
        .expect(202);
      const dec = await done('decompositions', r.body.id);
      if (dec.status !== 'completed') console.log(JSON.stringify(dec.error));
      expect(dec.status).toBe('completed');
      return dec;
    };
    const dec = await decompose({ samplesPerClass: 100, seed: 1, compact: { flops: 0.5, calibration: 48 } });
    expect(dec.options.compact).toMatchObject({ flops: 0.5, criterion: 'taylor', allocation: 'uniform', refit: true, calibration: 48 });
    // The decomposition's metrics are the compact modules' own.
    expect(dec.metrics.compact.flopsFraction).toBeLessThanOrEqual(0.5);
    compact = await Promise.all(dec.modules.map(async (m: { id: string }) => (await request(t.app.server).get(`/modules/${m.id}`).expect(200)).body));
    dec.modules.forEach((m: ModuleBody, i: number) => expect(m.flopsFraction).toBe(compact[i].flopsFraction));
    const plain = await decompose({ samplesPerClass: 100, seed: 1 });
    masks = plain.modules;
    // Cat and dog only: scored on their images, beside the model restricted to those two classes.
    for (const m of [dec.metrics, plain.metrics]) {
      expect(m.count).toBe(m.model.classCounts[3] + m.model.classCounts[5]);
      expect(m.baseline.classCounts).toEqual(m.model.classCounts);
      expect(m.baseline.top1).toBeGreaterThanOrEqual(m.model.top1);
    }
    // Measured with the modules made: 2 modules on the cat and dog images among the 300.
    console.log(
      `composed top-1: compact ${dec.metrics.composed.top1}, mask ${plain.metrics.composed.top1}, at ${dec.metrics.compact.flopsFraction} of the FLOPs`,
    );
    expect(dec.metrics.composed.top1).toBeGreaterThan(plain.metrics.composed.top1 - 0.05);
  });

  it("reports each module's FLOPs, parameters and file size beside the model's; mask modules are 1", async () => {
    for (const m of compact) {
      const c = m.compact!;
      expect(m.flopsFraction).toBeGreaterThan(0);
      expect(m.flopsFraction).toBeLessThanOrEqual(0.5);
      expect(m.flopsFraction).toBeCloseTo(c.module.flops / c.model.flops, 10);
      expect(m.paramsFraction).toBeCloseTo(c.module.params / c.model.params, 10);
      expect(c.model.params).toBe(273_658);
      expect(c.module.params).toBeLessThan(c.model.params);
      expect(c.module.sizeBytes).toBeLessThan(c.model.sizeBytes);
      expect(c.layers.some((l) => l.kept < l.channels)).toBe(true);
    }
    for (const m of masks) {
      expect(m.flopsFraction).toBe(1);
      expect(m.paramsFraction).toBe(1);
      const full = (await request(t.app.server).get(`/modules/${m.id}`).expect(200)).body;
      expect(full.compact).toBeUndefined();
    }
  });

  it('a composition mixing a compact and a mask module predicts what the engine computes on the stored networks', async () => {
    const cat = compact.find((m) => m.className === 'cat')!;
    const dog = masks.find((m) => m.className === 'dog')!;
    const comp = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: cat.id }, { moduleId: dog.id }] })
      .expect(202);
    expect((await done('compositions', comp.body.id)).status).toBe('completed');
    const test = cifarRecords('test_batch.bin', 8);
    const inputs = Array.from({ length: 8 }, (_, i) =>
      Array.from({ length: 32 }, (_, y) =>
        Array.from({ length: 32 }, (_, x) => Array.from(test.images.subarray(i * 3072 + (y * 32 + x) * 3, i * 3072 + (y * 32 + x) * 3 + 3))),
      ),
    );
    const res = await request(t.app.server).post(`/compositions/${comp.body.id}/predict`).send({ inputs }).expect(200);

    // The engine on the stored modules: the cat module's own network, the dog module on the model.
    const scope = new PinScope();
    const margins: Float32Array[] = [];
    for (const id of [cat.id, dog.id]) {
      const loaded = await loadModule(t.deps.blobs, await moduleSource(t.deps.db, id), scope);
      const { ModuleRunner } = await import('../../src/engine');
      const runner = new ModuleRunner(loaded.plan, [loaded.spec]);
      const x = toTensor(loaded.plan, test.images, 8, [32, 32, 3], CIFAR_PREPROCESSING);
      margins.push(Float32Array.from(runner.margins(x).dataSync()));
      x.dispose();
      runner.dispose();
    }
    scope.release();
    expect(res.body.predictions).toHaveLength(8);
    res.body.predictions.forEach((p: { label: string; probability: number }[], i: number) => {
      const want = margins[0][i] >= margins[1][i] ? 'cat' : 'dog';
      expect(p[0].label).toBe(want);
      const m = want === 'cat' ? margins[0][i] : margins[1][i];
      expect(Math.abs(p[0].probability - probabilityFromMargin(m))).toBeLessThan(1e-6);
    });
  });

  it('exports a compact module as a small standalone model: plain tfjs loads it, its parameters are the reported ones, margins within 1e-4', async () => {
    const cat = compact.find((m) => m.className === 'cat')!;
    const { json, weights: w, model: exported } = await downloadExport(t.app.server, cat.id);
    expect((json.userDefinedMetadata.compact as { params: number }).params).toBe(cat.compact!.module.params);
    // The network's layers carry the reported parameters; the export swaps the 2-unit margin head
    // (2F + 2) for one sigmoid unit (F + 1) and adds its constant preprocessing and mask layers.
    const network = new Set(cat.compact!.layers.map((l) => l.layer));
    const networkParams = exported.layers.filter((l) => network.has(l.name)).reduce((s, l) => s + l.countParams(), 0);
    const features = cat.compact!.layers.find((l) => l.layer === 'stage3_block3_conv2')!.kept;
    expect(networkParams + 2 * (features + 1)).toBe(cat.compact!.module.params);
    // Its file is small too (the masks' constant kernels are stored as uint8).
    expect(w.length).toBeLessThan(cat.compact!.model.sizeBytes);

    const test = cifarRecords('test_batch.bin', 100);
    const p = (exported.predict(tf.tensor4d(Float32Array.from(test.images), [100, 32, 32, 3])) as tf.Tensor).dataSync();
    const scope = new PinScope();
    const loaded = await loadModule(t.deps.blobs, await moduleSource(t.deps.db, cat.id), scope);
    const { ModuleRunner } = await import('../../src/engine');
    const runner = new ModuleRunner(loaded.plan, [loaded.spec]);
    const x = toTensor(loaded.plan, test.images, 100, [32, 32, 3], CIFAR_PREPROCESSING);
    const margins = runner.margins(x).dataSync();
    let worst = 0;
    let compared = 0;
    for (let i = 0; i < 100; i++) {
      expect(Math.abs(p[i] - probabilityFromMargin(margins[i]))).toBeLessThan(1e-5);
      // Margins back from probabilities where the logit is well conditioned.
      if (p[i] > 1e-3 && p[i] < 1 - 1e-3) {
        worst = Math.max(worst, Math.abs(Math.log(p[i] / (1 - p[i])) - margins[i]));
        compared++;
      }
    }
    console.log(
      `compact export: weights ${w.length} bytes (model ${cat.compact!.model.sizeBytes}); max |margin diff| ${worst.toExponential(2)} over ${compared} images`,
    );
    expect(compared).toBeGreaterThan(10);
    expect(worst).toBeLessThan(1e-4);
    runner.dispose();
    x.dispose();
    scope.release();
    exported.dispose();
  });

  it('refuses a compact budget outside (0, 1] with 400 and changes nothing', async () => {
    const before = (await request(t.app.server).get('/decompositions').expect(200)).body.items.length;
    for (const flops of [0, 1.5, -1]) {
      const r = await request(t.app.server)
        .post('/decompositions')
        .send({ modelId: 'x', datasetId: 'y', options: { compact: { flops } } })
        .expect(400);
      expect(r.headers['content-type']).toMatch(/problem\+json/);
    }
    await request(t.app.server)
      .post('/decompositions')
      .send({ modelId: 'x', datasetId: 'y', options: { compact: { flops: 0.5, criterion: 'nope' } } })
      .expect(400);
    const pre = await request(t.app.server)
      .post('/decompositions')
      .send({ modelId: compactModelId, datasetId: trainId, options: { maskPoint: 'pre-activation', compact: { flops: 0.5 } } })
      .expect(422);
    expect(pre.body.detail).toMatch(/post-activation/);
    expect((await request(t.app.server).get('/decompositions').expect(200)).body.items.length).toBe(before);
  });

  it("continuous learning widens a compact module's masks on its own network: a new version with the same network", async () => {
    // Few samples leave units masked, so there is something to turn back on.
    const dec = await decompose({ samplesPerClass: 3, seed: 2, compact: { flops: 0.5, calibration: 3 } });
    const originals = await Promise.all(dec.modules.map(async (m) => (await request(t.app.server).get(`/modules/${m.id}`).expect(200)).body));
    const c = await request(t.app.server)
      .post('/compositions')
      .send({ modules: dec.modules.map((m) => ({ moduleId: m.id })), evalDatasetId: testSetId, continuousLearning: { datasetIds: [testSetId] } })
      .expect(202);
    const comp = await done('compositions', c.body.id);
    expect(comp.status).toBe('completed');
    expect(comp.metrics.continuousLearning.modulesChanged).toBeGreaterThan(0);
    for (const [i, member] of comp.modules.entries()) {
      const now = (await request(t.app.server).get(`/modules/${member.moduleId}`).expect(200)).body;
      const before = originals[i];
      expect(now.compact).toEqual(before.compact);
      expect(now.flopsFraction).toBe(before.flopsFraction);
      now.perLayer.forEach((l: { kept: number }, p: number) => expect(l.kept).toBeGreaterThanOrEqual(before.perLayer[p].kept));
      if (member.moduleId !== before.id) {
        expect(now.parentModuleId).toBe(before.id);
        expect(now.keptFraction).toBeGreaterThan(before.keptFraction);
      }
      expect((await request(t.app.server).get(`/modules/${before.id}`).expect(200)).body).toEqual(before);
    }
  });
});
