/**
 * A bounded cache whose values are pinned: a job holds what it got until the job ends, so
 * evicting an entry (another job on another queue loaded more models) never disposes a value that
 * is still in use; it is disposed when its last pin is released. ("Pin", not "lease": a lease is
 * a run's hold on its job row, store/jobs.ts.)
 */

/** The pins one holder (a job, a composition runtime) took; released together. */
export class PinScope {
  private readonly releases: (() => void)[] = [];

  add(release: () => void): void {
    this.releases.push(release);
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

interface Entry<V> {
  readonly value: Promise<V>;
  pins: number;
  evicted: boolean;
}

export class PinnedCache<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    private readonly max: number,
    private readonly dispose: (value: V) => void,
  ) {}

  /** The value under `key`, loaded once; not disposed before `scope` is released. */
  get(key: string, load: () => Promise<V>, scope: PinScope): Promise<V> {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      const created: Entry<V> = { value: load(), pins: 0, evicted: false };
      // A failed load is not cached: the next caller tries again.
      created.value.catch(() => this.entries.get(key) === created && this.entries.delete(key));
      entry = created;
    }
    this.entries.set(key, entry);
    const held = entry;
    held.pins++;
    let released = false;
    scope.add(() => {
      if (released) return;
      released = true;
      held.pins--;
      if (held.evicted && held.pins === 0) this.free(held);
    });
    this.evict();
    return held.value;
  }

  /** Values cached now (evicted ones still pinned are not counted). */
  get size(): number {
    return this.entries.size;
  }

  private evict(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.max) return;
      this.entries.delete(key);
      entry.evicted = true;
      if (entry.pins === 0) this.free(entry);
    }
  }

  private free(entry: Entry<V>): void {
    entry.value.then((v) => this.dispose(v)).catch(() => undefined);
  }
}
