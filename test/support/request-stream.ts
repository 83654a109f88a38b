/** A steady stream of requests (a few lanes, round-robin over kinds) recording every answer's status. */
import { setTimeout as sleep } from 'node:timers/promises';
import type request from 'supertest';

export interface Sent {
  readonly what: string;
  readonly status: number;
}

export interface RequestStream {
  /** Answers so far, in arrival order. */
  readonly sent: Sent[];
  /** Stops sending and waits for the requests in flight. */
  stop(): Promise<void>;
}

/** @param kinds per name, a request; it gets the lane's iteration number */
export function requestStream(kinds: Record<string, (i: number) => Promise<{ status: number }>>, lanes = 2, pauseMs = 40): RequestStream {
  const names = Object.keys(kinds);
  const sent: Sent[] = [];
  let streaming = true;
  const lane = async (offset: number) => {
    for (let i = 0; streaming; i++) {
      const what = names[(i + offset) % names.length];
      const res = await kinds[what](i);
      sent.push({ what, status: res.status });
      await sleep(pauseMs);
    }
  };
  const running = Array.from({ length: lanes }, (_, l) => lane(l * 2));
  return {
    sent,
    stop: async () => {
      streaming = false;
      await Promise.all(running);
    },
  };
}

export interface EvaluationStream extends RequestStream {
  /** Evaluations answered 202, before and during the stream. */
  readonly accepted: { id: string; jobId: string }[];
}

/**
 * The outage tests' traffic: /ready, /models, /metrics, new evaluations of the model on the dataset,
 * and reads of the accepted ones. Three evaluations are accepted before the stream starts.
 */
export async function evaluationStream(api: ReturnType<typeof request>, modelId: string, datasetId: string): Promise<EvaluationStream> {
  const accepted: { id: string; jobId: string }[] = [];
  const evaluate = async () => {
    const res = await api.post('/evaluations').send({ modelId, datasetId, limit: 500 });
    if (res.status === 202) accepted.push({ id: res.body.id, jobId: res.body.jobId });
    return res;
  };
  for (let i = 0; i < 3; i++) {
    const res = await evaluate();
    if (res.status !== 202) throw new Error(`an evaluation before the stream answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const stream = requestStream({
    ready: () => api.get('/ready'),
    models: () => api.get('/models'),
    evaluate,
    evaluation: (i) => api.get(`/evaluations/${accepted[i % accepted.length].id}`),
    metrics: () => api.get('/metrics'),
  });
  return { ...stream, accepted };
}
