/** Every job with its state, stage, progress, attempts, timings and error; filters; cancel. */
import { useState } from 'preact/hooks';
import { FINISHED, send, type Job } from '../api';
import { MoreButton, Problem, short, usePaged, when } from '../ui';

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
  return (
    <>
      <h1>Jobs</h1>
      <fieldset class="row">
        <legend>Filters</legend>
        <label>
          State
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            {STATES.map((s) => (
              <option value={s} key={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select value={type} onChange={(e) => setType(e.currentTarget.value)}>
            {TYPES.map((s) => (
              <option value={s} key={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
        <a href="/queues" class="button">
          Queues (Bull Board)
        </a>
      </fieldset>
      <Problem error={error ?? list.error} />
      <table aria-label="Jobs">
        <thead>
          <tr>
            <th>Job</th>
            <th>Type</th>
            <th>State</th>
            <th>Stage</th>
            <th>Progress</th>
            <th>Attempts</th>
            <th>Created</th>
            <th>Started</th>
            <th>Finished</th>
            <th>Error</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.items.map((j) => (
            <tr key={j.id} class={j.id === highlight ? 'highlight' : ''}>
              <td>
                <code title={j.id}>{short(j.id)}</code>
              </td>
              <td>{j.type}</td>
              <td>{j.state}</td>
              <td>{j.stage ?? ''}</td>
              <td>
                <progress max={100} value={j.progress} aria-label={`progress of job ${short(j.id)}`} /> {j.progress} %
              </td>
              <td>{j.attempts}</td>
              <td>{when(j.createdAt)}</td>
              <td>{when(j.startedAt)}</td>
              <td>{when(j.finishedAt)}</td>
              <td>{j.error ? `${j.error.title}: ${j.error.detail}` : ''}</td>
              <td>
                {!FINISHED.includes(j.state) && (
                  <button type="button" onClick={() => void cancel(j.id)} aria-label={`Cancel job ${short(j.id)}`}>
                    Cancel
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <MoreButton more={list.more} loading={list.loading} shown={list.items.length} />
    </>
  );
}
