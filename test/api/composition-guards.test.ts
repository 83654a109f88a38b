/**
 * What a composition request is refused for up front, and when a composition cannot be used:
 * - a continuous-learning dataset of another image shape, or one that serves no label: 422, and
 *   nothing is made (before, the first failed the job as a 500 and the second was skipped without
 *   a word);
 * - JSON pixels past float32's range: 400 (before, every probability came back 0); a label with no
 *   image in an evaluation shows 0 in classCounts beside its perClass;
 * - a composition whose job was cancelled, or whose continuous learning has not run yet, cannot be
 *   predicted with, evaluated or replaced from: 409 (before, its modules answered as if it were done).
 * KMNIST-1 modules, decomposed once; the last test stops the worker so that jobs stay queued.
 */
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { idxFiles } from '../support/datasets';
import { untilFinished } from '../support/finished';
import { uploadKmnist } from '../support/kmnist';
import { snapshot } from '../support/store-audit';
import { startTestWorkers } from '../support/workers';

describe('composition guards', () => {
  let t: TestApp;
  let workers: { close(): Promise<void> } | undefined;
  let modules: { id: string; className: string }[];
  let datasetId: string;
  let decompositionId: string;
  const api = () => request(t.app.server);
  const compositions = () => t.deps.db.composition.count();

  beforeAll(async () => {
    t = await buildTestApp({ IMPORT_WAIT_MS: '60000' });
    workers = await startTestWorkers(t);
    const kmnist = await uploadKmnist(t.app.server, 201);
    datasetId = kmnist.datasetId;
    const dec = await api()
      .post('/decompositions')
      .send({ modelId: kmnist.modelId, datasetId, options: { samplesPerClass: 50 } })
      .expect(202);
    const done = await untilFinished(t.app.server, `/decompositions/${dec.body.id}`, { timeoutMs: 240_000 });
    expect(done.status).toBe('completed');
    modules = done.modules;
    decompositionId = dec.body.id;
  }, 300_000);
  afterAll(async () => {
    try {
      await workers?.close();
    } finally {
      await t?.close();
    }
  });

  it('continuous learning: a dataset of another image shape, or serving no label, is a 422 and makes nothing', async () => {
    const small = idxFiles(new Uint8Array(4 * 8 * 8), [0, 1, 0, 1], 8, 8);
    const other = (await api().post('/datasets').attach('file', small.images, 'images.idx').attach('file', small.labels, 'labels.idx').expect(201)).body.id;
    const two = [{ moduleId: modules[0].id }, { moduleId: modules[1].id }];
    const before = { rows: await compositions(), store: await snapshot(t) };

    let res = await api()
      .post('/compositions')
      .send({ modules: two, continuousLearning: { datasetIds: [other] } })
      .expect(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toBe(`continuousLearning dataset ${other} images are [8,8,1] but the model expects [28,28,1]`);

    // KMNIST's classes are "0".."9": none of them serves "a" or "b".
    const relabelled = [
      { moduleId: modules[0].id, label: 'a' },
      { moduleId: modules[1].id, label: 'b' },
    ];
    res = await api()
      .post('/compositions')
      .send({ modules: relabelled, continuousLearning: { datasetIds: [datasetId] } })
      .expect(422);
    expect(res.body.detail).toMatch(new RegExp(`^no class of continuousLearning dataset ${datasetId} serves a label of the composition \\(a, b\\)`));
    expect({ rows: await compositions(), store: await snapshot(t) }).toEqual(before);

    // Told which class serves which label, the same request is taken and relearns.
    const ok = await api()
      .post('/compositions')
      .send({ modules: relabelled, continuousLearning: { datasetIds: [datasetId], labelMappings: { [datasetId]: { '0': 'a', '1': 'b' } } } })
      .expect(202);
    const done = await untilFinished(t.app.server, `/compositions/${ok.body.id}`);
    expect(done.status).toBe('completed');
  }, 120_000);

  it('predict: a JSON pixel past the float32 range is a 400; one within it is answered', async () => {
    const comp = await api()
      .post('/compositions')
      .send({ modules: [{ moduleId: modules[0].id }, { moduleId: modules[1].id }] })
      .expect(202);
    expect((await untilFinished(t.app.server, `/compositions/${comp.body.id}`)).status).toBe('completed');
    const image = (v: number) => [Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [x === 3 && y === 4 ? v : 0]))];
    const res = await api()
      .post(`/compositions/${comp.body.id}/predict`)
      .send({ inputs: image(1e39) })
      .expect(400);
    expect(res.body.detail).toBe('inputs[0][4][3][0] is 1e+39, outside the float32 range');
    const ok = await api()
      .post(`/compositions/${comp.body.id}/predict`)
      .send({ inputs: image(255) })
      .expect(200);
    expect(ok.body.predictions[0]).toHaveLength(2);

    // Scored on images of label "0" only: label "1"'s perClass 0 is over no image, and says so.
    const zeros = idxFiles(new Uint8Array(4 * 28 * 28), [0, 0, 0, 0], 28, 28);
    const only0 = (await api().post('/datasets').attach('file', zeros.images, 'i.idx').attach('file', zeros.labels, 'l.idx').expect(201)).body.id;
    const ev = await api().post('/evaluations').send({ compositionId: comp.body.id, datasetId: only0 }).expect(202);
    const scored = await untilFinished(t.app.server, `/evaluations/${ev.body.id}`);
    expect(scored.status).toBe('completed');
    expect(scored.result).toMatchObject({ count: 4, labels: ['0', '1'], classCounts: [4, 0] });
    expect(scored.result.perClass[1]).toBe(0);
  }, 120_000);

  it('409: a cancelled composition, and one whose continuous learning has not run, cannot be used', async () => {
    // No worker from here on: every job stays queued until cancelled.
    await workers?.close();
    workers = undefined;
    const two = [{ moduleId: modules[0].id }, { moduleId: modules[1].id }];
    const cancelled = (await api().post('/compositions').send({ modules: two }).expect(202)).body;
    expect((await api().delete(`/jobs/${cancelled.jobId}`).expect(200)).body.state).toBe('cancelled');
    const pixels = { inputs: [Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [0]))] };

    const refusals = [
      await api().post(`/compositions/${cancelled.id}/predict`).send(pixels),
      await api().post('/evaluations').send({ compositionId: cancelled.id, datasetId }),
      await api()
        .post('/compositions')
        .send({ baseCompositionId: cancelled.id, replace: [{ label: modules[0].className, moduleId: modules[2].id }] }),
    ];
    expect(refusals.map((r) => r.status)).toEqual([409, 409, 409]);
    for (const [r, use] of refusals.map((r, i) => [r, ['predicted with', 'evaluated', 'a base to replace modules of'][i]] as const)) {
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.body.detail).toBe(`composition ${cancelled.id} cancelled (job ${cancelled.jobId}), so it cannot be ${use}; make it again`);
    }

    const relearning = (
      await api()
        .post('/compositions')
        .send({ modules: two, continuousLearning: { datasetIds: [datasetId] } })
        .expect(202)
    ).body;
    const res = await api().post(`/compositions/${relearning.id}/predict`).send(pixels).expect(409);
    expect(res.body.detail).toMatch(
      /is still being made with continuous learning \(job .+\), which may change its modules; it can be predicted with once that job completes/,
    );
    await api().delete(`/jobs/${relearning.jobId}`).expect(200);

    // The four compositions made here use the decomposition's modules: its 409 names three, and says how many more.
    const del = await api().delete(`/decompositions/${decompositionId}`).expect(409);
    expect(del.body.detail).toMatch(
      new RegExp(`^decomposition ${decompositionId} has modules that 4 composition\\(s\\) use \\([^,]+, [^,]+, [^,]+ and 1 more\\)`),
    );
  }, 120_000);
});
