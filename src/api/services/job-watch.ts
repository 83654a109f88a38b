/**
 * Watching job rows, for GET /jobs/:id/events, and the cache of job views for GET /jobs/:id: both
 * are fed by the one LISTEN connection of the process. Every change of a job row is pushed by PostgreSQL
 * (store/job-changes.ts); the row is then read once, whoever watches it and however many, and
 * handed to each watcher in commit order: one read in flight per job, and a change that lands during
 * a read gets one more read after it. The job row stays the one record of job state.
 */
import * as jobsRepo from '../../store/jobs';
import { JobChangeListener } from '../../store/job-changes';
import { JobViewCache } from '../../store/job-view-cache';
import type { PrismaClient } from '../../store/db';

export type JobWatcher = (row: jobsRepo.JobViewRow) => void;

export class JobWatch {
  private readonly watchers = new Map<string, Set<JobWatcher>>();
  /** Jobs with a read in flight, and whether another change arrived meanwhile. */
  private readonly reading = new Map<string, { again: boolean }>();
  private readonly listener: JobChangeListener;
  readonly views: JobViewCache;

  constructor(
    private readonly db: PrismaClient,
    databaseUrl: string,
  ) {
    this.views = new JobViewCache(db);
    this.listener = new JobChangeListener(databaseUrl, {
      onChange: (id) => {
        this.views.invalidate(id);
        this.changed(id);
      },
      // After a reconnection every watched job is read again: a change may have been missed.
      onResync: () => {
        this.views.setLive(true);
        for (const id of this.watchers.keys()) this.changed(id);
      },
      onDisconnect: () => this.views.setLive(false),
    });
  }

  /**
   * The job's view for GET /jobs/:id, from memory while this process sees every change (the
   * LISTEN connection opens on the first call; until it is up, views are read from the database).
   */
  view(id: string, ownerId: string | null): Promise<jobsRepo.JobViewRow> {
    void this.listener.start();
    return this.views.find(id, ownerId);
  }

  /**
   * Calls `watcher` with the job's row now and after each change (the LISTEN is in place before the
   * first read, so no later commit is missed). The first row goes through the same one-at-a-time
   * reads as the changes, so the watcher sees rows in commit order; the other watchers of the job
   * get that row too, unchanged or newer.
   * @returns a function that stops watching
   */
  async watch(id: string, watcher: JobWatcher): Promise<() => void> {
    await this.listener.start();
    let set = this.watchers.get(id);
    if (!set) {
      set = new Set();
      this.watchers.set(id, set);
    }
    set.add(watcher);
    this.changed(id);
    return () => {
      const s = this.watchers.get(id);
      if (!s) return;
      s.delete(watcher);
      if (s.size === 0) this.watchers.delete(id);
    };
  }

  /** Watchers in all (for tests and metrics: 0 once every stream has closed). */
  get size(): number {
    let n = 0;
    for (const s of this.watchers.values()) n += s.size;
    return n;
  }

  private changed(id: string): void {
    if (!this.watchers.has(id)) return;
    const inFlight = this.reading.get(id);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    const state = { again: false };
    this.reading.set(id, state);
    void (async () => {
      do {
        state.again = false;
        const row = await jobsRepo.jobViewById(this.db, id).catch(() => null);
        if (row)
          for (const w of this.watchers.get(id) ?? []) {
            try {
              w(row);
            } catch {
              // One watcher's failure (a stream gone) is its own; the others still get the row.
            }
          }
      } while (state.again && this.watchers.has(id));
      this.reading.delete(id);
    })();
  }

  async close(): Promise<void> {
    this.watchers.clear();
    this.views.setLive(false);
    await this.listener.close();
  }
}
