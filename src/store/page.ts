/**
 * Keyset pages over (createdAt, id), newest first: rows added meanwhile do not shift later pages
 * (an offset would repeat or skip rows, and rescan every earlier page), and each page is a range
 * read of the tables' (ownerId, createdAt, id) indexes. The cursor is opaque to clients: the last
 * row's createdAt and id, base64url-encoded.
 */
import { BadRequestError } from '../errors';

export interface PageRequest {
  readonly limit: number;
  readonly cursor?: string;
}

export interface Page<T> {
  readonly items: T[];
  /** Present when more rows follow: pass it back as `cursor` for the next page. */
  readonly nextCursor?: string;
}

/** The `where` that starts after the cursor (and the order it assumes). */
export function afterCursor(cursor: string | undefined): object {
  if (!cursor) return {};
  const { createdAt, id } = decodeCursor(cursor);
  return { OR: [{ createdAt: { lt: createdAt } }, { createdAt, id: { lt: id } }] };
}

export const PAGE_ORDER = [{ createdAt: 'desc' as const }, { id: 'desc' as const }];

/** Reads `limit + 1` rows through `read` to know whether another page follows. */
export async function readPage<R extends { id: string; createdAt: Date }, T>(
  page: PageRequest,
  read: (take: number) => Promise<R[]>,
  map: (row: R) => T,
): Promise<Page<T>> {
  const rows = await read(page.limit + 1);
  const more = rows.length > page.limit;
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  return { items: items.map(map), ...(more && last ? { nextCursor: encodeCursor(last) } : {}) };
}

function encodeCursor(row: { id: string; createdAt: Date }): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    const createdAt = new Date(String(at));
    if (typeof id === 'string' && !Number.isNaN(createdAt.getTime())) return { createdAt, id };
  } catch {
    // falls through to the refusal below
  }
  throw new BadRequestError('cursor is not one this service handed out (use nextCursor of the previous page)');
}
