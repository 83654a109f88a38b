/** Writes a small zip in memory from named buffers (yazl, deflated). */
import yazl from 'yazl';

export function zipBuffers(entries: Record<string, Buffer>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    // A fixed timestamp keeps the bytes (and so the content address) reproducible.
    for (const [name, data] of Object.entries(entries)) zip.addBuffer(data, name, { mtime: new Date(0) });
    zip.end();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}
