/** Datasets: upload, list, and a dataset's page with class counts and sample images. */
import { useMemo, useState } from 'preact/hooks';
import { get, send, type Dataset } from '../api';
import { classCountsSpec } from '../specs';
import { BASE, Chart, Choice, type Column, DropZone, Facts, Link, PagedTable, Problem, Section, navigate, useLoad, usePaged, when } from '../ui';

const FORMATS = ['', 'cifar-bin', 'idx', 'npz', 'image-folder'];

/**
 * A dataset picker over the newest 200 datasets; one dataset (value [] or [id]) unless `multiple`.
 * @param empty the text of the no-choice option of a single picker
 */
export function DatasetSelect({
  label,
  value,
  onChange,
  multiple,
  name,
  empty = 'choose…',
}: {
  label: string;
  value: string[];
  onChange: (v: string[]) => void;
  multiple?: boolean;
  name?: string;
  empty?: string;
}) {
  const datasets = useLoad(() => get<{ items: Dataset[] }>('/datasets?limit=200'), []);
  return (
    <label>
      {label}
      <select
        name={name}
        multiple={multiple}
        value={multiple ? undefined : (value[0] ?? '')}
        onChange={(e) => onChange([...e.currentTarget.selectedOptions].map((o) => o.value).filter(Boolean))}
      >
        {!multiple && <option value="">{empty}</option>}
        {datasets.data?.items.map((d) => (
          <option value={d.id} key={d.id} selected={multiple ? value.includes(d.id) : undefined}>
            {d.name} ({d.count} images)
          </option>
        ))}
      </select>
      {datasets.error ? <Problem error={datasets.error} /> : null}
    </label>
  );
}

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
        <Choice label="Format" value={format} onChange={setFormat} options={FORMATS.map((f) => [f, f || 'detect'])} />
        <Choice
          label="CIFAR-100 labels"
          value={labelMode}
          onChange={setLabelMode}
          options={[
            ['', 'default'],
            ['fine', 'fine'],
            ['coarse', 'coarse'],
          ]}
        />
      </div>
      <button type="submit" disabled={busy || files.length === 0}>
        {busy ? 'Uploading…' : 'Upload dataset'}
      </button>
      <Problem error={error} />
    </form>
  );
}

const DATASET_COLUMNS: Column<Dataset>[] = [
  ['Name', (d) => <Link to={`${BASE}/datasets/${d.id}`}>{d.name}</Link>],
  ['Format', (d) => d.format],
  ['Images', (d) => d.count.toLocaleString()],
  ['Shape', (d) => d.shape.slice(1).join('×')],
  ['Classes', (d) => d.numClasses],
  ['Uploaded', (d) => when(d.createdAt)],
];

export function DatasetsPage() {
  const list = usePaged<Dataset>('/datasets', {});
  return (
    <>
      <h1>Datasets</h1>
      <UploadDataset onDone={list.reload} />
      <PagedTable label="Datasets" list={list} columns={DATASET_COLUMNS} />
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
