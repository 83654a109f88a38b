/** Models: upload (drag and drop, with preprocessing and class names), list, and a model's page. */
import { useState } from 'preact/hooks';
import { get, send, untilFinished, withQuery, type Decomposition, type Evaluation, type Model } from '../api';
import {
  BASE,
  type Column,
  DropZone,
  Facts,
  JobProgress,
  Link,
  PagedTable,
  Problem,
  Section,
  Table,
  navigate,
  pct,
  short,
  useLoad,
  usePaged,
  when,
} from '../ui';
import { DatasetSelect } from './datasets';
import { EvaluationResultView } from './evaluations';

/** "1, 2, 3" or "[1,2,3]" into numbers; undefined when empty. */
function numbers(text: string): number[] | undefined {
  const t = text.trim().replace(/^\[|\]$/g, '');
  return t
    ? t
        .split(/[\s,]+/)
        .filter(Boolean)
        .map(Number)
    : undefined;
}

function names(text: string): string[] | undefined {
  const t = text.trim();
  if (!t) return undefined;
  if (t.startsWith('[')) return JSON.parse(t) as string[];
  return t.split(',').map((s) => s.trim());
}

function UploadModel({ onDone }: { onDone: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [name, setName] = useState('');
  const [scale, setScale] = useState('1');
  const [mean, setMean] = useState('');
  const [std, setStd] = useState('');
  const [classNames, setClassNames] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [importing, setImporting] = useState<{ jobId: string; modelId: string }>();

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const form = new FormData();
    if (files[0]) form.append('file', files[0]);
    if (name.trim()) form.append('name', name.trim());
    try {
      const m = numbers(mean);
      const s = numbers(std);
      form.append('preprocessing', JSON.stringify({ scale: Number(scale), ...(m ? { mean: m } : {}), ...(s ? { std: s } : {}) }));
      const cn = names(classNames);
      if (cn) form.append('classNames', JSON.stringify(cn));
    } catch (err) {
      setError(err);
      return;
    }
    setBusy(true);
    try {
      const res = await send<Model>('POST', '/models', form);
      // 202: a worker is still inspecting the file; its page opens once the import is done.
      if (res.status === 202 && res.body.jobId) setImporting({ jobId: res.body.jobId, modelId: res.body.id });
      else navigate(`${BASE}/models/${res.body.id}`);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-label="Upload a model">
      <h2>Upload a model</h2>
      <DropZone label="Model file (.keras, .h5 or TF.js .zip)" accept=".keras,.h5,.hdf5,.zip" files={files} onFiles={(f) => setFiles(f.slice(0, 1))} />
      <div class="row">
        <label>
          Name <input value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={200} />
        </label>
        <label>
          Scale <input name="scale" value={scale} onInput={(e) => setScale(e.currentTarget.value)} inputMode="decimal" />
        </label>
        <label>
          Mean (per channel) <input value={mean} onInput={(e) => setMean(e.currentTarget.value)} placeholder="e.g. 0.49, 0.48, 0.45" />
        </label>
        <label>
          Std (per channel) <input value={std} onInput={(e) => setStd(e.currentTarget.value)} placeholder="e.g. 0.25, 0.24, 0.26" />
        </label>
      </div>
      <label>
        Class names (comma-separated or a JSON array)
        <input value={classNames} onInput={(e) => setClassNames(e.currentTarget.value)} />
      </label>
      <p class="hint">input = (pixel × scale − mean) / std, per channel</p>
      <button type="submit" disabled={busy || files.length === 0}>
        {busy ? 'Uploading…' : 'Upload model'}
      </button>
      <Problem error={error} />
      {importing && (
        <JobProgress
          jobId={importing.jobId}
          onDone={(job) => {
            onDone();
            if (job.state === 'completed') navigate(`${BASE}/models/${importing.modelId}`);
          }}
        />
      )}
    </form>
  );
}

const MODEL_COLUMNS: Column<Model>[] = [
  ['Name', (m) => <Link to={`${BASE}/models/${m.id}`}>{m.name}</Link>],
  ['Status', (m) => m.status],
  ['Format', (m) => m.format],
  ['Input', (m) => m.inputShape?.join('×') ?? '–'],
  ['Classes', (m) => m.numClasses ?? '–'],
  ['Parameters', (m) => m.params?.toLocaleString() ?? '–'],
  ['Uploaded', (m) => when(m.createdAt)],
];

export function ModelsPage() {
  const list = usePaged<Model>('/models', {});
  return (
    <>
      <h1>Models</h1>
      <UploadModel onDone={list.reload} />
      <PagedTable label="Models" list={list} columns={MODEL_COLUMNS} />
    </>
  );
}

/** Starts an evaluation of a model or composition on a chosen dataset and shows its result. */
export function EvaluateForm({ target }: { target: { modelId: string } | { compositionId: string } }) {
  const [datasetId, setDatasetId] = useState<string[]>([]);
  const [limit, setLimit] = useState('');
  const [baseline, setBaseline] = useState(false);
  const [error, setError] = useState<unknown>();
  const [evaluation, setEvaluation] = useState<Evaluation>();
  const [jobId, setJobId] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setEvaluation(undefined);
    try {
      const res = await send<{ id: string; jobId: string }>('POST', '/evaluations', {
        ...target,
        datasetId: datasetId[0] ?? '',
        ...(limit ? { limit: Number(limit) } : {}),
        ...('compositionId' in target && baseline ? { baseline: true } : {}),
      });
      setJobId(res.body.jobId);
      await untilFinished(res.body.jobId);
      setEvaluation(await get<Evaluation>(`/evaluations/${res.body.id}`));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-label="Evaluate">
      <div class="row">
        <DatasetSelect label="Dataset" value={datasetId} onChange={setDatasetId} />
        <label>
          Limit (images) <input type="number" min={1} value={limit} onInput={(e) => setLimit(e.currentTarget.value)} />
        </label>
        {'compositionId' in target && (
          <label title="Runs the model once more over the images">
            <input type="checkbox" checked={baseline} onChange={(e) => setBaseline(e.currentTarget.checked)} /> Also score the model restricted to these labels
          </label>
        )}
        <button type="submit">Evaluate</button>
      </div>
      <Problem error={error} />
      {jobId && !evaluation && <JobProgress jobId={jobId} />}
      {evaluation?.result && <EvaluationResultView result={evaluation.result} />}
      {evaluation?.error && <Problem error={new Error(`${evaluation.error.title}: ${evaluation.error.detail}`)} />}
    </form>
  );
}

export function ModelPage({ id }: { id: string }) {
  const model = useLoad(() => get<Model>(`/models/${id}`), [id]);
  const evaluations = useLoad(() => get<{ items: Evaluation[] }>(withQuery('/evaluations', { modelId: id, limit: 50 })), [id]);
  const decompositions = useLoad(() => get<{ items: Decomposition[] }>(withQuery('/decompositions', { modelId: id, limit: 50 })), [id]);
  const m = model.data;
  if (model.error) return <Problem error={model.error} />;
  if (!m) return <p>Loading…</p>;
  return (
    <>
      <h1>Model {m.name}</h1>
      <Facts
        rows={[
          ['Id', <code>{m.id}</code>],
          ['Status', m.status],
          ['Format', m.format],
          ['Input shape', m.inputShape?.join(' × ') ?? '–'],
          ['Classes', m.numClasses ?? '–'],
          ['Parameters', m.params?.toLocaleString() ?? '–'],
          ['Preprocessing', <code>{JSON.stringify(m.preprocessing)}</code>],
          ['Class names', m.classNames?.join(', ') ?? 'none (class indices)'],
          ['Uploaded', when(m.createdAt)],
        ]}
      />
      <p>
        <Link to={`${BASE}/decompositions?modelId=${m.id}`} class="button">
          Decompose this model
        </Link>
      </p>
      <Section title="Layers">
        <Table
          label="Layers"
          rows={(m.layers ?? []).map((l, i) => ({ ...l, i }))}
          columns={[
            ['#', (l) => l.i],
            ['Name', (l) => l.name],
            ['Type', (l) => l.type],
            ['Output shape', (l) => l.outputShape.map((d) => d ?? 'N').join(' × ')],
          ]}
        />
      </Section>
      <Section title="Evaluations">
        <Problem error={evaluations.error} />
        <Table
          label="Evaluations"
          rows={evaluations.data?.items ?? []}
          columns={[
            ['Evaluation', (e) => short(e.id)],
            ['Status', (e) => e.status],
            ['Dataset', (e) => <Link to={`${BASE}/datasets/${e.datasetId}`}>{short(e.datasetId)}</Link>],
            ['Images', (e) => e.result?.count ?? '–'],
            ['Top-1', (e) => pct(e.result?.top1)],
            ['Top-5', (e) => pct(e.result?.top5)],
          ]}
        />
        <EvaluateForm target={{ modelId: m.id }} />
      </Section>
      <Section title="Decompositions">
        <ul>
          {decompositions.data?.items.map((d) => (
            <li key={d.id}>
              <Link to={`${BASE}/decompositions/${d.id}`}>{short(d.id)}</Link> {d.status}, {d.modules.length} modules, {when(d.createdAt)}
            </li>
          ))}
        </ul>
      </Section>
    </>
  );
}
