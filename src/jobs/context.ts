/** What a processor gets: its job's data, the stores, and a progress reporter. */
import type { Prisma } from '../store/db';
import type { PrismaClient } from '../store/db';
import type { BlobStore } from '../store/blobs';
import type { Config } from '../config/env';
import type { JobDataMap, JobType } from './queues';
import type { PinScope } from './pinned-cache';

export interface JobContext<T extends JobType> {
  readonly jobId: string;
  readonly data: JobDataMap[T];
  readonly db: PrismaClient;
  readonly blobs: BlobStore;
  readonly config: Config;
  /** Cached models and compositions the job uses stay loaded until it ends. */
  readonly pins: PinScope;
  /**
   * Writes progress (0..100) and stage through to the job row and BullMQ.
   * @throws JobCancelledError when a cancellation was requested: processors just let it propagate.
   */
  progress(percent: number, stage: string): Promise<void>;
  /**
   * Writes the job's results in one transaction that first confirms this run still holds the job:
   * a run that lost it to another worker records nothing (the transaction rolls back).
   */
  record<R>(write: (tx: Prisma.TransactionClient) => Promise<R>): Promise<R>;
}

export type Processor<T extends JobType> = (ctx: JobContext<T>) => Promise<Prisma.InputJsonValue>;
