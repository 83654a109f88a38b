/**
 * What a user does after the first run: cancel, delete, evaluate a composition on a new dataset,
 * list what exists. The job row is the one record of a job's state, so a cancelled run never
 * leaves a resource looking busy, and a composition scored on a dataset whose classes it cannot
 * match is refused, not reported as 0.
 */
import path from 'node:path';
import request from 'supertest';
import { appWithWorkers } from '../support/workers';
import { untilFinished } from '../support/finished';
import { uploadKmnist } from '../support/kmnist';
import { grayImageFolderZip } from '../support/datasets';
import { KMNIST_DIR } from '../support/fixtures';
import { waitFor } from '../support/wait';
import { isBlobReferenced } from '../../src/store/blob-refs';

/** KMNIST's ten classes (romanised hiragana), as a user uploading the model would name them. */
const KMNIST_NAMES = ['o', 'ki', 'su', 'tsu', 'na', 'ha', 'ma', 'ya', 're', 'wo'];

describe('a cancelled evaluation', () => {
  // Slow progress reports keep the evaluation running long enough to cancel it.
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000', JOB_TEST_DELAY_MS: '400' });

  it('reads cancelled, and leaves its dataset deletable (409 only while it runs)', async () => {
    const api = () => request(t.app.server);
    const { modelId, datasetId } = await uploadKmnist(t.app.server);
    const ev = await api().post('/evaluations').send({ modelId, datasetId }).expect(202);
    await waitFor(async () => ((await api().get(`/jobs/${ev.body.jobId}`)).body.state === 'active' ? true : undefined), 'the evaluation to start', 60_000);

    const busy = await api().delete(`/datasets/${datasetId}`).expect(409);
    expect(busy.headers['content-type']).toMatch(/application\/problem\+json/);
    await api().delete(`/evaluations/${ev.body.id}`).expect(409);

    await api()
      .delete(`/jobs/${ev.body.jobId}`)
      .expect((r) => expect([200, 202]).toContain(r.status));
    const done = await untilFinished(t.app.server, `/evaluations/${ev.body.id}`, { timeoutMs: 60_000 });
    expect(done.status).toBe('cancelled');
    expect(done.result).toBeUndefined();

    // The cancelled run needs nothing any more: the dataset goes, with the evaluation that used it.
    await api().delete(`/datasets/${datasetId}`).expect(204);
    await api().get(`/datasets/${datasetId}`).expect(404);
    await api().get(`/evaluations/${ev.body.id}`).expect(404);
    await api().delete(`/models/${modelId}`).expect(204);
  });
});

describe('resources after their jobs: evaluate a composition, delete, list', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });
  const api = () => request(t.app.server);
  let modelId: string;
  /** KMNIST test set without class names (labels 0-9). */
  let unnamed: string;
  let decompositionId: string;
  let modules: { id: string; classIndex: number; className: string }[];

  beforeAll(async () => {
    const model = await api()
      .post('/models')
      .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
      .field('classNames', JSON.stringify(KMNIST_NAMES))
      .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
      .expect(201);
    modelId = model.body.id;
    const ds = await api()
      .post('/datasets')
      .attach('file', path.join(KMNIST_DIR, 'kmnist-test-imgs.npz'))
      .attach('file', path.join(KMNIST_DIR, 'kmnist-test-labels.npz'))
      .expect(201);
    expect(ds.body.classNames).toBeUndefined();
    unnamed = ds.body.id;
    const r = await api()
      .post('/decompositions')
      .send({ modelId, datasetId: unnamed, classes: [0, 1], options: { samplesPerClass: 100 } })
      .expect(202);
    decompositionId = r.body.id;
    const dec = await untilFinished(t.app.server, `/decompositions/${decompositionId}`, { timeoutMs: 300_000 });
    expect(dec.status).toBe('completed');
    modules = dec.modules;
    expect(modules.map((m) => m.className)).toEqual(['o', 'ki']);
  });

  it('a composition scored on a dataset without class names matches classes by index, and says how many images it scored', async () => {
    const r = await api()
      .post('/compositions')
      .send({ modules: modules.map((m) => ({ moduleId: m.id })), evalDatasetId: unnamed })
      .expect(202);
    const c = await untilFinished(t.app.server, `/compositions/${r.body.id}`, { timeoutMs: 300_000 });
    expect(c.status).toBe('completed');
    // KMNIST's test set has 1000 images of each class.
    expect(c.metrics.count).toBe(2000);
    expect(c.metrics.top1).toBeGreaterThan(0.8);
    expect(c.metrics.baseline.top1).toBeGreaterThan(0.8);
    expect(c.metrics.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(2000);
  });

  it('a dataset whose class names match none of the labels is refused at request time (422 naming both label sets)', async () => {
    const img = new Uint8Array(28 * 28).fill(128);
    const named = await api()
      .post('/datasets')
      .attach('file', grayImageFolderZip({ cat: [img, img], dog: [img] }, 28, 28), 'pets.zip')
      .expect(201);
    const before = (await api().get('/compositions')).body.items.length;
    const r = await api()
      .post('/compositions')
      .send({ modules: modules.map((m) => ({ moduleId: m.id })), evalDatasetId: named.body.id })
      .expect(422);
    expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(r.body.detail).toMatch(/cat/);
    expect(r.body.detail).toMatch(/ki/);
    expect(r.body.detail).toMatch(/labelMapping/);
    expect((await api().get('/compositions')).body.items.length).toBe(before);
    // The same dataset through a label mapping is fine.
    const mapped = await api()
      .post('/compositions')
      .send({ modules: modules.map((m) => ({ moduleId: m.id })), evalDatasetId: named.body.id, labelMapping: { cat: 'o', dog: 'ki' } })
      .expect(202);
    const c = await untilFinished(t.app.server, `/compositions/${mapped.body.id}`, { timeoutMs: 120_000 });
    expect(c.status).toBe('completed');
    expect(c.metrics.count).toBe(3);
    // An evaluation of a composition that would score nothing is an error, never a 0: refused up front as well.
    await api().post('/evaluations').send({ compositionId: mapped.body.id, datasetId: named.body.id }).expect(422);
    // A typo in a mapping would silently score fewer classes: refused, naming it.
    const typoLabel = await api()
      .post('/compositions')
      .send({ modules: modules.map((m) => ({ moduleId: m.id })), evalDatasetId: named.body.id, labelMapping: { cat: 'o', dog: 'kii' } })
      .expect(422);
    expect(typoLabel.body.detail).toMatch(/"kii"/);
    const typoClass = await api()
      .post('/evaluations')
      .send({ compositionId: mapped.body.id, datasetId: named.body.id, labelMapping: { cat: 'o', bird: 'ki' } })
      .expect(422);
    expect(typoClass.body.detail).toMatch(/"bird"/);
    const ok = await api()
      .post('/evaluations')
      .send({ compositionId: mapped.body.id, datasetId: named.body.id, labelMapping: { cat: 'o', dog: 'ki' } })
      .expect(202);
    expect((await untilFinished(t.app.server, `/evaluations/${ok.body.id}`, { timeoutMs: 120_000 })).result.count).toBe(3);
  });

  it('POST /evaluations {compositionId, datasetId} scores an existing composition on a dataset, exactly as its own metrics did', async () => {
    const r = await api()
      .post('/compositions')
      .send({ modules: modules.map((m) => ({ moduleId: m.id })), evalDatasetId: unnamed })
      .expect(202);
    const c = await untilFinished(t.app.server, `/compositions/${r.body.id}`, { timeoutMs: 300_000 });
    const ev = await api().post('/evaluations').send({ compositionId: r.body.id, datasetId: unnamed }).expect(202);
    expect(ev.headers.location).toBe(`/evaluations/${ev.body.id}`);
    const done = await untilFinished(t.app.server, `/evaluations/${ev.body.id}`, { timeoutMs: 300_000 });
    expect(done.status).toBe('completed');
    expect(done.compositionId).toBe(r.body.id);
    expect(done.modelId).toBeUndefined();
    expect(done.result.count).toBe(c.metrics.count);
    expect(done.result.top1).toBe(c.metrics.top1);
    expect(done.result.top5).toBe(c.metrics.top5);
    expect(done.result.confusion).toEqual(c.metrics.confusion);
    expect(done.result.labels).toEqual(['o', 'ki']);
    // The restricted-model baseline only when asked (it runs the model once more)...
    expect(done.baseline).toBe(false);
    expect(done.result.baseline).toBeUndefined();
    const withBaseline = await api().post('/evaluations').send({ compositionId: r.body.id, datasetId: unnamed, baseline: true }).expect(202);
    const both = await untilFinished(t.app.server, `/evaluations/${withBaseline.body.id}`, { timeoutMs: 300_000 });
    expect(both.baseline).toBe(true);
    expect(both.result.top1).toBe(c.metrics.top1);
    expect(both.result.confusion).toEqual(c.metrics.confusion);
    // ...and then the same as the composition's own metrics.
    expect(both.result.baseline).toEqual(c.metrics.baseline);
    // A model has no baseline of its own.
    const noBaseline = await api().post('/evaluations').send({ modelId, datasetId: unnamed, baseline: true }).expect(400);
    expect(noBaseline.body.detail).toMatch(/baseline applies to compositions only/);

    await api().post('/evaluations').send({ modelId, compositionId: r.body.id, datasetId: unnamed }).expect(400);
    await api().post('/evaluations').send({ datasetId: unnamed }).expect(400);
    await api().post('/evaluations').send({ compositionId: 'nope', datasetId: unnamed }).expect(404);
  });

  it('lists jobs, modules, evaluations, decompositions and compositions, with filters and cursor pages', async () => {
    const all = await api().get('/jobs').query({ limit: 1000 }).expect(200);
    expect(all.body.items.length).toBeGreaterThanOrEqual(5);
    expect(all.body.nextCursor).toBeUndefined();
    // Pages of 2 walk the same list, newest first, without overlap or gap.
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await api()
        .get('/jobs')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((j: { id: string }) => j.id));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(all.body.items.map((j: { id: string }) => j.id));
    await api().get('/jobs').query({ cursor: 'not-a-cursor' }).expect(400);

    const decJobs = await api().get('/jobs').query({ type: 'decompose', state: 'completed' }).expect(200);
    expect(decJobs.body.items.length).toBeGreaterThanOrEqual(1);
    expect(decJobs.body.items.every((j: { type: string; state: string }) => j.type === 'decompose' && j.state === 'completed')).toBe(true);
    await api().get('/jobs').query({ state: 'sleeping' }).expect(400);

    const mods = await api().get('/modules').query({ decompositionId }).expect(200);
    expect(mods.body.items.map((m: { id: string }) => m.id).sort()).toEqual(modules.map((m) => m.id).sort());
    expect(mods.body.items[0]).toMatchObject({ decompositionId, modelId });
    const byClass = await api().get('/modules').query({ modelId, className: 'ki' }).expect(200);
    expect(byClass.body.items.map((m: { className: string }) => m.className)).toEqual(['ki']);

    const decs = await api().get('/decompositions').query({ modelId }).expect(200);
    expect(decs.body.items.map((d: { id: string }) => d.id)).toContain(decompositionId);
    expect(decs.body.items[0].status).toBe('completed');

    const comps = await api().get('/compositions').expect(200);
    expect(comps.body.items.length).toBeGreaterThanOrEqual(2);
    const evs = await api().get('/evaluations').query({ datasetId: unnamed }).expect(200);
    expect(evs.body.items.length).toBeGreaterThanOrEqual(1);
    expect(evs.body.items.every((e: { datasetId: string }) => e.datasetId === unnamed)).toBe(true);
  });

  it('deletes compositions, evaluations and decompositions (409 while a composition still needs the modules), releasing their blobs', async () => {
    const comps = (await api().get('/compositions').query({ limit: 1000 }).expect(200)).body.items as { id: string }[];
    const rows = await t.deps.db.module.findMany({ where: { decompositionId } });
    const moduleBlobs = [...new Set(rows.flatMap((m) => [m.masksBlob, m.headBlob]))];
    expect(moduleBlobs.length).toBeGreaterThanOrEqual(2);
    for (const key of moduleBlobs) expect(await t.deps.blobs.exists(key)).toBe(true);

    const blocked = await api().delete(`/decompositions/${decompositionId}`).expect(409);
    expect(blocked.body.detail).toMatch(/composition/);
    await api().delete(`/models/${modelId}`).expect(409);

    for (const ev of (await api().get('/evaluations').query({ limit: 1000 })).body.items as { id: string; status: string }[]) {
      await api().delete(`/evaluations/${ev.id}`).expect(204);
      await api().get(`/evaluations/${ev.id}`).expect(404);
    }
    for (const c of comps) {
      await api().delete(`/compositions/${c.id}`).expect(204);
      await api().get(`/compositions/${c.id}`).expect(404);
    }
    await api().delete(`/compositions/${comps[0].id}`).expect(404);

    const dec = (await api().get(`/decompositions/${decompositionId}`).expect(200)).body;
    await api().delete(`/decompositions/${decompositionId}`).expect(204);
    await api().get(`/decompositions/${decompositionId}`).expect(404);
    for (const m of modules) await api().get(`/modules/${m.id}`).expect(404);
    // Its job went with it.
    await api().get(`/jobs/${dec.jobId}`).expect(404);

    // Mask and head blobs nothing refers to any more are gone. Blobs are shared by content, and
    // the test database is shared by every test file: another file's identical KMNIST module
    // keeps its blob, so each key is checked against the rows that remain.
    for (const key of moduleBlobs) expect(await t.deps.blobs.exists(key)).toBe(await isBlobReferenced(t.deps.db, key));
    // The model's and the datasets' blobs stay.
    const model = await t.deps.db.model.findUniqueOrThrow({ where: { id: modelId } });
    expect(await t.deps.blobs.exists(model.canonicalBlob!)).toBe(true);
    await api().delete(`/models/${modelId}`).expect(204);
  });
});
