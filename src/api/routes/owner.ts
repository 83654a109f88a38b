import type { FastifyRequest } from 'fastify';

/** The API key that owns what this request creates and may read; null when keys are not configured. */
export function ownerOf(request: FastifyRequest): string | null {
  return request.ownerId ?? null;
}
