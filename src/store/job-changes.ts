/**
 * Notifications of job row changes: the triggers of migrations 0006 and 0008 send the job's id on
 * channel `job_changed` at every commit that changes what a job view shows or deletes the row, from
 * any process, and `*` after a TRUNCATE. One connection LISTENs for a whole API process.
 * Notifications sent while it is down are lost, so `onDisconnect` runs when it drops and `onResync`
 * after every (re)connection: the caller re-reads what it watches and forgets what it cached.
 */
import { Client } from 'pg';

export const JOB_CHANGED_CHANNEL = 'job_changed';
const RETRY_MS = [100, 500, 2000, 5000];

export interface JobChangeHandlers {
  /** A job's row changed (committed). */
  onChange(jobId: string): void;
  /** Connected (again), or every row may have changed (TRUNCATE): changes may have been missed. */
  onResync(): void;
  /** The connection dropped: changes are not seen until the next `onResync`. */
  onDisconnect?(): void;
}

/** The payload of a TRUNCATE's notification. */
const EVERY_JOB = '*';

export class JobChangeListener {
  private client?: Client;
  private closed = false;
  private retries = 0;
  private timer?: NodeJS.Timeout;
  private connecting?: Promise<void>;

  constructor(
    private readonly databaseUrl: string,
    private readonly handlers: JobChangeHandlers,
  ) {}

  /** Connects (once; later calls wait for the same connection attempt). */
  start(): Promise<void> {
    this.connecting ??= this.connect();
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.databaseUrl });
    client.on('notification', (n) => {
      if (n.channel !== JOB_CHANGED_CHANNEL || !n.payload) return;
      if (n.payload === EVERY_JOB) this.handlers.onResync();
      else this.handlers.onChange(n.payload);
    });
    // A dropped connection (server restart, network) reconnects with backoff; the caller resyncs.
    client.on('error', () => this.reconnect(client));
    client.on('end', () => this.reconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${JOB_CHANGED_CHANNEL}`);
    } catch {
      this.reconnect(client);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retries = 0;
    this.handlers.onResync();
  }

  private reconnect(client: Client): void {
    if (this.closed || (this.client && this.client !== client) || this.timer) return;
    this.client = undefined;
    this.handlers.onDisconnect?.();
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    const wait = RETRY_MS[Math.min(this.retries++, RETRY_MS.length - 1)];
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connecting = this.connect();
    }, wait);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
