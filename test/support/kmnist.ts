/** The FSE KMNIST-1 model and its test set uploaded through the API (small and fast: jobs tests use them). */
import path from 'node:path';
import type { Server } from 'node:http';
import request from 'supertest';
import { KMNIST_DIR } from './fixtures';

/**
 * @param modelStatus 201 when the app waits for the import (IMPORT_WAIT_MS), else 202
 * @param key the API key to upload with, when keys are on
 */
export async function uploadKmnist(server: Server, modelStatus: 201 | 202 = 201, key?: string): Promise<{ modelId: string; datasetId: string }> {
  const api = request(server);
  const auth = (r: request.Test) => (key ? r.set('authorization', `Bearer ${key}`) : r);
  const model = await auth(api.post('/models'))
    .field('preprocessing', JSON.stringify({ scale: 1 / 65025 }))
    .attach('file', path.join(KMNIST_DIR, 'kmnist.h5'))
    .expect(modelStatus);
  const ds = await auth(api.post('/datasets'))
    .attach('file', path.join(KMNIST_DIR, 'kmnist-test-imgs.npz'))
    .attach('file', path.join(KMNIST_DIR, 'kmnist-test-labels.npz'))
    .expect(201);
  return { modelId: model.body.id, datasetId: ds.body.id };
}
