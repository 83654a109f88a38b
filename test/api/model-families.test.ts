/**
 * A model of a family the engine learned in issue 13, through the service as a user would bring it:
 * a Keras 3 MobileNetV3-style .h5 (hard_silu, squeeze-and-excitation with keepdims pooling and
 * Multiply, Normalization inside) uploads, decomposes at tau 0 with the composition scoring what the
 * model scores, composes two modules, and exports one that plain TF.js loads. A layer TF.js has no
 * equivalent for is refused with 422 naming it.
 */
import path from 'node:path';
import request from 'supertest';
import { appWithWorkers } from '../support/workers';
import { untilFinished } from '../support/finished';
import { downloadExport } from '../support/exported-module';

const DIR = path.resolve(__dirname, '../fixtures/keras-families');

describe('a MobileNetV3-style Keras 3 .h5 through the API', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });

  it('uploads, decomposes (composed = model), composes two modules and exports one', async () => {
    const model = await request(t.app.server)
      .post('/models')
      .field('preprocessing', JSON.stringify({ scale: 1 }))
      .attach('file', path.join(DIR, 'mobilenet_v3.h5'))
      .expect(201);
    expect(model.body).toMatchObject({ status: 'ready', numClasses: 5, inputShape: [16, 16, 1] });
    const types = model.body.layers.map((l: { type: string }) => l.type);
    expect(types).toEqual(expect.arrayContaining(['Multiply', 'Reshape', 'Rescaling', 'BatchNormalization']));

    const data = await request(t.app.server).post('/datasets').attach('file', path.join(DIR, 'mnist16-test.npz')).expect(201);
    const dec = await request(t.app.server)
      .post('/decompositions')
      .send({ modelId: model.body.id, datasetId: data.body.id, evalDatasetId: data.body.id, options: { samplesPerClass: 200, tau: 0 } })
      .expect(202);
    const done = await untilFinished(t.app.server, `/decompositions/${dec.body.id}`, { timeoutMs: 300_000 });
    expect(done.status).toBe('completed');
    const m = done.metrics;
    console.log(`mobilenet_v3 via the API: model top-1 ${m.model.top1}, composed ${m.composed.top1}, agreement ${m.agreement}, kept ${m.keptFraction}`);
    expect(m.agreement).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(m.composed.top1 - m.model.top1)).toBeLessThanOrEqual(0.01);

    const comp = await request(t.app.server)
      .post('/compositions')
      .send({ modules: [{ moduleId: done.modules[0].id }, { moduleId: done.modules[1].id }], evalDatasetId: data.body.id })
      .expect(202);
    const composed = await untilFinished(t.app.server, `/compositions/${comp.body.id}`, { timeoutMs: 300_000 });
    expect(composed.status).toBe('completed');
    expect(composed.metrics.count).toBeGreaterThan(0);

    const exported = await downloadExport(t.app.server, done.modules[2].id);
    expect(exported.model.outputs[0].shape).toEqual([null, 1]);
    exported.model.dispose();
  });
});
