/**
 * The canonical stored form of a model, whatever format it was uploaded in: one blob holding the
 * tfjs-layers topology and weight manifest as JSON, then the float32 weights. A worker loads it
 * with one read and no HDF5 or zip parsing.
 *
 * Layout: "CNNMODEL1\n" | uint32 LE JSON byte length | JSON {modelTopology, weightSpecs} | weights
 */
const MAGIC = Buffer.from('CNNMODEL1\n');

export interface CanonicalModel {
  readonly modelTopology: Record<string, unknown>;
  readonly weightSpecs: { name: string; shape: number[]; dtype: string }[];
  readonly weightData: ArrayBuffer;
}

export function packModel(m: CanonicalModel): Buffer {
  const json = Buffer.from(JSON.stringify({ modelTopology: m.modelTopology, weightSpecs: m.weightSpecs }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  return Buffer.concat([MAGIC, len, json, Buffer.from(m.weightData)]);
}

export function unpackModel(bytes: Buffer): CanonicalModel {
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error('not a canonical model blob');
  }
  const jsonLen = bytes.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  const meta = JSON.parse(bytes.subarray(start, start + jsonLen).toString('utf8')) as Omit<CanonicalModel, 'weightData'>;
  const w = bytes.subarray(start + jsonLen);
  // A fresh ArrayBuffer: Buffers can share a pooled one whose offset tfjs would ignore.
  const weightData = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer;
  return { ...meta, weightData };
}
