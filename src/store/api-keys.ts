/**
 * API keys: only their SHA-256 is stored. A key's owner id (what resources belong to) is derived
 * from that hash, so keys from API_KEYS and keys made with the CLI behave the same.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './db';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function ownerIdOf(keyHash: string): string {
  return `key_${keyHash.slice(0, 24)}`;
}

/** Creates a key, stores its hash, and returns the key itself (shown once). */
export async function createApiKey(db: Db, name?: string): Promise<{ key: string; ownerId: string }> {
  const key = `cnn_${randomBytes(32).toString('base64url')}`;
  const hash = hashKey(key);
  await db.apiKey.create({ data: { id: randomUUID(), name: name ?? null, hash } });
  return { key, ownerId: ownerIdOf(hash) };
}

export async function storedKeyExists(db: Db, hash: string): Promise<boolean> {
  return (await db.apiKey.count({ where: { hash } })) > 0;
}

export async function anyStoredKey(db: Db): Promise<boolean> {
  return (await db.apiKey.count()) > 0;
}
