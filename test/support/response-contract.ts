/**
 * Holds every response a test app sends to the OpenAPI document (openapi.yaml), problem+json
 * included: the status must be documented for its route (or covered by `default`), the content
 * type must be one the document lists, and a JSON body must match the schema given there. What
 * fails is recorded, not thrown (a hook that threw would change the response under test); the test
 * app fails its suite at close with the list (test/support/app.ts).
 *
 * Skipped, by design: requests no route matched (their 404 is not an operation of the API), and
 * routes the document does not list (Swagger UI, the dashboard's files, the queue board).
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse } from 'yaml';

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: object }> }>;
}
type Document = { paths: Record<string, Record<string, Operation>>; components: object };

const DOCUMENT: Document = parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'openapi.yaml'), 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// The document as one schema: "#/components/schemas/X" in any response schema resolves inside it.
ajv.addSchema({ $id: 'openapi', components: DOCUMENT.components, paths: DOCUMENT.paths });
const validators = new Map<string, ValidateFunction>();

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

function validatorFor(route: string, method: string, status: string, media: string): ValidateFunction {
  const ref = `openapi#/${pointer('paths', route, method, 'responses', status, 'content', media, 'schema')}`;
  let v = validators.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: ref });
    validators.set(ref, v);
  }
  return v;
}

const JSON_MEDIA = /^application\/(.+\+)?json$/;

/** What `request`'s response breaks of the document; empty when it conforms or is not covered. */
export function responseViolations(request: FastifyRequest, reply: FastifyReply, payload: unknown): string[] {
  const url = request.routeOptions.url;
  if (!url) return [];
  const route = url.replace(/:(\w+)/g, '{$1}');
  const method = request.method.toLowerCase();
  const op = DOCUMENT.paths[route]?.[method];
  if (!op) return [];
  const where = `${request.method} ${url} -> ${reply.statusCode}`;
  const status = String(reply.statusCode);
  const responses = op.responses ?? {};
  const key = [status, `${status[0]}XX`, 'default'].find((k) => k in responses);
  if (!key) return [`${where}: status not documented (documented: ${Object.keys(responses).join(', ')})`];
  const content = responses[key].content;
  const type = String(reply.getHeader('content-type') ?? '');
  const media = type.split(';')[0].trim();
  const empty = payload === undefined || payload === null || payload === '' || (Buffer.isBuffer(payload) && payload.length === 0);
  if (!content) return empty ? [] : [`${where}: the document declares no body, the service sent ${type || 'one'}`];
  if (!(media in content)) return [`${where}: content type ${type || '(none)'} not documented (documented: ${Object.keys(content).join(', ')})`];
  if (!JSON_MEDIA.test(media) || typeof payload !== 'string') return [];
  const validate = validatorFor(route, method, key, media);
  if (validate(JSON.parse(payload))) return [];
  return [`${where} (${media}): ${ajv.errorsText(validate.errors)}; body ${payload.slice(0, 300)}`];
}

/** Records the responses of `app` that break the document into `into`. Call before `app.ready()`. */
export function checkResponses(app: FastifyInstance, into: string[]): void {
  app.addHook('onSend', async (request, reply, payload) => {
    into.push(...responseViolations(request, reply, payload));
    return payload;
  });
}
