/** POST /models bad input: a clear problem+json 4xx and nothing stored (no rows, no blobs). */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app';
import { SHARED } from '../support/test-env';

const KMNIST = path.join(SHARED, 'fixtures', 'fse-kmnist1', 'kmnist.h5');

async function blobCount(t: TestApp): Promise<number> {
  let n = 0;
  for await (const _ of t.deps.blobs.keys()) n++;
  return n;
}

async function rowCounts(t: TestApp): Promise<{ models: number; jobs: number }> {
  const [models, jobs] = await Promise.all([t.deps.db.model.count({ where: { sourceBlob: { not: '' } } }), t.deps.db.job.count()]);
  return { models, jobs };
}

function expectProblem(res: request.Response, status: number, detail: RegExp): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, type: expect.stringMatching(/^\/problems\//), title: expect.any(String) });
  expect(res.body.detail).toMatch(detail);
}

describe('POST /models rejects bad input and stores nothing', () => {
  let t: TestApp;
  let before: { models: number; jobs: number };
  beforeEach(async () => {
    t = await buildTestApp({ MAX_UPLOAD_BYTES: '200000' });
    before = await rowCounts(t);
  });
  afterEach(async () => {
    try {
      expect(await rowCounts(t)).toEqual(before);
      expect(await blobCount(t)).toBe(0);
      expect(fs.readdirSync(path.join(t.env.BLOB_DIR, 'tmp'))).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('413 over MAX_UPLOAD_BYTES', async () => {
    const res = await request(t.app.server).post('/models').attach('file', KMNIST);
    expectProblem(res, 413, /200000 bytes/);
  });

  it('400 for a client that stops in the middle of a file, with no blob or temp file left', async () => {
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = new URL(address);
    const boundary = 'stall';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.h5"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const sent = Buffer.concat([head, fs.readFileSync(KMNIST).subarray(0, 50_000)]);
    const response = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        // Declares far more than it sends, then goes silent with the connection open.
        socket.write(
          `POST /models HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${sent.length + 100_000}\r\n\r\n`,
        );
        socket.write(sent);
      });
      let out = '';
      socket.on('data', (d) => {
        out += d.toString('latin1');
        if (out.includes('\r\n\r\n{') && out.trimEnd().endsWith('}')) {
          socket.destroy();
          resolve(out);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(out));
    });
    expect(response).toMatch(/^HTTP\/1\.1 400/);
    expect(response).toMatch(/application\/problem\+json/);
    expect(response).toMatch(/stalled multipart body/);
    expect(await blobCount(t)).toBe(0);
    expect(fs.readdirSync(path.join(t.env.BLOB_DIR, 'tmp'))).toEqual([]);
  });

  it('415 for bytes that are neither HDF5 nor zip', async () => {
    const junk = path.join(os.tmpdir(), 'junk-model.h5');
    fs.writeFileSync(junk, Buffer.from('this is not a model at all, just text'));
    const res = await request(t.app.server).post('/models').attach('file', junk);
    expectProblem(res, 415, /neither|not a Keras/);
  });

  it('400 without a file', async () => {
    const res = await request(t.app.server).post('/models').field('name', 'x');
    expectProblem(res, 400, /"file" is required/);
  });

  it('400 for a JSON body instead of multipart', async () => {
    const res = await request(t.app.server).post('/models').send({ file: 'x' });
    expectProblem(res, 400, /multipart/);
  });

  it('400 for invalid preprocessing JSON, and for a schema violation', async () => {
    const small = path.join(os.tmpdir(), 'small.h5');
    fs.writeFileSync(small, Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(100)]));
    let res = await request(t.app.server).post('/models').field('preprocessing', '{not json').attach('file', small);
    expectProblem(res, 400, /preprocessing.*not valid JSON/);
    res = await request(t.app.server).post('/models').field('preprocessing', '{"scale": -1}').attach('file', small);
    expectProblem(res, 400, /preprocessing/);
    res = await request(t.app.server).post('/models').field('classNames', '[1,2]').attach('file', small);
    expectProblem(res, 400, /classNames/);
    // Two classes with one name: no label could tell them apart.
    res = await request(t.app.server).post('/models').field('classNames', '["cat","dog","cat"]').attach('file', small);
    expectProblem(res, 400, /classNames.*unique/);
    res = await request(t.app.server).post('/models').field('bogus', '1').attach('file', small);
    expectProblem(res, 400, /unknown field "bogus"/);
  });

  it('404 problem for unknown ids and routes', async () => {
    expectProblem(await request(t.app.server).get('/models/does-not-exist'), 404, /does not exist/);
    expectProblem(await request(t.app.server).get('/jobs/does-not-exist'), 404, /does not exist/);
    expectProblem(await request(t.app.server).get('/nope'), 404, /no route/);
    // Past fastify's maxParamLength (100): its router answers before any route, in problem+json too.
    const long = 'a'.repeat(101);
    expectProblem(await request(t.app.server).get(`/models/${long}`), 404, /no resource has an id this long/);
    expectProblem(await request(t.app.server).delete(`/datasets/${long}`), 404, /no resource has an id this long/);
    expectProblem(await request(t.app.server).get(`/jobs/${long}/events`), 404, /no resource has an id this long/);
    // A path segment that does not percent-decode: malformed, 400.
    expectProblem(await request(t.app.server).get('/models/%E0%A4%A'), 400, /not a valid url component/);
  });
});

describe('model lifecycle over HTTP', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await buildTestApp();
  });
  afterEach(() => t.close());

  it('lists, reads, refuses to delete while its job is pending, then deletes with its blob', async () => {
    // Unique bytes: blobs are content-addressed and the test database is shared by the run.
    const bytes = Buffer.concat([fs.readFileSync(KMNIST), Buffer.from(String(Math.random()))]);
    const up = await request(t.app.server).post('/models').field('name', 'k').attach('file', bytes, 'k.h5').expect(202);
    const list = await request(t.app.server).get('/models').expect(200);
    expect(list.body.items.map((m: { id: string }) => m.id)).toContain(up.body.id);
    await request(t.app.server).get(`/models/${up.body.id}`).expect(200);
    const busy = await request(t.app.server).delete(`/models/${up.body.id}`);
    expectProblem(busy, 409, /unfinished job/);

    await request(t.app.server).delete(`/jobs/${up.body.jobId}`).expect(200);
    await request(t.app.server).delete(`/models/${up.body.id}`).expect(204);
    await request(t.app.server).get(`/models/${up.body.id}`).expect(404);
    expect(await t.deps.blobs.exists(up.body.sha256)).toBe(false);
  });
});
