/**
 * Lookups a request makes side by side: two rows read at once cost one round trip of waiting
 * instead of two (POST /evaluations reads a model or composition and a dataset on every call).
 */

/**
 * Both values; if either lookup fails, the first one's error in argument order, so a request that
 * names two missing rows always reports the same one (as reading them one after the other did).
 */
export async function bothInOrder<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}
