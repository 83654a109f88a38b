/** The shell: navigation, the API key prompt, and the client-side routes under /ui/. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { apiKey, setApiKey, whenUnauthorized } from './api';
import { BASE, Link } from './ui';
import { CompositionPage, CompositionsPage } from './pages/compositions';
import { DatasetPage, DatasetsPage } from './pages/datasets';
import { DecompositionPage, DecompositionsPage } from './pages/decompositions';
import { JobsPage } from './pages/jobs';
import { ModelPage, ModelsPage } from './pages/models';
import { ModulesPage } from './pages/modules';

const NAV: [string, string][] = [
  ['models', 'Models'],
  ['datasets', 'Datasets'],
  ['decompositions', 'Decompositions'],
  ['modules', 'Modules'],
  ['compositions', 'Compositions'],
  ['jobs', 'Jobs'],
];

function route(path: string, query: URLSearchParams) {
  const [section, id] = path
    .replace(/^\/ui\/?/, '')
    .split('/')
    .filter(Boolean);
  switch (section) {
    case undefined:
    case 'models':
      return id ? <ModelPage id={id} key={id} /> : <ModelsPage />;
    case 'datasets':
      return id ? <DatasetPage id={id} key={id} /> : <DatasetsPage />;
    case 'decompositions':
      return id ? <DecompositionPage id={id} key={id} /> : <DecompositionsPage query={query} />;
    case 'modules':
      return <ModulesPage />;
    case 'compositions':
      return id ? <CompositionPage id={id} key={id} /> : <CompositionsPage query={query} />;
    case 'jobs':
      return <JobsPage query={query} />;
    default:
      return <p role="alert">No page at {path}.</p>;
  }
}

function KeyForm({ onDone }: { onDone: () => void }) {
  const [key, setKey] = useState('');
  return (
    <form
      class="card key"
      aria-label="API key"
      onSubmit={(e) => {
        e.preventDefault();
        setApiKey(key.trim() || null);
        onDone();
      }}
    >
      <p>This service needs an API key. It stays in this tab (sessionStorage) and goes with every request as a Bearer token.</p>
      <label>
        API key <input type="password" name="apiKey" value={key} onInput={(e) => setKey(e.currentTarget.value)} autoComplete="off" />
      </label>{' '}
      <button type="submit">Use key</button>
    </form>
  );
}

function App() {
  const [loc, setLoc] = useState(() => location.pathname + location.search);
  const [askKey, setAskKey] = useState(false);
  const [keyVersion, setKeyVersion] = useState(0);
  useEffect(() => {
    const update = () => setLoc(location.pathname + location.search);
    window.addEventListener('popstate', update);
    window.addEventListener('navigate', update);
    whenUnauthorized(() => setAskKey(true));
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('navigate', update);
    };
  }, []);
  const url = new URL(loc, location.origin);
  const section = url.pathname.replace(/^\/ui\/?/, '').split('/')[0] || 'models';
  const hasKey = apiKey() !== null;
  return (
    <>
      <header>
        <Link to={`${BASE}/`} class="brand">
          cnn-modules
        </Link>
        <nav aria-label="Sections">
          {NAV.map(([path, label]) => (
            <Link key={path} to={`${BASE}/${path}`} aria-current={section === path ? 'page' : undefined}>
              {label}
            </Link>
          ))}
          <a href="/docs">API docs</a>
        </nav>
        {hasKey ? (
          <button
            type="button"
            onClick={() => {
              setApiKey(null);
              setKeyVersion(keyVersion + 1);
            }}
          >
            Forget key
          </button>
        ) : (
          <button type="button" onClick={() => setAskKey(true)}>
            Enter API key
          </button>
        )}
      </header>
      <main key={`${keyVersion}`}>
        {askKey && (
          <KeyForm
            onDone={() => {
              setAskKey(false);
              setKeyVersion(keyVersion + 1);
            }}
          />
        )}
        {route(url.pathname, url.searchParams)}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
