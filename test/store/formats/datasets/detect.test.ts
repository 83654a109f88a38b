import { parseDataset } from '../../../../src/store/formats/datasets';
import { expectAppError, makeIdx, makeZip } from './helpers';

describe('dataset format detection and options', () => {
  it('does not take a CIFAR record that starts like an IDX magic for IDX', async () => {
    const record = Buffer.alloc(3073 * 2);
    record.set([0, 0, 8, 3], 0); // label 0, red pixels 0, 8, 3
    const d = await parseDataset([{ name: 'batch.bin', bytes: record }]);
    expect(d.format).toBe('cifar-bin');
    expect(d.count).toBe(2);
  });

  it('answers 415 when nothing fits', async () => {
    await expectAppError(parseDataset([{ name: 'notes.bin', bytes: Buffer.from('hello') }]), 415, /cannot detect the dataset format of notes\.bin/);
    const emptyZip = makeZip([{ name: 'readme.md', data: Buffer.from('x') }]);
    await expectAppError(parseDataset([{ name: 'a.zip', bytes: emptyZip }]), 415, /a\.zip \(zip\)/);
  });

  it('answers 415 when an explicit format does not match the bytes', async () => {
    await expectAppError(
      parseDataset(
        [
          { name: 'x.zip', bytes: makeZip([]) },
          { name: 'l', bytes: makeIdx([1], new Uint8Array(1)) },
        ],
        { format: 'idx' },
      ),
      415,
      /x\.zip: not an IDX file/,
    );
    await expectAppError(parseDataset([{ name: 'a.bin', bytes: Buffer.alloc(10) }], { format: 'npz' }), 415, /a\.bin: neither an \.npz/);
  });

  it('validates options and the file list', async () => {
    await expectAppError(parseDataset([]), 400, /no dataset files/);
    const bin = { name: 'b.bin', bytes: Buffer.alloc(3073) };
    await expectAppError(parseDataset([bin], { maxImages: 0 }), 400, /maxImages must be a positive integer/);
    await expectAppError(parseDataset([bin], { maxImages: 1.5 }), 400, /maxImages/);
    await expectAppError(
      parseDataset(
        [
          { name: 'i', bytes: makeIdx([1, 1, 1], new Uint8Array(1)) },
          { name: 'l', bytes: makeIdx([1], new Uint8Array(1)) },
        ],
        { labelMode: 'fine' },
      ),
      400,
      /labelMode only applies to cifar-bin/,
    );
  });

  it('enforces maxImages from declared counts', async () => {
    await expectAppError(
      parseDataset([{ name: 'b.bin', bytes: Buffer.alloc(3073 * 3) }], { maxImages: 2 }),
      400,
      /b\.bin: declares 3 images, more than the limit of 2/,
    );
  });
});
