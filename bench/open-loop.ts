/**
 * An open-loop load for `--only api`: requests start on a fixed schedule (one every 1/rate s)
 * whether or not the earlier ones have answered, and each latency counts from its scheduled start,
 * so a slow server cannot slow the load down and hide its own queueing (coordinated omission).
 *
 * autocannon's `overallRate` is a different load: each connection sends its share of the second
 * back to back, then waits for the next second (lib/httpClient.js, `reqsMadeThisSecond`), so "200
 * requests/s over 20 connections" arrives as 20 concurrent closed loops at the top of each second.
 * The bench reports both.
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface OpenLoopOptions {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Requests per second. */
  readonly rate: number;
  readonly seconds: number;
}

export interface LoadFigures {
  requestsPerSecond: number;
  requests: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function openLoop(opts: OpenLoopOptions): Promise<LoadFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const url = new URL(opts.url);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const send = (scheduled: number) =>
    new Promise<void>((resolve) => {
      const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(performance.now() - scheduled);
          if (!res.statusCode || res.statusCode < 200 || res.statusCode > 299) non2xx++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(opts.body);
    });

  const interval = 1000 / opts.rate;
  const total = Math.round(opts.rate * opts.seconds);
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + i * interval;
    const wait = scheduled - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(send(scheduled));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  const ms = (v: number) => Math.round(v * 10) / 10;
  return {
    requestsPerSecond: Math.round(latencies.length / elapsed),
    requests: latencies.length,
    p50: ms(percentile(sorted, 50)),
    p90: ms(percentile(sorted, 90)),
    p99: ms(percentile(sorted, 99)),
    max: ms(sorted[sorted.length - 1] ?? 0),
    non2xx,
    errors,
  };
}
