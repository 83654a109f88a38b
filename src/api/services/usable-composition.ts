/**
 * A composition that a request uses (predict, evaluate, replace from). Its members are fixed when
 * it is made, so it can be used while its compose job scores it. Not when that job failed or was
 * cancelled: the composition then shows as failed, and an answer from it would be one its own
 * status disowns (make it again). Nor while a continuous-learning compose job runs: it may still
 * widen the modules, so the answer would come from modules the composition does not end up with.
 */
import { ConflictError } from '../../errors';
import { findComposition, type Composition } from '../../store/compositions';
import { jobOf } from '../../store/jobs';
import type { AppDeps } from '../deps';

/**
 * @param use what the request would do with it, for the 409's detail ("predicted with")
 * @throws NotFoundError (404) when the owner cannot see it, ConflictError (409) when it is unusable
 */
export async function findUsableComposition(deps: AppDeps, id: string, ownerId: string | null, use: string): Promise<Composition> {
  const composition = await findComposition(deps.db, id, ownerId);
  if (composition.finishedAt) return composition;
  const job = await jobOf(deps.db, id, 'compose');
  if (job?.state === 'failed' || job?.state === 'cancelled') {
    throw new ConflictError(`composition ${id} ${job.state} (job ${job.id}), so it cannot be ${use}; make it again`);
  }
  if (composition.options.continuousLearning && (job?.state === 'queued' || job?.state === 'active')) {
    throw new ConflictError(
      `composition ${id} is still being made with continuous learning (job ${job.id}), which may change its modules; it can be ${use} once that job completes`,
    );
  }
  return composition;
}
