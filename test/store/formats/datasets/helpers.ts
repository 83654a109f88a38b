/** Builders for dataset test inputs: zips (including hostile ones), .npy arrays, shared data paths. */
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../../../../src/errors';
import { buildZip } from '../../../support/zip-builder';
import type { DatasetFile } from '../../../../src/store/formats/datasets';

export const SHARED = path.resolve(__dirname, '..', '..', '..', '..', '..', 'shared');

export function sharedFile(relative: string): DatasetFile {
  const file = path.join(SHARED, relative);
  return { name: path.basename(file), bytes: fs.readFileSync(file) };
}

export interface ZipInput {
  readonly name: string;
  readonly data: Buffer;
  readonly deflate?: boolean;
  /** Lie about the uncompressed size in both headers. */
  readonly declaredSize?: number;
}

/** A zip of `inputs` (stored unless `deflate`), hostile names and lying sizes included. */
export function makeZip(inputs: readonly ZipInput[]): Buffer {
  return buildZip(inputs.map((i) => ({ name: i.name, data: i.data, store: !i.deflate, declaredSize: i.declaredSize })));
}

/** A version-1 .npy file; `data` is written as given (the caller picks byte order). */
export function makeNpy(descr: string, shape: readonly number[], data: Buffer, fortran = false): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(prefix);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), data]);
}

/** An IDX file with uint8 elements. */
export function makeIdx(dims: readonly number[], payload: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(payload)]);
}

/** Awaits a rejection and checks it is an AppError with this status and a detail matching `detail`. */
export async function expectAppError(promise: Promise<unknown>, status: number, detail: RegExp): Promise<AppError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AppError);
  const err = caught as AppError;
  expect({ status: err.status, detail: err.detail }).toEqual({ status, detail: expect.stringMatching(detail) });
  return err;
}
