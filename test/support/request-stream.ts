/** A steady stream of requests (a few lanes, round-robin over kinds) recording every answer's status. */
import { setTimeout as sleep } from 'node:timers/promises';

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
