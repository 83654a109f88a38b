/**
 * Compositions: build one from picked modules (labels editable, continuous learning optional),
 * replace modules, evaluate, and predict a dropped image; the page compares the composition with
 * the restricted model (`metrics.baseline`) and shows its lineage.
 */
import { useMemo, useState } from 'preact/hooks';
import { get, send, untilFinished, type Composition, type Module, type Prediction } from '../api';
import { predictionSpec } from '../specs';
import {
  BASE,
  Chart,
  type Column,
  DropZone,
  Facts,
  JobProgress,
  Link,
  PagedTable,
  Problem,
  Section,
  navigate,
  pct,
  short,
  useLoad,
  usePaged,
  when,
} from '../ui';
import { Confusions, PerClass } from './evaluations';
import { DatasetSelect } from './datasets';
import { EvaluateForm } from './models';
import { ModuleSearch } from './modules';

interface Picked {
  module: Module;
  label: string;
}

function BuildComposition({ decompositionId }: { decompositionId?: string }) {
  const [picked, setPicked] = useState<Picked[]>([]);
  const [evalDataset, setEvalDataset] = useState<string[]>([]);
  const [learning, setLearning] = useState<string[]>([]);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const res = await send<{ id: string }>('POST', '/compositions', {
        modules: picked.map((p) => ({ moduleId: p.module.id, label: p.label })),
        ...(evalDataset[0] ? { evalDatasetId: evalDataset[0] } : {}),
        ...(learning.length ? { continuousLearning: { datasetIds: learning } } : {}),
      });
      navigate(`${BASE}/compositions/${res.body.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} noValidate aria-label="Build a composition">
      <h2>Build a composition</h2>
      <ol aria-label="Picked modules">
        {picked.map((p, i) => (
          <li key={p.module.id}>
            <label>
              Label for module {p.module.className} ({short(p.module.id)})
              <input
                name={`label-${i}`}
                value={p.label}
                onInput={(e) => setPicked(picked.map((q, j) => (j === i ? { ...q, label: e.currentTarget.value } : q)))}
              />
            </label>{' '}
            <button type="button" onClick={() => setPicked(picked.filter((_, j) => j !== i))}>
              Remove
            </button>
          </li>
        ))}
      </ol>
      <div class="row">
        <DatasetSelect label="Evaluate on" value={evalDataset} onChange={setEvalDataset} empty="none" />
        <DatasetSelect label="Continuous learning on (optional, several)" value={learning} onChange={setLearning} multiple />
      </div>
      <button type="submit" disabled={busy || picked.length < 2}>
        {busy ? 'Starting…' : `Compose ${picked.length} modules`}
      </button>
      <Problem error={error} />
      <details open>
        <summary>Pick modules</summary>
        <ModuleSearch
          decompositionId={decompositionId}
          pick={(m) => !picked.some((p) => p.module.id === m.id) && setPicked([...picked, { module: m, label: m.className }])}
        />
      </details>
    </form>
  );
}

const COMPOSITION_COLUMNS: Column<Composition>[] = [
  ['Composition', (c) => <Link to={`${BASE}/compositions/${c.id}`}>{short(c.id)}</Link>],
  ['Status', (c) => c.status],
  ['Labels', (c) => c.labels.join(', ')],
  ['Top-1', (c) => pct(c.metrics?.top1)],
  ['Baseline top-1', (c) => pct(c.metrics?.baseline?.top1)],
  ['Made', (c) => when(c.createdAt)],
];

export function CompositionsPage({ query }: { query: URLSearchParams }) {
  const list = usePaged<Composition>('/compositions', {});
  return (
    <>
      <h1>Compositions</h1>
      <BuildComposition decompositionId={query.get('decompositionId') ?? undefined} />
      <PagedTable label="Compositions" list={list} columns={COMPOSITION_COLUMNS} />
    </>
  );
}

function Predict({ compositionId }: { compositionId: string }) {
  const [files, setFiles] = useState<File[]>([]);
  const [predictions, setPredictions] = useState<Prediction[]>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const run = async (chosen: File[]) => {
    setFiles(chosen);
    setPredictions(undefined);
    setError(undefined);
    if (!chosen[0]) return;
    setBusy(true);
    try {
      const form = new FormData();
      form.append('image', chosen[0]);
      const res = await send<{ predictions?: Prediction[][]; jobId?: string }>('POST', `/compositions/${compositionId}/predict`, form);
      let predicted = res.body.predictions;
      // 202: the prediction is a job that outlasted the request; its result holds the predictions.
      if (res.status === 202 && res.body.jobId) {
        const job = await untilFinished(res.body.jobId);
        if (job.state !== 'completed') throw new Error(`the prediction job ${job.state}: ${job.error?.detail ?? ''}`);
        predicted = (job.result as { predictions: Prediction[][] }).predictions;
      }
      setPredictions(predicted?.[0] ?? []);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const spec = useMemo(() => (predictions ? predictionSpec(predictions) : undefined), [predictions]);
  return (
    <div class="card">
      <DropZone label="An image (PNG or JPEG)" accept="image/png,image/jpeg" files={files} onFiles={(f) => void run(f)} />
      {busy && <p>Predicting…</p>}
      <Problem error={error} />
      {predictions && (
        <div data-testid="predictions">
          <p>
            Predicted: <strong data-testid="predicted-label">{predictions[0]?.label}</strong>
          </p>
          <ol class="sr-list">
            {predictions.map((p) => (
              <li key={p.label}>
                {p.label}: {p.probability.toFixed(3)} (margin {p.margin.toFixed(2)})
              </li>
            ))}
          </ol>
          {spec && <Chart spec={spec} label="Top-5 labels and their probabilities" testId="prediction-chart" />}
        </div>
      )}
    </div>
  );
}

function Replace({ composition }: { composition: Composition }) {
  const [label, setLabel] = useState(composition.labels[0] ?? '');
  const [error, setError] = useState<unknown>();
  const pick = async (m: Module) => {
    setError(undefined);
    try {
      const res = await send<{ id: string }>('POST', '/compositions', {
        baseCompositionId: composition.id,
        replace: [{ label, moduleId: m.id }],
        ...(composition.evalDatasetId ? { evalDatasetId: composition.evalDatasetId } : {}),
      });
      navigate(`${BASE}/compositions/${res.body.id}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="card">
      <label>
        Replace the module of label
        <select value={label} onChange={(e) => setLabel(e.currentTarget.value)}>
          {composition.labels.map((l) => (
            <option value={l} key={l}>
              {l}
            </option>
          ))}
        </select>
      </label>
      <Problem error={error} />
      <details>
        <summary>with the module picked here (Add)</summary>
        <ModuleSearch pick={(m) => void pick(m)} />
      </details>
    </div>
  );
}

function Lineage({ c }: { c: Composition }) {
  const base = useLoad(
    () => (c.baseCompositionId ? get<Composition>(`/compositions/${c.baseCompositionId}`) : Promise.resolve(undefined)),
    [c.baseCompositionId],
  );
  const replaced = base.data ? c.modules.filter((m) => !base.data?.modules.some((b) => b.label === m.label && b.moduleId === m.moduleId)) : [];
  return (
    <Facts
      rows={[
        ['Base composition', c.baseCompositionId ? <Link to={`${BASE}/compositions/${c.baseCompositionId}`}>{short(c.baseCompositionId)}</Link> : 'none'],
        ['Replaced', replaced.length ? replaced.map((m) => `${m.label} → ${m.moduleId}`).join(', ') : 'nothing'],
        [
          'Modules',
          <ul>
            {c.modules.map((m) => (
              <li key={m.moduleId}>
                {m.label}: <code>{m.moduleId}</code>
              </li>
            ))}
          </ul>,
        ],
      ]}
    />
  );
}

export function CompositionPage({ id }: { id: string }) {
  const comp = useLoad(() => get<Composition>(`/compositions/${id}`), [id]);
  const c = comp.data;
  const m = c?.metrics;
  const charts = useMemo(() => {
    if (!c || !m?.perClass) return undefined;
    const labels = m.labels ?? c.labels;
    return {
      labels,
      perClass: m.baseline?.perClass ? { a: { name: 'baseline', values: m.baseline.perClass }, b: { name: 'composition', values: m.perClass } } : undefined,
      matrices: m.confusion
        ? [
            ...(m.baseline?.confusion ? [{ name: 'baseline (restricted model)', matrix: m.baseline.confusion, testId: 'confusion-baseline' }] : []),
            { name: 'composition', matrix: m.confusion, testId: 'confusion-composition' },
          ]
        : [],
    };
  }, [c]);
  if (comp.error) return <Problem error={comp.error} />;
  if (!c) return <p>Loading…</p>;
  const running = c.status === 'queued' || c.status === 'active';
  return (
    <>
      <h1>Composition {short(c.id)}</h1>
      <Facts
        rows={[
          ['Status', <span data-testid="status">{c.status}</span>],
          ['Labels', c.labels.join(', ')],
          ['Top-1', <span data-testid="top1">{pct(m?.top1)}</span>],
          ['Top-5', pct(m?.top5)],
          ['Baseline top-1 (the model restricted to these classes)', pct(m?.baseline?.top1)],
          ['Images scored', m?.count ?? '–'],
          ['Made', when(c.createdAt)],
        ]}
      />
      {c.jobId && <JobProgress jobId={c.jobId} onDone={() => running && comp.reload()} />}
      {c.error && <Problem error={new Error(`${c.error.title}: ${c.error.detail}`)} />}
      <Section title="Lineage">
        <Lineage c={c} />
      </Section>
      {charts && (
        <>
          <Section title="Per-class accuracy: baseline vs composition">
            {charts.perClass ? (
              <PerClass labels={charts.labels} counts={m?.classCounts} {...charts.perClass} />
            ) : (
              <p>No baseline: the modules come from more than one model.</p>
            )}
          </Section>
          <Section title="Confusion matrices">
            {charts.matrices.length ? <Confusions labels={charts.labels} matrices={charts.matrices} /> : <p>{m?.matricesOmitted ?? 'Not recorded.'}</p>}
          </Section>
        </>
      )}
      {c.status === 'completed' && (
        <>
          <Section title="Predict">
            <Predict compositionId={c.id} />
          </Section>
          <Section title="Evaluate on a dataset">
            <EvaluateForm target={{ compositionId: c.id }} />
          </Section>
          <Section title="Replace a module">
            <Replace composition={c} />
          </Section>
        </>
      )}
    </>
  );
}
