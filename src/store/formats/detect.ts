/**
 * Recognises an uploaded model file by its bytes, never by its name: HDF5 by its signature,
 * Keras 3 `.keras` and TF.js zips by the entries of the zip's central directory.
 */
import yauzl from 'yauzl';

export type ModelFormat = 'keras' | 'h5' | 'tfjs';

export const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_SIGNATURE = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const ZIP_EMPTY_SIGNATURE = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

export type Sniffed = 'hdf5' | 'zip' | 'unknown';

export function sniff(head: Uint8Array): Sniffed {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 8 && b.subarray(0, 8).equals(HDF5_SIGNATURE)) return 'hdf5';
  if (b.length >= 4 && (b.subarray(0, 4).equals(ZIP_SIGNATURE) || b.subarray(0, 4).equals(ZIP_EMPTY_SIGNATURE))) {
    return 'zip';
  }
  return 'unknown';
}

export interface ZipEntryInfo {
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
}

/** Lists a zip's entries from its central directory without inflating anything. */
export function listZipEntries(data: Buffer, maxEntries = 10_000): Promise<ZipEntryInfo[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(data, { lazyEntries: true, decodeStrings: true, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('unreadable zip'));
      const entries: ZipEntryInfo[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        entries.push({ name: e.fileName, compressedSize: e.compressedSize, uncompressedSize: e.uncompressedSize });
        if (entries.length > maxEntries) {
          zip.close();
          return reject(new Error(`zip has more than ${maxEntries} entries`));
        }
        zip.readEntry();
      });
      zip.on('end', () => resolve(entries));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/** Which model format a zip holds, from its entry names; undefined when it is neither. */
export function zipModelFormat(entries: readonly ZipEntryInfo[]): ModelFormat | undefined {
  const names = new Set(entries.map((e) => e.name.replace(/^\.\//, '')));
  if (names.has('config.json') && names.has('model.weights.h5')) return 'keras';
  if ([...names].some((n) => n === 'model.json' || n.endsWith('/model.json'))) return 'tfjs';
  return undefined;
}
