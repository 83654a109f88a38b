/** Builds small TF.js layers models in a test and packs them as the zip users upload. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

export async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

/** A zip with model.json + one weight shard, optionally with the weights rewritten. */
export function tfjsZip(a: tf.io.ModelArtifacts, patchWeights?: (w: Float32Array) => void): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-zip-'));
  const data = new Float32Array((a.weightData as ArrayBuffer).slice(0));
  patchWeights?.(data);
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(data.buffer));
  fs.writeFileSync(
    path.join(dir, 'model.json'),
    JSON.stringify({ format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }),
  );
  execFileSync('zip', ['-q', 'm.zip', 'model.json', 'weights.bin'], { cwd: dir });
  return fs.readFileSync(path.join(dir, 'm.zip'));
}

/** A zip of arbitrary entries (names used verbatim, so hostile names are possible). */
export function rawZip(entries: Record<string, Buffer>): Buffer {
  // Minimal stored (uncompressed) zip writer: the zip CLI refuses names like ../x.
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const nameBuf = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    locals.push(local, nameBuf, data);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A zip whose one entry inflates to `bytes` zeros (deflated by the zip CLI: a high ratio). */
export function zipBomb(entryName: string, bytes: number): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bomb-'));
  fs.writeFileSync(path.join(dir, entryName), Buffer.alloc(bytes));
  execFileSync('zip', ['-q', '-9', 'b.zip', entryName], { cwd: dir });
  return fs.readFileSync(path.join(dir, 'b.zip'));
}
