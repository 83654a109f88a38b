/** Every job with its state, stage, progress, attempts, timings and error; filters; cancel. */
import { useState } from 'preact/hooks';
import { FINISHED, send, type Job } from '../api';
import { Choice, type Column, PagedTable, Problem, short, usePaged, when } from '../ui';

const STATES = ['', 'queued', 'active', 'completed', 'failed', 'cancelled'];
const TYPES = ['', 'inspect-model', 'evaluate', 'decompose', 'compose', 'export-module', 'predict'];

export function JobsPage({ query }: { query: URLSearchParams }) {
  const [state, setState] = useState('');
  const [type, setType] = useState('');
  const [error, setError] = useState<unknown>();
  const highlight = query.get('id');
  const list = usePaged<Job>('/jobs', { state: state || undefined, type: type || undefined });
  const cancel = async (id: string) => {
    setError(undefined);
    try {
      await send('DELETE', `/jobs/${id}`);
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  const columns: Column<Job>[] = [
    ['Job', (j) => <code title={j.id}>{short(j.id)}</code>],
    ['Type', (j) => j.type],
    ['State', (j) => j.state],
    ['Stage', (j) => j.stage ?? ''],
    [
      'Progress',
      (j) => (
        <>
          <progress max={100} value={j.progress} aria-label={`progress of job ${short(j.id)}`} /> {j.progress} %
        </>
      ),
    ],
    ['Attempts', (j) => j.attempts],
    ['Created', (j) => when(j.createdAt)],
    ['Started', (j) => when(j.startedAt)],
    ['Finished', (j) => when(j.finishedAt)],
    ['Error', (j) => (j.error ? `${j.error.title}: ${j.error.detail}` : '')],
    [
      '',
      (j) =>
        !FINISHED.includes(j.state) && (
          <button type="button" onClick={() => void cancel(j.id)} aria-label={`Cancel job ${short(j.id)}`}>
            Cancel
          </button>
        ),
    ],
  ];
  return (
    <>
      <h1>Jobs</h1>
      <fieldset class="row">
        <legend>Filters</legend>
        <Choice label="State" value={state} onChange={setState} options={STATES.map((s) => [s, s || 'any'])} />
        <Choice label="Type" value={type} onChange={setType} options={TYPES.map((s) => [s, s || 'any'])} />
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
        <a href="/queues" class="button">
          Queues (Bull Board)
        </a>
      </fieldset>
      <Problem error={error} />
      <PagedTable label="Jobs" list={list} columns={columns} rowClass={(j) => (j.id === highlight ? 'highlight' : '')} />
    </>
  );
}
