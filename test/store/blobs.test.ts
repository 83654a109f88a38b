import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FsBlobStore } from '../../src/store/blobs';
import { PayloadTooLargeError } from '../../src/errors';

function store(): FsBlobStore {
  return new FsBlobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'blobs-test-')));
}

describe('FsBlobStore', () => {
  it('addresses content by SHA-256 and reads it back', async () => {
    const s = store();
    const data = Buffer.from('hello blobs');
    const ref = await s.putBuffer(data);
    expect(ref).toEqual({ key: createHash('sha256').update(data).digest('hex'), size: data.length });
    expect(await s.get(ref.key)).toEqual(data);
    expect(await s.exists(ref.key)).toBe(true);
    // Same bytes, same key, one file.
    expect(await s.putBuffer(Buffer.from('hello blobs'))).toEqual(ref);
    const keys = [];
    for await (const k of s.keys()) keys.push(k);
    expect(keys).toEqual([ref.key]);
    await s.delete(ref.key);
    expect(await s.exists(ref.key)).toBe(false);
  });

  it('streams large input without buffering and enforces maxBytes, leaving no temp file', async () => {
    const s = store();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 64; i++) yield chunk;
      })(),
    );
    await expect(s.putStream(source, { maxBytes: 1024 * 1024 })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(fs.readdirSync(path.join(s.root, 'tmp'))).toEqual([]);
    const keys = [];
    for await (const k of s.keys()) keys.push(k);
    expect(keys).toEqual([]);
  });

  it('refuses keys that are not hex digests (no path traversal)', async () => {
    const s = store();
    await expect(s.get('../../etc/passwd')).rejects.toThrow(/invalid blob key/);
    expect(() => s.openRead('abc')).toThrow(/invalid blob key/);
  });
});
