/**
 * Stored form of a module: its masks packed as bits (all observation points concatenated, in
 * the decomposition's order, LSB first) and its 2-unit head as float32 [F*2 kernel, 2 bias].
 */
export function packMasks(masks: readonly Uint8Array[]): Buffer {
  const total = masks.reduce((s, m) => s + m.length, 0);
  const out = Buffer.alloc(Math.ceil(total / 8));
  let bit = 0;
  for (const m of masks) {
    for (let i = 0; i < m.length; i++, bit++) if (m[i]) out[bit >> 3] |= 1 << (bit & 7);
  }
  return out;
}

export function unpackMasks(bytes: Buffer, units: readonly number[]): Uint8Array[] {
  const total = units.reduce((a, b) => a + b, 0);
  if (bytes.length !== Math.ceil(total / 8)) throw new Error(`mask blob has ${bytes.length} bytes, expected ${Math.ceil(total / 8)}`);
  let bit = 0;
  return units.map((n) => {
    const m = new Uint8Array(n);
    for (let i = 0; i < n; i++, bit++) m[i] = (bytes[bit >> 3] >> (bit & 7)) & 1;
    return m;
  });
}

export function packHead(kernel: Float32Array, bias: Float32Array): Buffer {
  const out = new Float32Array(kernel.length + bias.length);
  out.set(kernel);
  out.set(bias, kernel.length);
  return Buffer.from(out.buffer);
}

export function unpackHead(bytes: Buffer): { kernel: Float32Array; bias: Float32Array } {
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { kernel: all.slice(0, all.length - 2), bias: all.slice(all.length - 2) };
}
