/** Shared pieces of every page: links, charts, paged lists, job progress, problems, drop zones. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { TopLevelSpec } from 'vega-lite';
import { ApiError, FINISHED, get, request, send, untilFinished, withQuery, type Job, type Page } from './api';

export const BASE = '/ui';

export function navigate(path: string): void {
  history.pushState(null, '', path);
  window.dispatchEvent(new Event('navigate'));
}

export function Link({ to, children, ...rest }: { to: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page'; 'aria-label'?: string }) {
  return (
    <a
      href={to}
      {...rest}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

export const pct = (v: number | undefined, digits = 2) => (v === undefined ? '–' : `${(v * 100).toFixed(digits)} %`);
export const when = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : '–');
export const short = (id: string) => id.slice(0, 8);

/** A problem from the API, shown as the API worded it. */
export function Problem({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : undefined;
  return (
    <p class="problem" role="alert">
      <strong>{e ? `${e.status} ${e.title}` : 'Error'}</strong>
      {e ? (e.detail ? `: ${e.detail}` : '') : `: ${String((error as Error).message ?? error)}`}
    </p>
  );
}

/** Runs a loader when its deps change; reload() runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: unknown; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: unknown }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data }),
      (error) => live && setState({ error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

/** A cursor-paged list: one page of `limit` rows at a time, more on request; never the whole table. */
export function usePaged<T>(path: string, query: Record<string, string | number | undefined>, limit = 50) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const key = JSON.stringify(query);
  const load = useCallback(
    async (after: string | undefined, append: boolean) => {
      setLoading(true);
      try {
        const page = await get<Page<T>>(withQuery(path, { ...query, limit, cursor: after }));
        setItems((old) => (append ? [...old, ...page.items] : page.items));
        setCursor(page.nextCursor);
        setError(undefined);
      } catch (e) {
        setError(e);
      } finally {
        setLoading(false);
      }
    },
    [path, key, limit],
  );
  useEffect(() => {
    void load(undefined, false);
  }, [load, tick]);
  return {
    items,
    error,
    loading,
    more: cursor ? () => load(cursor, true) : undefined,
    reload: useCallback(() => setTick((t) => t + 1), []),
  };
}

/** A column: its header and what a row shows in it. */
export type Column<T> = readonly [string, (row: T) => ComponentChildren];

export function Table<T extends object>({
  label,
  rows,
  columns,
  rowClass,
}: {
  label: string;
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowClass?: (row: T) => string;
}) {
  return (
    <table aria-label={label}>
      <thead>
        <tr>
          {columns.map(([header]) => (
            <th key={header}>{header}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, i) => (
          <tr key={'id' in row ? String(row.id) : i} class={rowClass?.(row)}>
            {columns.map(([header, cell]) => (
              <td key={header}>{cell(row)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A cursor-paged list as a table: its problem, one page of rows, and the button for the next. */
export function PagedTable<T extends object>({
  label,
  list,
  columns,
  rowClass,
}: {
  label: string;
  list: ReturnType<typeof usePaged<T>>;
  columns: readonly Column<T>[];
  rowClass?: (row: T) => string;
}) {
  return (
    <>
      <Problem error={list.error} />
      <Table label={label} rows={list.items} columns={columns} rowClass={rowClass} />
      <MoreButton more={list.more} loading={list.loading} shown={list.items.length} />
    </>
  );
}

export function MoreButton({ more, loading, shown }: { more?: () => void; loading: boolean; shown: number }) {
  return (
    <p class="pager">
      {shown} shown{' '}
      {more && (
        <button type="button" onClick={more} disabled={loading}>
          {loading ? 'Loading…' : 'Load more'}
        </button>
      )}
    </p>
  );
}

/** A Vega-Lite chart rendered as SVG (so its cells and numbers are in the page, not in a bitmap). */
export function Chart({ spec, label, testId }: { spec: TopLevelSpec; label: string; testId?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (!ref.current) return;
    let view: { finalize(): void } | undefined;
    let live = true;
    // Vega is most of the bundle: it loads as its own chunk (preloaded by the page), so the API
    // requests of a page start before it has been parsed.
    import('vega-embed')
      .then(({ default: embed }) => (live && ref.current ? embed(ref.current, spec, { renderer: 'svg', actions: false }) : undefined))
      .then(
        (r) => {
          if (!r) return;
          if (live) view = r.view;
          else r.view.finalize();
          ref.current?.setAttribute('data-rendered', 'true');
        },
        (e) => setError(e),
      );
    return () => {
      live = false;
      view?.finalize();
    };
  }, [spec]);
  return (
    <figure class="chart" aria-label={label} data-testid={testId}>
      <div ref={ref} />
      {error ? <Problem error={error} /> : null}
    </figure>
  );
}

/** A job's live progress: bar, stage, ETA and a cancel button; calls onDone once it finishes. */
export function JobProgress({ jobId, onDone }: { jobId: string; onDone?: (job: Job) => void }) {
  const [job, setJob] = useState<Job>();
  const [error, setError] = useState<unknown>();
  const done = useRef(onDone);
  done.current = onDone;
  useEffect(() => {
    let live = true;
    untilFinished(jobId, (j) => live && setJob(j)).then(
      (j) => live && done.current?.(j),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [jobId]);
  if (error) return <Problem error={error} />;
  if (!job) return <p>Loading job…</p>;
  const started = job.startedAt ? Date.parse(job.startedAt) : undefined;
  const elapsed = started ? (Date.now() - started) / 1000 : 0;
  const eta = job.state === 'active' && job.progress > 0 && job.progress < 100 ? (elapsed * (100 - job.progress)) / job.progress : undefined;
  const finished = FINISHED.includes(job.state);
  return (
    <div class="job-progress" data-testid="job-progress">
      <label>
        Job <Link to={`${BASE}/jobs?id=${job.id}`}>{short(job.id)}</Link> ({job.type}): <span data-testid="job-state">{job.state}</span>
        {job.stage ? `, ${job.stage}` : ''}
        <progress max={100} value={job.progress} aria-valuenow={job.progress} data-testid="progress" />
        <span data-testid="progress-text">{job.progress} %</span>
        {eta !== undefined ? <span> · about {Math.ceil(eta)} s left</span> : null}
      </label>
      {!finished && (
        <button type="button" onClick={() => send('DELETE', `/jobs/${job.id}`).catch(setError)} disabled={job.cancelRequested}>
          {job.cancelRequested ? 'Cancelling…' : 'Cancel'}
        </button>
      )}
      {job.error ? <p class="problem" role="alert">{`${job.error.title}: ${job.error.detail}`}</p> : null}
    </div>
  );
}

/** A file input that also takes files dropped on it. */
export function DropZone({
  label,
  multiple,
  accept,
  onFiles,
  files,
}: {
  label: string;
  multiple?: boolean;
  accept?: string;
  onFiles: (f: File[]) => void;
  files: File[];
}) {
  const [over, setOver] = useState(false);
  return (
    <section
      aria-label={label}
      class={`drop ${over ? 'over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        onFiles([...(e.dataTransfer?.files ?? [])]);
      }}
    >
      <label>
        {label} (drop here or choose)
        <input type="file" multiple={multiple} accept={accept} onChange={(e) => onFiles([...(e.currentTarget.files ?? [])])} />
      </label>
      {files.length > 0 && <span class="files">{files.map((f) => f.name).join(', ')}</span>}
    </section>
  );
}

/** A labelled select of fixed options; `options` are [value, text] pairs. */
export function Choice({
  label,
  value,
  onChange,
  options,
  name,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  options: readonly (readonly [string, string])[];
  name?: string;
}) {
  return (
    <label>
      {label}
      <select name={name} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {options.map(([v, text]) => (
          <option value={v} key={v}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function Facts({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

/** Downloads a module's standalone export, waiting for its build job when it is not built yet. */
export async function downloadExport(moduleId: string, onJob: (job: Job) => void): Promise<void> {
  for (;;) {
    const res = await request('GET', `/modules/${moduleId}/export`);
    if (res.status === 202) {
      const { jobId } = (await res.json()) as { jobId: string };
      const job = await untilFinished(jobId, onJob);
      if (job.state !== 'completed') throw new Error(`the export job ${job.state}: ${job.error?.detail ?? ''}`);
      continue;
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `module-${moduleId}.zip`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    return;
  }
}
