/**
 * The checker every test app runs (test/support/response-contract.ts) finds what breaks
 * openapi.yaml: an undocumented content type, a body off its schema, a problem sent as plain JSON.
 * It is given the request and reply facts a fastify hook sees.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { responseViolations } from '../support/response-contract';

const JOB = {
  id: 'j',
  type: 'evaluate',
  state: 'completed',
  progress: 100,
  attempts: 1,
  cancelRequested: false,
  createdAt: '2026-12-06T00:00:00.000Z',
};

function check(method: string, url: string | undefined, status: number, contentType: string | undefined, body: unknown): string[] {
  const request = { method, routeOptions: { url } } as unknown as FastifyRequest;
  const reply = { statusCode: status, getHeader: () => contentType } as unknown as FastifyReply;
  return responseViolations(request, reply, typeof body === 'string' || body === undefined ? body : JSON.stringify(body));
}

describe('the response contract checker', () => {
  it('passes responses the document describes, problem+json included', () => {
    expect(check('GET', '/jobs/:id', 200, 'application/json; charset=utf-8', JOB)).toEqual([]);
    const problem = { type: 'about:blank', title: 'Not Found', status: 404, detail: 'job x not found' };
    expect(check('GET', '/jobs/:id', 404, 'application/problem+json; charset=utf-8', problem)).toEqual([]);
    // A status the route does not list is covered by `default`: a problem document.
    expect(check('GET', '/jobs/:id', 429, 'application/problem+json', { ...problem, status: 429, title: 'Too Many Requests' })).toEqual([]);
    // Routes outside the document (Swagger UI, the dashboard's files) and unmatched URLs are not its business.
    expect(check('GET', '/ui/*', 200, 'text/html', '<html>')).toEqual([]);
    expect(check('GET', undefined, 404, 'application/json', {})).toEqual([]);
  });

  it('reports a body off its schema, an undocumented content type, and a problem sent as plain JSON', () => {
    const { state: _, ...noState } = JOB;
    expect(check('GET', '/jobs/:id', 200, 'application/json', noState)).toEqual([
      expect.stringMatching(/^GET \/jobs\/:id -> 200 .*must have required property 'state'/),
    ]);
    expect(check('GET', '/jobs/:id', 200, 'text/plain', 'ok')).toEqual([expect.stringMatching(/content type text\/plain not documented/)]);
    const problem = { type: 'about:blank', title: 'Not Found', status: 404, detail: 'x' };
    expect(check('GET', '/jobs/:id', 404, 'application/json', problem)).toEqual([
      expect.stringMatching(/content type application\/json not documented \(documented: application\/problem\+json\)/),
    ]);
    expect(check('GET', '/jobs/:id', 404, 'application/problem+json', { title: 'Not Found' })).toEqual([expect.stringMatching(/must have required property/)]);
  });
});
