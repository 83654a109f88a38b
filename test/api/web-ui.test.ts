/**
 * What the web UI needs from the server: the page and its bundles under /ui/ (deep links answer the
 * page, missing bundles 404), `/` redirecting there, decoded sample images, and Bull Board at
 * /queues behind the API's authentication (read-only when the service is open).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { cifarRecords, CIFAR_DIR } from '../support/fixtures';

const KEY_A = 'web-ui-key-a-0123456789';
const KEY_B = 'web-ui-key-b-0123456789';

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-web.mjs'], { stdio: 'pipe' });
});

describe('the web UI routes, service open', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('redirects / to /ui/ and answers every /ui/ path with the page', async () => {
    await request(t.app.server).get('/').expect(302).expect('location', '/ui/');
    const page = await request(t.app.server)
      .get('/ui/')
      .expect(200)
      .expect('content-type', /text\/html/);
    expect(page.headers['cache-control']).toBe('no-cache');
    const bundle = /src="\/ui\/(app-[A-Z0-9]+\.js)"/.exec(page.text)?.[1];
    expect(bundle).toBeDefined();
    const deep = await request(t.app.server).get('/ui/decompositions/some-id').expect(200);
    expect(deep.text).toBe(page.text);
    const js = await request(t.app.server)
      .get(`/ui/${bundle}`)
      .expect(200)
      .expect('content-type', /javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const missing = await request(t.app.server).get('/ui/app-OLDHASH1.js').expect(404);
    expect(missing.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('keeps the UI and the board out of the OpenAPI document', async () => {
    const doc = (await request(t.app.server).get('/docs/json').expect(200)).body;
    expect(Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/ui') || p.startsWith('/queues'))).toEqual([]);
    expect(doc.paths['/datasets/{id}/samples']).toBeDefined();
  });

  it('serves Bull Board read-only when no key guards it', async () => {
    await request(t.app.server)
      .get('/queues')
      .expect(200)
      .expect('content-type', /text\/html/);
    const queues = (await request(t.app.server).get('/queues/api/queues').expect(200)).body.queues as { name: string; readOnlyMode: boolean }[];
    expect(queues.length).toBeGreaterThanOrEqual(6);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
  });

  it('serves decoded samples as PNG with their labels, and refuses bad ranges', async () => {
    const n = 20;
    const { images, labels } = cifarRecords('test_batch.bin', n);
    const head = fs.readFileSync(path.join(CIFAR_DIR, 'test_batch.bin')).subarray(0, n * 3073);
    const ds = await request(t.app.server)
      .post('/datasets')
      .field('format', 'cifar-bin')
      .attach('file', head, 'head.bin')
      .attach('file', path.join(CIFAR_DIR, 'batches.meta.txt'))
      .expect(201);
    const res = await request(t.app.server).get(`/datasets/${ds.body.id}/samples?offset=5&count=3`).expect(200);
    expect(res.body.total).toBe(n);
    expect(res.body.items.map((s: { index: number }) => s.index)).toEqual([5, 6, 7]);
    for (const s of res.body.items as { index: number; label: number; className: string; png: string }[]) {
      expect(s.label).toBe(labels[s.index]);
      expect(s.className).toBe(ds.body.classNames[s.label]);
      const png = PNG.sync.read(Buffer.from(s.png.replace(/^data:image\/png;base64,/, ''), 'base64'));
      expect([png.width, png.height]).toEqual([32, 32]);
      // HWC RGB of the dataset, pixel for pixel.
      const px = images.subarray(s.index * 3072, (s.index + 1) * 3072);
      for (let p = 0; p < 1024; p += 97)
        expect([png.data[p * 4], png.data[p * 4 + 1], png.data[p * 4 + 2], png.data[p * 4 + 3]]).toEqual([px[p * 3], px[p * 3 + 1], px[p * 3 + 2], 255]);
    }
    expect((await request(t.app.server).get(`/datasets/${ds.body.id}/samples?offset=${n}`).expect(200)).body.items).toEqual([]);
    for (const q of ['count=0', 'count=65', 'offset=-1', 'count=x', 'extra=1']) {
      const bad = await request(t.app.server).get(`/datasets/${ds.body.id}/samples?${q}`).expect(400);
      expect(bad.headers['content-type']).toMatch(/application\/problem\+json/);
    }
    await request(t.app.server).get('/datasets/no-such-dataset/samples').expect(404);
  });
});

describe('the web UI routes, keys on', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ API_KEYS: `${KEY_A},${KEY_B}` });
  });
  afterAll(async () => {
    await t.close();
  });

  it('serves the page without a key (it holds no data) and the data only with one', async () => {
    await request(t.app.server).get('/ui/models').expect(200);
    await request(t.app.server).get('/models').expect(401);
  });

  it('keeps Bull Board behind the keys: header or the UI cookie, and writable for key holders', async () => {
    const refused = await request(t.app.server).get('/queues').expect(401);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    await request(t.app.server).get('/queues/api/queues').set('cookie', 'cnn_modules_key=wrong-key-0123456789').expect(401);
    // The cookie opens only the board, never the API.
    await request(t.app.server).get('/models').set('cookie', `cnn_modules_key=${KEY_A}`).expect(401);
    await request(t.app.server).get('/queues').set('authorization', `Bearer ${KEY_A}`).expect(200);
    const queues = (await request(t.app.server).get('/queues/api/queues').set('cookie', `other=1; cnn_modules_key=${KEY_A}`).expect(200)).body.queues;
    expect(queues.every((q: { readOnlyMode: boolean }) => !q.readOnlyMode)).toBe(true);
  });

  it("keeps a dataset's samples to its owner", async () => {
    const ds = await request(t.app.server)
      .post('/datasets')
      .set('authorization', `Bearer ${KEY_A}`)
      .field('format', 'cifar-bin')
      .attach('file', fs.readFileSync(path.join(CIFAR_DIR, 'test_batch.bin')).subarray(0, 4 * 3073), 'head.bin')
      .expect(201);
    await request(t.app.server).get(`/datasets/${ds.body.id}/samples`).set('authorization', `Bearer ${KEY_A}`).expect(200);
    await request(t.app.server).get(`/datasets/${ds.body.id}/samples`).set('authorization', `Bearer ${KEY_B}`).expect(404);
  });
});

describe('the web UI routes, UI not built', () => {
  it('answers /ui/ with a 503 that says how to build it', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'no-web-'));
    const t = await buildTestApp({ WEB_DIR: empty });
    try {
      const res = await request(t.app.server).get('/ui/').expect(503);
      expect(res.body.detail).toContain('npm run build');
      await request(t.app.server).get('/').expect(302);
    } finally {
      await t.close();
    }
  });
});
