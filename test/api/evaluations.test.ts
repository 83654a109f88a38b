/**
 * Datasets in, models evaluated exactly: the FSE KMNIST model scores its published 76.02 % top-1,
 * and ResNet-20 in its three formats gives identical results equal to golden.json on a bounded
 * subset of the CIFAR-10 test batch. Bad datasets are refused with nothing stored.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { CIFAR_DIR, CIFAR_PREPROCESSING, KMNIST_DIR, RESNET_DIR, golden, resnetTfjsZip } from '../support/fixtures';
import { snapshot } from '../support/store-audit';
import { appWithWorkers } from '../support/workers';
import { untilFinished } from '../support/finished';

const SUBSET = 500;

describe('evaluations on real models and datasets', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });

  async function evaluation(modelId: string, datasetId: string, limit?: number) {
    const res = await request(t.app.server)
      .post('/evaluations')
      .send({ modelId, datasetId, ...(limit ? { limit } : {}) })
      .expect(202);
    expect(res.headers.location).toBe(`/evaluations/${res.body.id}`);
    const seen = new Set<number>();
    const done = await untilFinished(t.app.server, `/evaluations/${res.body.id}`, {
      timeoutMs: 120_000,
      everyMs: 100,
      onPoll: async () => {
        const job = await request(t.app.server).get(`/jobs/${res.body.jobId}`);
        seen.add(job.body.progress);
      },
    });
    expect(done.status).toBe('completed');
    return done.result;
  }

  it('FSE KMNIST-1: top-1 0.7602 (7602/10000), top-5 0.9672, on the KMNIST test npz', async () => {
    const model = await request(t.app.server)
      .post('/models')
      .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
      .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
      .expect(201);
    const ds = await request(t.app.server)
      .post('/datasets')
      .field('name', 'kmnist-test')
      .attach('file', path.join(KMNIST_DIR, 'kmnist-test-imgs.npz'))
      .attach('file', path.join(KMNIST_DIR, 'kmnist-test-labels.npz'))
      .expect(201);
    expect(ds.body).toMatchObject({ format: 'npz', count: 10_000, shape: [10_000, 28, 28, 1], numClasses: 10, dtype: 'uint8' });
    const r = await evaluation(model.body.id, ds.body.id);
    expect(r.count).toBe(10_000);
    expect(r.top1).toBe(0.7602);
    expect(r.top5).toBe(0.9672);
    expect(r.perClass).toHaveLength(10);
    expect(r.classCounts).toEqual(ds.body.classCounts);
    expect(r.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(10_000);
  });

  it(`ResNet-20: .keras, .h5 and TF.js give identical results equal to golden.json on the first ${SUBSET} test images`, async () => {
    const g = golden();
    const ds = await request(t.app.server)
      .post('/datasets')
      .field('format', 'cifar-bin')
      .attach('file', path.join(CIFAR_DIR, 'test_batch.bin'))
      .attach('file', path.join(CIFAR_DIR, 'batches.meta.txt'))
      .expect(201);
    expect(ds.body).toMatchObject({ count: 10_000, shape: [10_000, 32, 32, 3], classCounts: new Array(10).fill(1000) });
    expect(ds.body.classNames[0]).toBe('airplane');

    const files: [string, Buffer][] = [
      ['model.keras', fs.readFileSync(path.join(RESNET_DIR, 'model.keras'))],
      ['model.h5', fs.readFileSync(path.join(RESNET_DIR, 'model.h5'))],
      ['tfjs.zip', resnetTfjsZip()],
    ];
    const results = [];
    for (const [name, bytes] of files) {
      const m = await request(t.app.server).post('/models').field('preprocessing', JSON.stringify(CIFAR_PREPROCESSING)).attach('file', bytes, name).expect(201);
      results.push(await evaluation(m.body.id, ds.body.id, SUBSET));
    }
    // Golden: Keras predictions on the same images.
    const n = Math.min(SUBSET, g.n);
    const correct = g.pred_first_n.slice(0, n).filter((p, i) => p === g.labels_first_n[i]).length;
    for (const r of results) {
      expect(r.count).toBe(SUBSET);
      expect(Math.round(r.top1 * SUBSET)).toBe(correct);
      expect(r.confusion).toEqual(results[0].confusion);
    }
    const expectedConfusion = Array.from({ length: 10 }, () => new Array(10).fill(0));
    for (let i = 0; i < n; i++) expectedConfusion[g.labels_first_n[i]][g.pred_first_n[i]]++;
    expect(results[0].confusion).toEqual(expectedConfusion);
  });

  it('refuses a dataset whose images do not fit the model: 422', async () => {
    const model = await request(t.app.server).post('/models').attach('file', path.join(KMNIST_DIR, 'kmnist.h5')).expect(201);
    const ds = await request(t.app.server).post('/datasets').attach('file', path.join(CIFAR_DIR, 'data_batch_1.bin')).expect(201);
    const res = await request(t.app.server).post('/evaluations').send({ modelId: model.body.id, datasetId: ds.body.id }).expect(422);
    expect(res.body.detail).toMatch(/\[32,32,3\].*\[28,28,1\]/);
  });

  it('validates the request body: unknown ids 404, wrong types and unknown fields 400', async () => {
    await request(t.app.server).post('/evaluations').send({ modelId: 'nope', datasetId: 'nope' }).expect(404);
    const wrongType = await request(t.app.server).post('/evaluations').send({ modelId: 1, datasetId: 'x' }).expect(400);
    expect(wrongType.body.detail).toMatch(/modelId/);
    await request(t.app.server).post('/evaluations').send({ modelId: 'a', datasetId: 'b', extra: 1 }).expect(400);
  });

  it('a body that is not JSON is a 415, text/plain as much as a form', async () => {
    const body = JSON.stringify({ modelId: 'a', datasetId: 'b' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      for (const url of ['/evaluations', '/decompositions', '/compositions']) {
        const res = await request(t.app.server).post(url).set('content-type', type).send(body);
        expect({ type, url, status: res.status, media: res.headers['content-type'] }).toEqual({
          type,
          url,
          status: 415,
          media: expect.stringMatching(/^application\/problem\+json/),
        });
      }
    }
    // An empty text/plain body, as fetch sends with a DELETE: taken as no body (404: no such job).
    const del = await request(t.app.server).delete('/jobs/nope').set('content-type', 'text/plain').send('');
    expect(del.status).toBe(404);
  });
});

describe('POST /datasets refuses bad data and keeps nothing', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  async function expectRefused(files: [Buffer, string][], status: number, detail: RegExp, fields: Record<string, string> = {}) {
    const before = await snapshot(t);
    let req = request(t.app.server).post('/datasets');
    for (const [k, v] of Object.entries(fields)) req = req.field(k, v);
    for (const [bytes, name] of files) req = req.attach('file', bytes, name);
    const res = await req;
    expect({ status: res.status, detail: res.body.detail }).toEqual({ status, detail: expect.stringMatching(detail) });
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await snapshot(t)).toEqual(before);
  }

  const record = (label: number) => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, 9)]);

  it('label out of range (CIFAR-10 label 12): 400', async () => {
    await expectRefused([[Buffer.concat([record(1), record(12)]), 'b.bin']], 400, /label/i, { format: 'cifar-bin' });
  });

  it('wrong record size: 400 naming the file', async () => {
    await expectRefused([[Buffer.concat([record(1), Buffer.alloc(10)]), 'odd.bin']], 400, /odd\.bin/, { format: 'cifar-bin' });
  });

  it('image/label count mismatch (IDX): 400', async () => {
    const images = Buffer.alloc(16 + 3 * 4);
    images.writeUInt32BE(0x803, 0);
    images.writeUInt32BE(3, 4);
    images.writeUInt32BE(2, 8);
    images.writeUInt32BE(2, 12);
    const labels = Buffer.alloc(8 + 2);
    labels.writeUInt32BE(0x801, 0);
    labels.writeUInt32BE(2, 4);
    await expectRefused(
      [
        [images, 'img.idx'],
        [labels, 'lab.idx'],
      ],
      400,
      /3.*2|mismatch|count/i,
    );
  });

  it('ragged image sizes (image folder): 400', async () => {
    const { PNG } = require('pngjs');
    const png = (w: number, h: number) => {
      const p = new PNG({ width: w, height: h });
      p.data.fill(200);
      return PNG.sync.write(p) as Buffer;
    };
    const { rawZip } = await import('../support/tfjs-zip');
    const zip = rawZip({ 'cat/a.png': png(4, 4), 'dog/b.png': png(5, 4) });
    await expectRefused([[zip, 'folders.zip']], 400, /ragged|size/i, { format: 'image-folder' });
  });

  it('an unknown format value: 400', async () => {
    await expectRefused([[record(1), 'b.bin']], 400, /format/, { format: 'tiff' });
  });
});
