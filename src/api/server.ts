/** Listens (graceful close is wired by the entry point through src/shutdown.ts). */
import type { FastifyInstance } from 'fastify';

export async function listen(app: FastifyInstance, port: number, host: string): Promise<string> {
  return app.listen({ port, host });
}
