/**
 * 1000 classes through the service (issue 13: ImageNet-sized heads). A seeded small CNN with a
 * 1000-class head is uploaded as a TF.js zip with a 2,000-image .npz dataset (two images per class),
 * decomposed at tau 0 into 1000 modules, and all 1000 are composed: the composition scores what the
 * decomposition's composed metrics say, and its baseline (the model restricted to the same classes:
 * here all of them) what the model scores. (Seeded weights on noise: the numbers are equalities, not
 * accuracies.)
 */
import request from 'supertest';
import { makeNpy, makeZip } from '../store/formats/datasets/helpers';
import { modelArtifacts, tfjsZip } from '../support/tfjs-zip';
import { untilFinished } from '../support/finished';
import { appWithWorkers } from '../support/workers';
import { seededClassifier } from '../support/seeded-net';

const CLASSES = 1000;
const PER_CLASS = 2;
const SHAPE = [16, 16, 3];

/** The seeded model (TF.js zip) and its 2,000-image .npz dataset, uploaded. */
async function upload(server: Parameters<typeof request>[0]): Promise<{ modelId: string; datasetId: string }> {
  const model = seededClassifier(CLASSES, 8, SHAPE);
  const zip = tfjsZip(await modelArtifacts(model));
  model.dispose();
  const n = CLASSES * PER_CLASS;
  const per = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const images = Buffer.from(Uint8Array.from({ length: n * per }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 24) & 0xff));
  const labels = Buffer.from(Int32Array.from({ length: n }, (_, i) => i % CLASSES).buffer);
  const npz = makeZip([
    { name: 'x.npy', data: makeNpy('|u1', [n, ...SHAPE], images) },
    { name: 'y.npy', data: makeNpy('<i4', [n], labels) },
  ]);
  const up = await request(server)
    .post('/models')
    .field('preprocessing', JSON.stringify({ scale: 1 / 255 }))
    .attach('file', zip, 'net.zip')
    .expect(201);
  expect(up.body.numClasses).toBe(CLASSES);
  const ds = await request(server).post('/datasets').attach('file', npz, 'data.npz').expect(201);
  return { modelId: up.body.id, datasetId: ds.body.id };
}

describe(`${CLASSES} classes through the API`, () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });

  it('decomposes into 1000 modules and composes all of them; the composition scores what the model scores', async () => {
    const n = CLASSES * PER_CLASS;
    const { modelId, datasetId } = await upload(t.app.server);
    const dec = await request(t.app.server)
      .post('/decompositions')
      .send({ modelId, datasetId, evalDatasetId: datasetId, options: { samplesPerClass: PER_CLASS, tanglingRatio: 100, tau: 0 } })
      .expect(202);
    const t0 = Date.now();
    const done = await untilFinished(t.app.server, `/decompositions/${dec.body.id}`, { timeoutMs: 600_000 });
    const decomposeMs = Date.now() - t0;
    expect(done.status).toBe('completed');
    expect(done.modules).toHaveLength(CLASSES);
    // Each module samples both images of its class and one of every other class (the API caps
    // tanglingRatio at 100): the invariant covers half the images exactly, the rest nearly.
    expect(done.metrics.count).toBe(n);
    expect(done.metrics.agreement).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(done.metrics.composed.top1 - done.metrics.model.top1)).toBeLessThanOrEqual(0.01);
    // Matrices of 1000 x 1000 are not stored; the mean Jaccard is estimated from seeded pairs, and said so.
    expect(done.metrics.matricesOmitted).toMatch(/up to 100 modules/);
    expect(done.metrics.model.confusion).toBeUndefined();
    expect(done.metrics.model.perClass).toHaveLength(CLASSES);
    expect(done.metrics.jaccard).toMatchObject({ pairsSampled: 4950, meanPairwise: expect.any(Number) });
    expect(done.metrics.jaccard.pairwise).toBeUndefined();

    const comp = await request(t.app.server)
      .post('/compositions')
      .send({ modules: done.modules.map((m: { id: string }) => ({ moduleId: m.id })), evalDatasetId: datasetId })
      .expect(202);
    const composed = await untilFinished(t.app.server, `/compositions/${comp.body.id}`, { timeoutMs: 600_000 });
    expect([composed.status, composed.error]).toEqual(['completed', undefined]);
    const m = composed.metrics;
    console.log(
      `${CLASSES} classes via the API: decomposition ${decomposeMs} ms (agreement ${done.metrics.agreement}); ` +
        `composition of all modules top-1 ${m.top1} on ${m.count} images, baseline ${m.baseline?.top1}`,
    );
    expect(m.count).toBe(n);
    expect(m.top1).toBe(done.metrics.composed.top1);
    expect(m.baseline.top1).toBe(done.metrics.model.top1);
    // 1000 x 1000 matrices are not stored here either; per-label accuracy is.
    expect(m.confusion).toBeUndefined();
    expect(m.baseline.confusion).toBeUndefined();
    expect(m.perClass).toHaveLength(CLASSES);
    expect(m.matricesOmitted).toMatch(/up to 100 labels; this composition has 1000/);
  });
});

describe('a worker memory bound on module masks (MAX_MASK_BYTES)', () => {
  // The model observes 3,104 units; at this size every runner tensor is dense (13.1 bytes per module
  // and unit, 13.4 with a decomposition's snapshots): 100 modules need 3.9-4.0 MiB, 200 7.8, 1000 39.6.
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000', MAX_MASK_BYTES: String(5 * 1024 ** 2) });

  it('fails a decomposition or composition over it at once with a 422 naming the figure; under it they run', async () => {
    const { modelId, datasetId } = await upload(t.app.server);
    const decompose = async (classes?: number[]) => {
      const r = await request(t.app.server)
        .post('/decompositions')
        .send({ modelId, datasetId, ...(classes ? { classes } : {}), options: { samplesPerClass: PER_CLASS, tau: 0 } })
        .expect(202);
      return untilFinished(t.app.server, `/decompositions/${r.body.id}`, { timeoutMs: 300_000 });
    };
    const all = await decompose();
    expect(all.status).toBe('failed');
    expect(all.error.detail).toMatch(
      /1000 modules with 3104000 observed units in all need about 39\.6 MiB of masks .*allows 5\.0 MiB \(MAX_MASK_BYTES\)\. Decompose fewer classes/,
    );

    const first = await decompose(Array.from({ length: 100 }, (_, i) => i));
    const second = await decompose(Array.from({ length: 100 }, (_, i) => 100 + i));
    expect([first.status, second.status]).toEqual(['completed', 'completed']);
    const two = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [...first.modules, ...second.modules].map((m: { id: string }) => ({ moduleId: m.id })) })
      .expect(202);
    const composed = await untilFinished(t.app.server, `/compositions/${two.body.id}`, { timeoutMs: 300_000 });
    expect(composed.status).toBe('failed');
    expect(composed.error.detail).toMatch(/200 modules with 620800 observed units in all .*Compose fewer modules/);
    const one = await request(t.app.server)
      .post('/compositions')
      .send({ modules: first.modules.map((m: { id: string }) => ({ moduleId: m.id })) })
      .expect(202);
    expect((await untilFinished(t.app.server, `/compositions/${one.body.id}`, { timeoutMs: 300_000 })).status).toBe('completed');
  });
});
