/**
 * Decompositions: the request form (every option of POST /decompositions, its defaults and bounds
 * read from the served OpenAPI document, so the form never drifts from the API), the list, and a
 * decomposition's page: live progress, then accuracy, confusion, overlap and kept units.
 */
import { useMemo, useState } from 'preact/hooks';
import { all, get, send, withQuery, type Decomposition, type Model, type Module } from '../api';
import { jaccardSpec, keptSpec } from '../specs';
import { BASE, Chart, type Column, Facts, JobProgress, Link, PagedTable, Problem, Section, navigate, pct, short, useLoad, usePaged, when } from '../ui';
import { Confusions, PerClass } from './evaluations';
import { DatasetSelect } from './datasets';
import { ModulesTable } from './modules';

interface Schema {
  type?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
}

interface OpenApi {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>>;
}

/** The options object of POST /decompositions as the served document describes it. */
async function optionsSchema(): Promise<Schema> {
  const doc = await get<OpenApi>('/docs/json');
  const body = doc.paths['/decompositions']?.post?.requestBody?.content['application/json']?.schema;
  const options = body?.properties?.options;
  if (!options?.properties) throw new Error('the OpenAPI document has no options for POST /decompositions');
  return options;
}

const choices = (s: Schema): string[] | undefined => {
  const list = s.anyOf?.map((a) => a.const ?? a.enum?.[0]) ?? s.enum;
  return list?.every((v) => typeof v === 'string') ? (list as string[]) : undefined;
};

const bounds = (s: Schema): string => {
  const lo = typeof s.exclusiveMinimum === 'number' ? `> ${s.exclusiveMinimum}` : s.minimum !== undefined ? `≥ ${s.minimum}` : '';
  const hi = typeof s.exclusiveMaximum === 'number' ? `< ${s.exclusiveMaximum}` : s.maximum !== undefined ? `≤ ${s.maximum}` : '';
  return [lo, hi].filter(Boolean).join(', ');
};

type Values = Record<string, string | boolean>;

/** One input per option: text for numbers (the API, not the browser, judges them), select for choices, checkbox for flags. */
function OptionFields({ schema, values, set, prefix }: { schema: Schema; values: Values; set: (k: string, v: string | boolean) => void; prefix: string }) {
  return (
    <div class="options">
      {Object.entries(schema.properties ?? {})
        .filter(([, s]) => !s.properties)
        .map(([name, s]) => {
          const key = `${prefix}${name}`;
          const list = choices(s);
          const help = [s.description, bounds(s), s.default !== undefined ? `default ${String(s.default)}` : ''].filter(Boolean).join('; ');
          if (s.type === 'boolean')
            return (
              <label key={key} title={help}>
                <input type="checkbox" name={key} checked={values[key] === true} onChange={(e) => set(key, e.currentTarget.checked)} /> {name}
              </label>
            );
          if (list)
            return (
              <label key={key} title={help}>
                {name}
                <select name={key} value={String(values[key] ?? '')} onChange={(e) => set(key, e.currentTarget.value)}>
                  {list.map((v) => (
                    <option value={v} key={v}>
                      {v}
                    </option>
                  ))}
                </select>
              </label>
            );
          return (
            <label key={key} title={help}>
              {name}
              <input name={key} value={String(values[key] ?? '')} onInput={(e) => set(key, e.currentTarget.value)} inputMode="decimal" />
              <small>{help}</small>
            </label>
          );
        })}
    </div>
  );
}

function defaults(schema: Schema, prefix: string): Values {
  const out: Values = {};
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    if (s.properties) continue;
    if (s.default !== undefined) out[`${prefix}${name}`] = typeof s.default === 'boolean' ? s.default : String(s.default);
    else if (s.type === 'boolean') out[`${prefix}${name}`] = false;
  }
  return out;
}

/** Form values into the request's options: numbers as numbers, empty fields left out (the API's defaults apply). */
function collect(schema: Schema, values: Values, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    const v = values[`${prefix}${name}`];
    if (s.properties || v === undefined || v === '') continue;
    out[name] = s.type === 'integer' || s.type === 'number' ? (Number.isNaN(Number(v)) ? v : Number(v)) : v;
  }
  return out;
}

function DecompositionForm({ modelId: initialModel }: { modelId?: string }) {
  const schema = useLoad(optionsSchema, []);
  const models = useLoad(() => get<{ items: Model[] }>('/models?limit=200'), []);
  const [modelId, setModelId] = useState(initialModel ?? '');
  const [datasetId, setDatasetId] = useState<string[]>([]);
  const [evalDatasetId, setEvalDatasetId] = useState<string[]>([]);
  const [classes, setClasses] = useState('');
  const [compact, setCompact] = useState(false);
  const [values, setValues] = useState<Values | undefined>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const s = schema.data;
  const compactSchema = s?.properties?.compact;
  const shown = values ?? (s ? { ...defaults(s, ''), ...(compactSchema ? defaults(compactSchema, 'compact.') : {}) } : {});
  const set = (k: string, v: string | boolean) => setValues({ ...shown, [k]: v });

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!s) return;
    setError(undefined);
    setBusy(true);
    try {
      const options = { ...collect(s, shown, ''), ...(compact && compactSchema ? { compact: collect(compactSchema, shown, 'compact.') } : {}) };
      const cls = classes.trim()
        ? classes
            .split(/[\s,]+/)
            .filter(Boolean)
            .map(Number)
        : undefined;
      const res = await send<{ id: string }>('POST', '/decompositions', {
        modelId,
        datasetId: datasetId[0] ?? '',
        ...(evalDatasetId[0] ? { evalDatasetId: evalDatasetId[0] } : {}),
        ...(cls ? { classes: cls } : {}),
        options,
      });
      navigate(`${BASE}/decompositions/${res.body.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} noValidate aria-label="Decompose a model">
      <h2>Decompose a model</h2>
      <Problem error={schema.error ?? models.error} />
      <div class="row">
        <label>
          Model
          <select name="modelId" value={modelId} onChange={(e) => setModelId(e.currentTarget.value)}>
            <option value="">choose…</option>
            {models.data?.items.map((m) => (
              <option value={m.id} key={m.id}>
                {m.name} ({m.numClasses ?? '?'} classes)
              </option>
            ))}
          </select>
        </label>
        <DatasetSelect label="Samples from" name="datasetId" value={datasetId} onChange={setDatasetId} />
        <DatasetSelect label="Metrics on" name="evalDatasetId" value={evalDatasetId} onChange={setEvalDatasetId} empty="none" />
        <label>
          Classes (empty: all)
          <input name="classes" value={classes} onInput={(e) => setClasses(e.currentTarget.value)} placeholder="e.g. 0, 3, 5" />
        </label>
      </div>
      {s && (
        <fieldset>
          <legend>Options</legend>
          <OptionFields schema={s} values={shown} set={set} prefix="" />
          <label>
            <input type="checkbox" name="compact" checked={compact} onChange={(e) => setCompact(e.currentTarget.checked)} /> Compact modules (cut and re-fit
            channels)
          </label>
          {compact && compactSchema && <OptionFields schema={compactSchema} values={shown} set={set} prefix="compact." />}
        </fieldset>
      )}
      <button type="submit" disabled={busy || !s}>
        {busy ? 'Starting…' : 'Start decomposition'}
      </button>
      <Problem error={error} />
    </form>
  );
}

const DECOMPOSITION_COLUMNS: Column<Decomposition>[] = [
  ['Decomposition', (d) => <Link to={`${BASE}/decompositions/${d.id}`}>{short(d.id)}</Link>],
  ['Status', (d) => d.status],
  ['Model', (d) => <Link to={`${BASE}/models/${d.modelId}`}>{short(d.modelId)}</Link>],
  ['Modules', (d) => d.modules.length],
  ['Model top-1', (d) => pct(d.metrics?.model?.top1)],
  ['Composed top-1', (d) => pct(d.metrics?.composed?.top1)],
  ['Started', (d) => when(d.createdAt)],
];

export function DecompositionsPage({ query }: { query: URLSearchParams }) {
  const modelId = query.get('modelId') ?? undefined;
  const list = usePaged<Decomposition>('/decompositions', { modelId });
  return (
    <>
      <h1>Decompositions</h1>
      <DecompositionForm modelId={modelId} />
      <PagedTable label="Decompositions" list={list} columns={DECOMPOSITION_COLUMNS} />
    </>
  );
}

/**
 * The charts of a finished decomposition. Labels come from its own modules' class names (a class
 * no module covers shows its index), so drawing waits for no other request.
 */
function DecompositionCharts({ d, modules }: { d: Decomposition; modules: Module[] }) {
  const m = d.metrics;
  const names = new Map(d.modules.map((x) => [x.classIndex, x.className]));
  const name = (c: number) => names.get(c) ?? String(c);
  const classes = d.modules.map((x) => x.classIndex);
  const moduleLabels = d.modules.map((x) => x.className);
  const perClass = useMemo(() => {
    if (!m?.model?.perClass || !m.composed?.perClass) return undefined;
    return {
      labels: classes.map(name),
      a: { name: 'model', values: classes.map((c) => m.model?.perClass?.[c] ?? 0) },
      b: { name: 'composed', values: classes.map((c) => m.composed?.perClass?.[c] ?? 0) },
      counts: classes.map((c) => m.model?.classCounts?.[c]),
    };
  }, [d]);
  const allLabels = useMemo(() => (m?.model?.confusion ?? []).map((_, c) => name(c)), [d]);
  const matrices = useMemo(
    () =>
      m?.model?.confusion && m.composed?.confusion
        ? [
            { name: 'model', matrix: m.model.confusion, testId: 'confusion-model' },
            { name: 'composed', matrix: m.composed.confusion, testId: 'confusion-composed' },
          ]
        : [],
    [d],
  );
  const jaccard = useMemo(() => (m?.jaccard.pairwise ? jaccardSpec(moduleLabels, m.jaccard.pairwise) : undefined), [d]);
  const kept = useMemo(() => {
    const byClass = new Map(modules.map((x) => [x.classIndex, x]));
    const ordered = d.modules.map((x) => byClass.get(x.classIndex)).filter((x): x is Module => !!x);
    return ordered.length ? keptSpec(ordered.map((x) => ({ label: x.className, perLayer: x.perLayer }))) : undefined;
  }, [d, modules]);
  return (
    <>
      <Section title="Per-class accuracy: model vs composed">
        {perClass ? <PerClass {...perClass} /> : <p>Not recorded (no evaluation dataset, or a decomposition made before per-class figures were kept).</p>}
      </Section>
      <Section title="Confusion matrices">
        {matrices.length ? <Confusions labels={allLabels} matrices={matrices} /> : <p>{m?.matricesOmitted ?? 'Not recorded.'}</p>}
      </Section>
      <Section title="Module overlap (mask Jaccard)">
        {jaccard ? (
          <Chart spec={jaccard} label="Pairwise Jaccard index of the modules' kept units, scale 0 to 1" testId="jaccard" />
        ) : (
          <p>{m?.matricesOmitted ?? 'Not recorded.'}</p>
        )}
      </Section>
      <Section title="Kept units per observation point">
        {kept ? <Chart spec={kept} label="Fraction of units each module keeps, per observation point" testId="kept" /> : <p>Loading modules…</p>}
      </Section>
    </>
  );
}

function Energy({ energy }: { energy: Record<string, unknown> & { seconds: number; kWh: number; co2eKg: number } }) {
  const a = energy.assumptions as Record<string, unknown> | undefined;
  return (
    <p data-testid="energy">
      {energy.seconds.toFixed(1)} s, {energy.kWh.toExponential(3)} kWh, {(energy.co2eKg * 1000).toFixed(3)} g CO2e
      {a ? (
        <small>
          {' '}
          (assumptions:{' '}
          {Object.entries(a)
            .filter(([k]) => k !== 'units')
            .map(([k, v]) => `${k} ${String(v)}`)
            .join(', ')}
          )
        </small>
      ) : null}
    </p>
  );
}

export function DecompositionPage({ id }: { id: string }) {
  const dec = useLoad(() => get<Decomposition>(`/decompositions/${id}`), [id]);
  const d = dec.data;
  const model = useLoad(() => (d ? get<Model>(`/models/${d.modelId}`) : Promise.resolve(undefined)), [d?.modelId]);
  // Asked for beside the decomposition itself, so the charts wait for one round trip; a decomposition
  // still running has none yet, and they are asked for again when it completes.
  const modules = useLoad(() => all<Module>(withQuery('/modules', { decompositionId: id })), [id, d === undefined || d.status === 'completed']);
  if (dec.error) return <Problem error={dec.error} />;
  if (!d) return <p>Loading…</p>;
  const m = d.metrics;
  const running = d.status === 'queued' || d.status === 'active';
  return (
    <>
      <h1>Decomposition {short(d.id)}</h1>
      <Facts
        rows={[
          ['Status', <span data-testid="status">{d.status}</span>],
          ['Model', <Link to={`${BASE}/models/${d.modelId}`}>{model.data?.name ?? short(d.modelId)}</Link>],
          ['Samples from', <Link to={`${BASE}/datasets/${d.datasetId}`}>{short(d.datasetId)}</Link>],
          ['Metrics on', d.evalDatasetId ? <Link to={`${BASE}/datasets/${d.evalDatasetId}`}>{short(d.evalDatasetId)}</Link> : 'none'],
          ['Options', <code>{JSON.stringify(d.options)}</code>],
          ['Started', when(d.createdAt)],
          ['Finished', when(d.finishedAt)],
        ]}
      />
      {d.jobId && <JobProgress jobId={d.jobId} onDone={() => running && dec.reload()} />}
      {d.error && <Problem error={new Error(`${d.error.title}: ${d.error.detail}`)} />}
      {m && (
        <Section title="Summary">
          <table aria-label="Summary metrics" data-testid="summary">
            <thead>
              <tr>
                <th />
                <th>Top-1</th>
                <th>Top-5</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th>Model</th>
                <td data-testid="model-top1">{pct(m.model?.top1)}</td>
                <td>{pct(m.model?.top5)}</td>
              </tr>
              <tr>
                <th>Composed modules</th>
                <td data-testid="composed-top1">{pct(m.composed?.top1)}</td>
                <td>{pct(m.composed?.top5)}</td>
              </tr>
            </tbody>
          </table>
          <Facts
            rows={[
              ['Images scored', m.count ?? '–'],
              ['Agreement with the model', pct(m.agreement)],
              [
                'Mean pairwise Jaccard',
                `${m.jaccard.meanPairwise.toFixed(3)}${m.jaccard.pairsSampled ? ` (estimated from ${m.jaccard.pairsSampled} random pairs)` : ''}`,
              ],
              ['Mean kept fraction', pct(m.keptFraction)],
              ['Energy', <Energy energy={m.energy} />],
            ]}
          />
        </Section>
      )}
      {d.status === 'completed' && <DecompositionCharts d={d} modules={modules.data ?? []} />}
      {d.status === 'completed' && (
        <Section title="Modules">
          <ModulesTable modules={[...(modules.data ?? [])].sort((a, b) => a.classIndex - b.classIndex)} />
          <p>
            <Link to={`${BASE}/compositions?decompositionId=${d.id}`} class="button">
              Compose modules of this decomposition
            </Link>
          </p>
        </Section>
      )}
    </>
  );
}
