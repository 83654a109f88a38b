/** GET /modules/:id/export as a user would take it: unzip, read model.json and its weights, load with plain TF.js. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import request from 'supertest';

export interface DownloadedExport {
  readonly contentType: string;
  readonly zipBytes: number;
  /** model.json as written. */
  readonly json: { userDefinedMetadata: Record<string, unknown>; weightsManifest: { paths: string[] }[] };
  /** The weights file's bytes. */
  readonly weights: Buffer;
  readonly model: tf.LayersModel;
}

export async function downloadExport(server: Server, moduleId: string): Promise<DownloadedExport> {
  const res = await request(server)
    .get(`/modules/${moduleId}/export`)
    .buffer(true)
    .parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
  if (res.status !== 200) throw new Error(`export answered ${res.status}: ${JSON.stringify(res.body)}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'export-'));
  fs.writeFileSync(path.join(dir, 'm.zip'), res.body as Buffer);
  execFileSync('unzip', ['-q', 'm.zip'], { cwd: dir });
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(dir, json.weightsManifest[0].paths[0]));
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  return { contentType: res.headers['content-type'], zipBytes: (res.body as Buffer).length, json, weights, model };
}
