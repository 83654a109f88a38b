/**
 * Guesses a dataset's format from the uploaded files' bytes. Names only matter for the CIFAR
 * class-name text files, which have no signature of their own; CIFAR batches have no header at all,
 * so they are recognised last, by their record size. Only the files' first bytes, their sizes and
 * (for zips) their central directories are read.
 */
import { UnsupportedFormatError } from '../../../errors';
import { isZip } from '../zip';
import { cifarRecordBytes, isCifarMeta, type CifarLabelMode } from './cifar-bin';
import { isImageEntryName } from './image-folder';
import { isGzip, looksLikeIdx } from './idx';
import { zipLimits, type DatasetLimits } from './limits';
import { isNpy } from './npy';
import type { DatasetSource } from './source';
import type { DatasetFormat } from './types';
import { openZipSource } from './zip-source';

type FileKind = 'gzip' | 'zip' | 'npy' | 'idx' | 'cifar-meta' | 'other';

function sniff(file: DatasetSource): FileKind {
  const b = file.head;
  if (isGzip(b)) return 'gzip';
  if (isZip(b)) return 'zip';
  if (isNpy(b)) return 'npy';
  if (looksLikeIdx(b) && idxLengthMatches(b, file.size)) return 'idx';
  if (isCifarMeta(file)) return 'cifar-meta';
  return 'other';
}

/**
 * A CIFAR record may begin 00 00 08 03 by chance (label 0, then red pixels 0, 8, 3); an IDX file
 * is only taken as one when its length is exactly what its header declares.
 */
function idxLengthMatches(head: Buffer, size: number): boolean {
  const rank = head[3]!;
  const headerBytes = 4 + 4 * rank;
  if (head.length < headerBytes) return false;
  let payload = 1;
  for (let i = 0; i < rank; i++) payload *= head.readUInt32BE(4 + 4 * i);
  return size === headerBytes + payload;
}

/** @throws UnsupportedFormatError (415) when no format fits. */
export async function detectDatasetFormat(files: readonly DatasetSource[], labelMode: CifarLabelMode, limits: DatasetLimits): Promise<DatasetFormat> {
  const kinds = files.map(sniff);
  if (kinds.includes('zip')) {
    let hasNpy = false;
    let hasImages = false;
    for (const [i, file] of files.entries()) {
      if (kinds[i] !== 'zip') continue;
      const zip = await openZipSource(file, zipLimits(limits));
      const names = [...zip.entries.keys()];
      zip.close();
      hasNpy ||= names.some((n) => n.toLowerCase().endsWith('.npy'));
      hasImages ||= names.some(isImageEntryName);
    }
    if (hasNpy) return 'npz';
    if (hasImages) return 'image-folder';
  } else if (kinds.includes('npy')) {
    return 'npz';
  } else if (kinds.includes('gzip') || kinds.includes('idx')) {
    return 'idx';
  } else {
    const record = cifarRecordBytes(labelMode);
    const batches = files.filter((_, i) => kinds[i] === 'other');
    if (batches.length > 0 && batches.every((f) => f.size > 0 && f.size % record === 0)) return 'cifar-bin';
  }
  const seen = files.map((f, i) => `${f.name} (${kinds[i]})`).join(', ');
  throw new UnsupportedFormatError(`cannot detect the dataset format of ${seen}; pass format as one of cifar-bin, idx, npz, image-folder`);
}
