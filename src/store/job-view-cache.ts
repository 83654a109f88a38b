/**
 * Job views kept in memory between changes, for the hottest read of the API (GET /jobs/:id, polled
 * by every client, dashboard and worker script). A view is served from memory only while the
 * process is told of every change: the owner (api/services/job-watch.ts) calls `invalidate` for
 * each notified id and `setLive` when its LISTEN connection comes up or drops. The database stays
 * the record: a miss reads the row, and a change that lands while that read is in flight keeps its
 * result out of the cache. A view may lag a commit made by another process by the time its
 * notification takes to arrive (well under a millisecond on one host).
 */
import { NotFoundError } from '../errors';
import { jobViewById, type JobViewRow } from './jobs';
import type { PrismaClient } from './db';

/** Enough for every job polled at once on a busy service; the oldest entries go first. */
export const JOB_VIEW_CACHE_ENTRIES = 10_000;

interface Read {
  readonly row: Promise<JobViewRow | null>;
  /** A change arrived while the read was in flight: its row may predate it. */
  stale: boolean;
}

export class JobViewCache {
  private readonly rows = new Map<string, JobViewRow>();
  private readonly inFlight = new Map<string, Read>();
  private live = false;
  /** For tests and metrics. */
  hits = 0;
  misses = 0;
  reads = 0;

  constructor(
    private readonly db: PrismaClient,
    private readonly maxEntries = JOB_VIEW_CACHE_ENTRIES,
  ) {}

  /**
   * The job's view, from memory when it is there; the owner filter as everywhere (null matches
   * rows without an owner), so another key's job is a 404 like an unknown one.
   */
  async find(id: string, ownerId: string | null): Promise<JobViewRow> {
    const row = await this.row(id);
    if (!row || row.ownerId !== ownerId) throw new NotFoundError('job', id);
    return row;
  }

  private row(id: string): Promise<JobViewRow | null> {
    const hit = this.rows.get(id);
    if (hit) {
      this.hits++;
      return Promise.resolve(hit);
    }
    this.misses++;
    // One read per job at a time: the clients polling it all wait for the same row.
    const pending = this.inFlight.get(id);
    if (pending) return pending.row;
    this.reads++;
    const read: Read = { stale: !this.live, row: jobViewById(this.db, id) };
    this.inFlight.set(id, read);
    const settle = () => {
      if (this.inFlight.get(id) === read) this.inFlight.delete(id);
    };
    read.row.then((row) => {
      settle();
      if (row && !read.stale) this.keep(id, row);
    }, settle);
    return read.row;
  }

  private keep(id: string, row: JobViewRow): void {
    if (this.rows.size >= this.maxEntries) {
      const oldest = this.rows.keys().next().value;
      if (oldest !== undefined) this.rows.delete(oldest);
    }
    this.rows.set(id, row);
  }

  /** The job's row changed or went: forget its view, and the result of a read in flight. */
  invalidate(id: string): void {
    this.rows.delete(id);
    const read = this.inFlight.get(id);
    if (read) {
      read.stale = true;
      this.inFlight.delete(id);
    }
  }

  /**
   * Whether changes are being seen. Either way everything held is forgotten: coming up, changes
   * may have been missed while down; going down, later ones would be.
   */
  setLive(live: boolean): void {
    this.live = live;
    this.clear();
  }

  /** Forgets every view (after this process's own deletes, and on a TRUNCATE). */
  clear(): void {
    this.rows.clear();
    for (const read of this.inFlight.values()) read.stale = true;
    this.inFlight.clear();
  }

  get size(): number {
    return this.rows.size;
  }
}
