/**
 * s3rver (the Node S3 test server the tests use, test/support/s3-server.ts) in a process of its own,
 * for bench/blobs.ts: the bench client and the API then do not share its event loop, as they would
 * not share a real S3 server's.
 *
 *   node --import tsx bench/s3rver-main.ts <data directory>
 *
 * Listens on a free loopback port and prints `{"port": N}` as one line on stdout once it serves;
 * closes on SIGTERM or SIGINT.
 */
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

async function main(): Promise<void> {
  const directory = process.argv[2];
  if (!directory) throw new Error('usage: s3rver-main.ts <data directory>');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const address = (await server.run()) as AddressInfo;
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  const close = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
