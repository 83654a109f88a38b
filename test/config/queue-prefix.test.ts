/**
 * Issue 10, bug 2: two deployments with different databases on one Redis must not share BullMQ
 * keys by default, or the worker of one takes the other's jobs. The default prefix derives from
 * the database's name; an explicit QUEUE_PREFIX still wins.
 */
import { loadConfig } from '../../src/config/env';

const VALID = /^[A-Za-z0-9_-]{1,64}$/;

describe('QUEUE_PREFIX default', () => {
  it('differs between two databases when QUEUE_PREFIX is unset', () => {
    const a = loadConfig({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_a' });
    const b = loadConfig({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:5432/cnn_b' });
    expect(a.queuePrefix).not.toBe(b.queuePrefix);
    expect(a.queuePrefix).toBe('cnn-cnn_a');
    expect(b.queuePrefix).toBe('cnn-cnn_b');
    expect(loadConfig({}).queuePrefix).toBe('cnn-cnn_modules');
  });

  it('is the same for one database however it is reached (API and workers on different hosts agree)', () => {
    const a = loadConfig({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:5432/shop?sslmode=disable' });
    const b = loadConfig({ DATABASE_URL: 'postgres://app:secret@db.internal:6432/shop' });
    expect(a.queuePrefix).toBe(b.queuePrefix);
  });

  it('stays a valid prefix, and distinct, for database names with other characters or over-long ones', () => {
    const names = ['my db', 'my.db', 'my-db', 'bäckerei', 'x'.repeat(63), `${'x'.repeat(62)}y`];
    const prefixes = names.map((n) => loadConfig({ DATABASE_URL: `postgresql://h/${encodeURIComponent(n)}` }).queuePrefix);
    for (const p of prefixes) expect(p).toMatch(VALID);
    expect(new Set(prefixes).size).toBe(names.length);
  });

  it('an explicit QUEUE_PREFIX wins', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://h/cnn_a', QUEUE_PREFIX: 'shared' });
    expect(c.queuePrefix).toBe('shared');
  });
});
