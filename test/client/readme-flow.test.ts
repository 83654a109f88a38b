/**
 * A client generated from openapi.yaml runs the README's flow against a started service: types by
 * openapi-typescript (`npm run openapi` writes test/client/openapi.ts), calls by openapi-fetch.
 * `npm test` type-checks this file first, so a route or schema change that breaks such clients
 * breaks the suite; then it runs: upload the KMNIST model and test set, evaluate, decompose,
 * compose two modules, predict one PNG, export a module.
 */
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import createClient from 'openapi-fetch';
import { PNG } from 'pngjs';
import { KMNIST_DIR } from '../support/fixtures';
import { appWithWorkers } from '../support/workers';
import type { paths } from './openapi';

type Client = ReturnType<typeof createClient<paths>>;

/** Multipart bodies go as FormData, as a browser or curl -F sends them. */
const asForm = (parts: [string, Blob | string, string?][]) => () => {
  const form = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, value, filename);
  }
  return form;
};
const file = (p: string) => new Blob([fs.readFileSync(p)]);

async function untilDone(client: Client, jobId: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const { data, error } = await client.GET('/jobs/{id}', { params: { path: { id: jobId } } });
    if (error) throw new Error(`GET /jobs/${jobId}: ${error.title}: ${error.detail}`);
    if (data.state === 'completed') return;
    if (data.state === 'failed' || data.state === 'cancelled') throw new Error(`job ${jobId} ${data.state}: ${JSON.stringify(data.error)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`job ${jobId} did not finish`);
}

describe('a client generated from openapi.yaml', () => {
  const t = appWithWorkers({ IMPORT_WAIT_MS: '60000' });
  let client: Client;
  beforeAll(async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    client = createClient<paths>({ baseUrl: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}` });
  });

  it("runs the README's flow: upload, evaluate, decompose, compose, predict, export", async () => {
    const model = await client.POST('/models', {
      // The multipart parts are documented; openapi-fetch sends what the serializer builds.
      body: {} as never,
      bodySerializer: asForm([
        ['preprocessing', JSON.stringify({ scale: 1 / 65025 })],
        ['file', file(path.join(KMNIST_DIR, 'kmnist.h5')), 'kmnist.h5'],
      ]),
    });
    expect(model.response.status).toBe(201);
    if (!model.data) throw new Error(JSON.stringify(model.error));
    expect(model.data.status).toBe('ready');
    const modelId = model.data.id;

    const dataset = await client.POST('/datasets', {
      body: {} as never,
      bodySerializer: asForm([
        ['file', file(path.join(KMNIST_DIR, 'kmnist-test-imgs.npz')), 'kmnist-test-imgs.npz'],
        ['file', file(path.join(KMNIST_DIR, 'kmnist-test-labels.npz')), 'kmnist-test-labels.npz'],
      ]),
    });
    if (!dataset.data) throw new Error(JSON.stringify(dataset.error));
    expect(dataset.data.count).toBe(10000);
    const datasetId = dataset.data.id;

    // Evaluate: the model's README figure.
    const ev = await client.POST('/evaluations', { body: { modelId, datasetId } });
    if (!ev.data) throw new Error(JSON.stringify(ev.error));
    await untilDone(client, ev.data.jobId);
    const evaluation = await client.GET('/evaluations/{id}', { params: { path: { id: ev.data.id } } });
    expect(evaluation.data?.result?.top1).toBeCloseTo(0.7602, 4);

    // Decompose (few samples: the flow, not the figures), then compose two of its modules.
    const dec = await client.POST('/decompositions', { body: { modelId, datasetId, options: { samplesPerClass: 50 } } });
    if (!dec.data) throw new Error(JSON.stringify(dec.error));
    await untilDone(client, dec.data.jobId);
    const decomposition = await client.GET('/decompositions/{id}', { params: { path: { id: dec.data.id } } });
    const modules = decomposition.data?.modules ?? [];
    expect(modules).toHaveLength(10);

    const comp = await client.POST('/compositions', { body: { modules: modules.slice(0, 2).map((m) => ({ moduleId: m.id })), evalDatasetId: datasetId } });
    if (!comp.data) throw new Error(JSON.stringify(comp.error));
    await untilDone(client, comp.data.jobId);
    const composition = await client.GET('/compositions/{id}', { params: { path: { id: comp.data.id } } });
    expect(composition.data?.status).toBe('completed');
    expect(composition.data?.labels).toHaveLength(2);
    expect(composition.data?.metrics?.top1).toBeGreaterThan(0.5);

    // Predict one PNG: a 28x28 grayscale stroke.
    const png = new PNG({ width: 28, height: 28 });
    for (let p = 0; p < 28 * 28; p++) png.data.set(p % 28 === 14 ? [255, 255, 255, 255] : [0, 0, 0, 255], p * 4);
    const predicted = await client.POST('/compositions/{id}/predict', {
      params: { path: { id: comp.data.id } },
      body: {} as never,
      bodySerializer: asForm([['image', new Blob([PNG.sync.write(png)], { type: 'image/png' }), 'stroke.png']]),
    });
    // 200 with the predictions, or 202 with a job when they take longer than PREDICT_WAIT_MS.
    if (!predicted.data || !('predictions' in predicted.data))
      throw new Error(`${predicted.response.status}: ${JSON.stringify(predicted.data ?? predicted.error)}`);
    const top = predicted.data.predictions[0];
    expect(top).toHaveLength(2);
    expect(composition.data?.labels).toContain(top[0].label);

    // Export a module: a zip (TF.js model.json and weights).
    const exported = await client.GET('/modules/{id}/export', { params: { path: { id: modules[0].id } }, parseAs: 'arrayBuffer' });
    expect(exported.response.status).toBe(200);
    const bytes = Buffer.from(exported.data as ArrayBuffer);
    expect(bytes.subarray(0, 2).toString()).toBe('PK');

    // An error comes back typed as the document's problem.
    const missing = await client.GET('/models/{id}', { params: { path: { id: 'no-such-model' } } });
    expect(missing.response.status).toBe(404);
    expect(missing.error?.title).toBeDefined();
    expect(missing.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
