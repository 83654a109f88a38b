/** The store room's own errors (the catalog of HTTP problems is src/errors.ts). */

/** A run's write named a lease (store/jobs.ts) that another run of the job has replaced. */
export class LeaseLostError extends Error {
  constructor(readonly lease: { readonly jobId: string; readonly leaseId: string }) {
    super(`job ${lease.jobId}: another run has taken it over`);
    this.name = 'LeaseLostError';
  }
}
