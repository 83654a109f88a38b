/**
 * The UI's only way to the service: the public HTTP API, with the key the user typed in (kept in
 * sessionStorage, sent as `Authorization: Bearer`). Problems (RFC 9457) become ApiError with the
 * API's own title and detail, which the pages show as they are.
 */
const KEY = 'cnn-modules-key';
/** Bull Board's page loads cannot carry the header; the API accepts this cookie on /queues only. */
const BOARD_COOKIE = 'cnn_modules_key';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(detail || title);
  }
}

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
  const value = key ? encodeURIComponent(key) : '';
  // biome-ignore lint/suspicious/noDocumentCookie: one cookie, set synchronously before a link to /queues is followed
  document.cookie = `${BOARD_COOKIE}=${value}; path=/queues; SameSite=Strict${key ? '' : '; max-age=0'}`;
  window.dispatchEvent(new Event('api-key'));
}

/** Called when the API answers 401: the shell asks for a key. */
let onUnauthorized: (() => void) | undefined;
export function whenUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

async function problemOf(res: Response): Promise<ApiError> {
  let title = res.statusText;
  let detail = '';
  try {
    const body = (await res.json()) as { title?: string; detail?: string };
    title = body.title ?? title;
    detail = body.detail ?? '';
  } catch {
    // not JSON: the status says enough
  }
  if (res.status === 401) onUnauthorized?.();
  return new ApiError(res.status, title, detail);
}

export async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  if (!res.ok) throw await problemOf(res);
  return res;
}

export async function get<T>(path: string): Promise<T> {
  return (await (await request('GET', path)).json()) as T;
}

export async function send<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await request(method, path, body);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor?: string;
}

export function withQuery(path: string, query: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

/** Every page of a list (for the few lists a chart needs whole, e.g. one decomposition's modules). */
export async function all<T>(path: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await get<Page<T>>(withQuery(path, { limit: 200, cursor }));
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
export const FINISHED: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface Job {
  id: string;
  type: string;
  state: JobState;
  progress: number;
  stage?: string;
  attempts: number;
  cancelRequested: boolean;
  resourceId?: string;
  result?: unknown;
  error?: { title: string; detail: string };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a job until it finishes, reporting each state seen. */
export async function untilFinished(jobId: string, onJob?: (job: Job) => void, everyMs = 400): Promise<Job> {
  for (;;) {
    const job = await get<Job>(`/jobs/${encodeURIComponent(jobId)}`);
    onJob?.(job);
    if (FINISHED.includes(job.state)) return job;
    await sleep(everyMs);
  }
}

export interface Model {
  id: string;
  name: string;
  format: string;
  status: string;
  inputShape: number[] | null;
  numClasses: number | null;
  params: number | null;
  layers: { name: string; type: string; outputShape: (number | null)[] }[] | null;
  preprocessing: { scale: number; mean?: number[]; std?: number[] };
  classNames: string[] | null;
  sizeBytes: number;
  createdAt: string;
  jobId?: string;
}

export interface Dataset {
  id: string;
  name: string;
  format: string;
  count: number;
  shape: number[];
  dtype: string;
  numClasses: number;
  classCounts: number[];
  classNames?: string[];
  createdAt: string;
}

export interface EvaluationResult {
  count: number;
  top1: number;
  top5: number;
  perClass: number[];
  /** Images per class (results recorded before it was kept have none). */
  classCounts?: number[];
  confusion: number[][];
  labels?: string[];
  baseline?: { top1: number; top5: number; perClass?: number[]; confusion?: number[][] };
}

export interface Evaluation {
  id: string;
  status: string;
  modelId?: string;
  compositionId?: string;
  datasetId: string;
  jobId?: string;
  result?: EvaluationResult;
  error?: { title: string; detail: string };
  createdAt: string;
}

export interface TopK {
  top1: number;
  top5: number;
  perClass?: number[];
  classCounts?: number[];
  confusion?: number[][];
}

export interface ModuleSummary {
  id: string;
  classIndex: number;
  className: string;
  keptFraction: number;
  flopsFraction: number;
  paramsFraction: number;
}

export interface Decomposition {
  id: string;
  status: string;
  modelId: string;
  datasetId: string;
  evalDatasetId?: string;
  classes?: number[];
  options: Record<string, unknown>;
  jobId?: string;
  modules: ModuleSummary[];
  metrics?: {
    count?: number;
    model?: TopK;
    composed?: TopK;
    agreement?: number;
    jaccard: { meanPairwise: number; meanVsModel: number; pairwise?: number[][]; pairsSampled?: number };
    energy: Record<string, unknown> & { seconds: number; kWh: number; co2eKg: number };
    keptFraction?: number;
    /** Set when the decomposition has too many modules for matrices (they are then not recorded). */
    matricesOmitted?: string;
  };
  error?: { title: string; detail: string };
  createdAt: string;
  finishedAt?: string;
}

export interface Module {
  id: string;
  decompositionId: string;
  modelId: string;
  classIndex: number;
  className: string;
  keptFraction: number;
  perLayer: { layer: string; units: number; kept: number }[];
  oneVsRest?: { accuracy: number };
  flopsFraction: number;
  paramsFraction: number;
  parentModuleId?: string;
  createdAt: string;
}

export interface Composition {
  id: string;
  status: string;
  labels: string[];
  modules: { moduleId: string; label: string }[];
  baseCompositionId?: string;
  evalDatasetId?: string;
  jobId?: string;
  metrics?: Partial<EvaluationResult> & {
    energy: Record<string, unknown>;
    /** Set above 100 labels: the confusion matrices are then not recorded. */
    matricesOmitted?: string;
  };
  error?: { title: string; detail: string };
  createdAt: string;
  finishedAt?: string;
}

export interface Prediction {
  label: string;
  classIndex: number;
  probability: number;
  margin: number;
}

export interface Accepted {
  id: string;
  jobId: string;
}
