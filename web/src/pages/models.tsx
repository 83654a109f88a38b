/** Models: upload (drag and drop, with preprocessing and class names), list, and a model's page. */
import { useState } from 'preact/hooks';
import { get, send, untilFinished, withQuery, type Dataset, type Decomposition, type Evaluation, type Model } from '../api';
import { BASE, DropZone, Facts, JobProgress, Link, MoreButton, Problem, Section, navigate, pct, short, useLoad, usePaged, when } from '../ui';
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

export function ModelsPage() {
  const list = usePaged<Model>('/models', {});
  return (
    <>
      <h1>Models</h1>
      <UploadModel onDone={list.reload} />
      <Problem error={list.error} />
      <table aria-label="Models">
        <thead>
          <tr>
            <th>Name</th>
            <th>Status</th>
            <th>Format</th>
            <th>Input</th>
            <th>Classes</th>
            <th>Parameters</th>
            <th>Uploaded</th>
          </tr>
        </thead>
        <tbody>
          {list.items.map((m) => (
            <tr key={m.id}>
              <td>
                <Link to={`${BASE}/models/${m.id}`}>{m.name}</Link>
              </td>
              <td>{m.status}</td>
              <td>{m.format}</td>
              <td>{m.inputShape?.join('×') ?? '–'}</td>
              <td>{m.numClasses ?? '–'}</td>
              <td>{m.params?.toLocaleString() ?? '–'}</td>
              <td>{when(m.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <MoreButton more={list.more} loading={list.loading} shown={list.items.length} />
    </>
  );
}

/** Starts an evaluation of a model or composition on a chosen dataset and shows its result. */
export function EvaluateForm({ target }: { target: { modelId: string } | { compositionId: string } }) {
  const datasets = useLoad(() => get<{ items: Dataset[] }>('/datasets?limit=200'), []);
  const [datasetId, setDatasetId] = useState('');
  const [limit, setLimit] = useState('');
  const [error, setError] = useState<unknown>();
  const [evaluation, setEvaluation] = useState<Evaluation>();
  const [jobId, setJobId] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setEvaluation(undefined);
    try {
      const res = await send<{ id: string; jobId: string }>('POST', '/evaluations', { ...target, datasetId, ...(limit ? { limit: Number(limit) } : {}) });
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
        <label>
          Dataset
          <select value={datasetId} onChange={(e) => setDatasetId(e.currentTarget.value)} required>
            <option value="">choose…</option>
            {datasets.data?.items.map((d) => (
              <option value={d.id} key={d.id}>
                {d.name} ({d.count})
              </option>
            ))}
          </select>
        </label>
        <label>
          Limit (images) <input type="number" min={1} value={limit} onInput={(e) => setLimit(e.currentTarget.value)} />
        </label>
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
        <table aria-label="Layers">
          <thead>
            <tr>
              <th>#</th>
              <th>Name</th>
              <th>Type</th>
              <th>Output shape</th>
            </tr>
          </thead>
          <tbody>
            {(m.layers ?? []).map((l, i) => (
              <tr key={l.name}>
                <td>{i}</td>
                <td>{l.name}</td>
                <td>{l.type}</td>
                <td>{l.outputShape.map((d) => d ?? 'N').join(' × ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Evaluations">
        <Problem error={evaluations.error} />
        <table aria-label="Evaluations">
          <thead>
            <tr>
              <th>Evaluation</th>
              <th>Status</th>
              <th>Dataset</th>
              <th>Images</th>
              <th>Top-1</th>
              <th>Top-5</th>
            </tr>
          </thead>
          <tbody>
            {evaluations.data?.items.map((e) => (
              <tr key={e.id}>
                <td>{short(e.id)}</td>
                <td>{e.status}</td>
                <td>
                  <Link to={`${BASE}/datasets/${e.datasetId}`}>{short(e.datasetId)}</Link>
                </td>
                <td>{e.result?.count ?? '–'}</td>
                <td>{pct(e.result?.top1)}</td>
                <td>{pct(e.result?.top5)}</td>
              </tr>
            ))}
          </tbody>
        </table>
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
