/**
 * Helpers over streams of byte chunks. Streams split where they like (64 KiB file reads, 16 KiB
 * inflate output, network packets), while the readers decode fixed-size units: a CIFAR record,
 * a float32, an int64 label. These regroup the chunks so every unit lies whole in one chunk.
 */

/**
 * Regroups `chunks` into chunks of whole `size`-byte units. Only a unit split between two input
 * chunks is copied; the rest are views of the input.
 * @throws Error when the stream ends inside a unit: the callers check lengths up front, so that is a defect.
 */
export async function* wholeUnits(chunks: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  for await (const raw of chunks) {
    let chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (carry) {
      const need = size - carry.length;
      if (chunk.length < need) {
        carry = Buffer.concat([carry, chunk]);
        continue;
      }
      yield Buffer.concat([carry, chunk.subarray(0, need)]);
      chunk = chunk.subarray(need);
      carry = undefined;
    }
    const whole = chunk.length - (chunk.length % size);
    if (whole > 0) yield chunk.subarray(0, whole);
    // A copy, so the remainder does not keep the whole input chunk alive.
    if (whole < chunk.length) carry = Buffer.from(chunk.subarray(whole));
  }
  if (carry) throw new Error(`stream ended inside a ${size}-byte unit (${carry.length} bytes left over)`);
}

/** `chunks` without their first `count` bytes. */
export async function* skipBytes(chunks: AsyncIterable<Uint8Array>, count: number): AsyncGenerator<Uint8Array> {
  let left = count;
  for await (const chunk of chunks) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/** The first `count` bytes (fewer if the stream ends first); stops reading once they are in. */
export async function takeBytes(chunks: AsyncIterable<Uint8Array>, count: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of chunks) {
    if (got >= count) break;
    parts.push(chunk.subarray(0, count - got));
    got += Math.min(chunk.length, count - got);
    if (got >= count) break;
  }
  return Buffer.concat(parts, got);
}
