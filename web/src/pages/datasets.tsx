/** Datasets: upload, list, and a dataset's page with class counts and sample images. */
import { useMemo, useState } from 'preact/hooks';
import { get, send, type Dataset } from '../api';
import { classCountsSpec } from '../specs';
import { BASE, Chart, DropZone, Facts, Link, MoreButton, Problem, Section, navigate, useLoad, usePaged, when } from '../ui';

const FORMATS = ['', 'cifar-bin', 'idx', 'npz', 'image-folder'];

function UploadDataset({ onDone }: { onDone: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [name, setName] = useState('');
  const [format, setFormat] = useState('');
  const [labelMode, setLabelMode] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const form = new FormData();
    if (name.trim()) form.append('name', name.trim());
    if (format) form.append('format', format);
    if (labelMode) form.append('labelMode', labelMode);
    for (const f of files) form.append('file', f);
    setBusy(true);
    try {
      const res = await send<Dataset>('POST', '/datasets', form);
      onDone();
      navigate(`${BASE}/datasets/${res.body.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-label="Upload a dataset">
      <h2>Upload a dataset</h2>
      <DropZone label="Dataset files (CIFAR batches, IDX images + labels, npz, zip of class folders)" multiple files={files} onFiles={setFiles} />
      <div class="row">
        <label>
          Name <input value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={200} />
        </label>
        <label>
          Format
          <select value={format} onChange={(e) => setFormat(e.currentTarget.value)}>
            {FORMATS.map((f) => (
              <option value={f} key={f}>
                {f || 'detect'}
              </option>
            ))}
          </select>
        </label>
        <label>
          CIFAR-100 labels
          <select value={labelMode} onChange={(e) => setLabelMode(e.currentTarget.value)}>
            <option value="">default</option>
            <option value="fine">fine</option>
            <option value="coarse">coarse</option>
          </select>
        </label>
      </div>
      <button type="submit" disabled={busy || files.length === 0}>
        {busy ? 'Uploading…' : 'Upload dataset'}
      </button>
      <Problem error={error} />
    </form>
  );
}

export function DatasetsPage() {
  const list = usePaged<Dataset>('/datasets', {});
  return (
    <>
      <h1>Datasets</h1>
      <UploadDataset onDone={list.reload} />
      <Problem error={list.error} />
      <table aria-label="Datasets">
        <thead>
          <tr>
            <th>Name</th>
            <th>Format</th>
            <th>Images</th>
            <th>Shape</th>
            <th>Classes</th>
            <th>Uploaded</th>
          </tr>
        </thead>
        <tbody>
          {list.items.map((d) => (
            <tr key={d.id}>
              <td>
                <Link to={`${BASE}/datasets/${d.id}`}>{d.name}</Link>
              </td>
              <td>{d.format}</td>
              <td>{d.count.toLocaleString()}</td>
              <td>{d.shape.slice(1).join('×')}</td>
              <td>{d.numClasses}</td>
              <td>{when(d.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <MoreButton more={list.more} loading={list.loading} shown={list.items.length} />
    </>
  );
}

interface Samples {
  total: number;
  items: { index: number; label: number; className?: string; png: string }[];
}

export function DatasetPage({ id }: { id: string }) {
  const ds = useLoad(() => get<Dataset>(`/datasets/${id}`), [id]);
  const [offset, setOffset] = useState(0);
  const samples = useLoad(() => get<Samples>(`/datasets/${id}/samples?offset=${offset}&count=12`), [id, offset]);
  const d = ds.data;
  const spec = useMemo(
    () =>
      d
        ? classCountsSpec(
            d.classCounts.map((_, i) => d.classNames?.[i] ?? String(i)),
            d.classCounts,
          )
        : undefined,
    [d],
  );
  if (ds.error) return <Problem error={ds.error} />;
  if (!d || !spec) return <p>Loading…</p>;
  return (
    <>
      <h1>Dataset {d.name}</h1>
      <Facts
        rows={[
          ['Id', <code>{d.id}</code>],
          ['Format', d.format],
          ['Images', d.count.toLocaleString()],
          ['Image shape', d.shape.slice(1).join(' × ')],
          ['Pixel type', d.dtype],
          ['Classes', d.numClasses],
          ['Uploaded', when(d.createdAt)],
        ]}
      />
      <Section title="Images per class">
        <Chart spec={spec} label="Images per class (bars, counts printed above)" testId="class-counts" />
      </Section>
      <Section title="Samples">
        <Problem error={samples.error} />
        <div class="samples" data-testid="samples">
          {samples.data?.items.map((s) => (
            <figure key={s.index}>
              <img src={s.png} alt={`sample ${s.index}, class ${s.className ?? s.label}`} width={64} height={64} />
              <figcaption>
                #{s.index}: {s.className ?? s.label}
              </figcaption>
            </figure>
          ))}
        </div>
        <p class="pager">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 12))}>
            Previous
          </button>{' '}
          <button type="button" disabled={offset + 12 >= d.count} onClick={() => setOffset(offset + 12)}>
            Next
          </button>
        </p>
      </Section>
    </>
  );
}
