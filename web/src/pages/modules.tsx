/** Modules across decompositions: search by class, lineage (model, dataset, options, parent), export. */
import { useState } from 'preact/hooks';
import { get, type Decomposition, type Job, type Module } from '../api';
import { BASE, Link, MoreButton, Problem, downloadExport, pct, short, useLoad, usePaged, when } from '../ui';

function ExportButton({ moduleId }: { moduleId: string }) {
  const [state, setState] = useState<string>();
  const [error, setError] = useState<unknown>();
  return (
    <>
      <button
        type="button"
        aria-label={`Export module ${moduleId}`}
        disabled={state !== undefined && state !== 'done'}
        onClick={() => {
          setError(undefined);
          setState('starting');
          downloadExport(moduleId, (j: Job) => setState(`${j.state} ${j.progress} %`)).then(
            () => setState('done'),
            (e) => {
              setError(e);
              setState(undefined);
            },
          );
        }}
      >
        Export
      </button>
      {state && state !== 'done' ? <small> building: {state}</small> : null}
      <Problem error={error} />
    </>
  );
}

function Lineage({ module }: { module: Module }) {
  const dec = useLoad(() => get<Decomposition>(`/decompositions/${module.decompositionId}`), [module.decompositionId]);
  return (
    <dl class="facts lineage" data-testid="lineage">
      <dt>Model</dt>
      <dd>
        <Link to={`${BASE}/models/${module.modelId}`}>{short(module.modelId)}</Link>
      </dd>
      <dt>Decomposition</dt>
      <dd>
        <Link to={`${BASE}/decompositions/${module.decompositionId}`}>{short(module.decompositionId)}</Link>
      </dd>
      <dt>Samples from</dt>
      <dd>{dec.data ? <Link to={`${BASE}/datasets/${dec.data.datasetId}`}>{short(dec.data.datasetId)}</Link> : '…'}</dd>
      <dt>Options</dt>
      <dd>
        <code>{dec.data ? JSON.stringify(dec.data.options) : '…'}</code>
      </dd>
      <dt>Parent module</dt>
      <dd>{module.parentModuleId ? <code>{module.parentModuleId}</code> : 'none (made by the decomposition)'}</dd>
      <dt>Made</dt>
      <dd>{when(module.createdAt)}</dd>
    </dl>
  );
}

export function ModulesTable({ modules, pick }: { modules: Module[]; pick?: (m: Module) => void }) {
  const [open, setOpen] = useState<string>();
  return (
    <table aria-label="Modules">
      <thead>
        <tr>
          <th>Class</th>
          <th>Module</th>
          <th>Model</th>
          <th>Kept units</th>
          <th>FLOPs</th>
          <th>One-vs-rest accuracy</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
        {modules.map((m) => (
          <>
            <tr key={m.id}>
              <td>
                {m.className} ({m.classIndex})
              </td>
              <td>
                <code>{m.id}</code>
              </td>
              <td>
                <Link to={`${BASE}/models/${m.modelId}`}>{short(m.modelId)}</Link>
              </td>
              <td>{pct(m.keptFraction, 1)}</td>
              <td>{pct(m.flopsFraction, 1)}</td>
              <td>{pct(m.oneVsRest?.accuracy)}</td>
              <td>
                <button type="button" aria-expanded={open === m.id} onClick={() => setOpen(open === m.id ? undefined : m.id)}>
                  Lineage
                </button>{' '}
                <ExportButton moduleId={m.id} />{' '}
                {pick && (
                  <button type="button" onClick={() => pick(m)} aria-label={`Add module ${m.className} (${short(m.id)})`}>
                    Add
                  </button>
                )}
              </td>
            </tr>
            {open === m.id && (
              <tr>
                <td colSpan={7}>
                  <Lineage module={m} />
                </td>
              </tr>
            )}
          </>
        ))}
      </tbody>
    </table>
  );
}

/** Modules of every decomposition, newest first, filtered by class name or decomposition. */
export function ModuleSearch({ pick, decompositionId }: { pick?: (m: Module) => void; decompositionId?: string }) {
  const [className, setClassName] = useState('');
  const [decomposition, setDecomposition] = useState(decompositionId ?? '');
  const list = usePaged<Module>('/modules', { className: className.trim() || undefined, decompositionId: decomposition.trim() || undefined });
  return (
    <>
      <fieldset class="row">
        <legend>Search</legend>
        <label>
          Class name <input type="search" value={className} onInput={(e) => setClassName(e.currentTarget.value)} />
        </label>
        <label>
          Decomposition id <input type="search" value={decomposition} onInput={(e) => setDecomposition(e.currentTarget.value)} />
        </label>
      </fieldset>
      <Problem error={list.error} />
      <ModulesTable modules={list.items} pick={pick} />
      <MoreButton more={list.more} loading={list.loading} shown={list.items.length} />
    </>
  );
}

export function ModulesPage() {
  return (
    <>
      <h1>Modules</h1>
      <ModuleSearch />
    </>
  );
}
