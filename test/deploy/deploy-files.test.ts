/**
 * Static checks of the deployment files (Dockerfile, docker-compose.yml) against the service's
 * configuration and README, without a Docker engine.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ENV_VARS, loadConfig } from '../../src/config/env';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), 'utf8');

const APP_SERVICES = ['migrate', 'api', 'worker', 'worker-gpu'] as const;
// The containers run the compiled entries directly (no npm, no sources in the image): each is
// what the npm command beside it runs after its build check.
const EXPECTED_COMMANDS: Record<string, string> = {
  migrate: 'node dist/src/migrate-main.js',
  api: 'node dist/src/main.js',
  worker: 'node dist/src/worker-main.js',
  'worker-gpu': 'node dist/src/worker-main.js',
};
const NPM_EQUIVALENT: Record<string, string> = {
  'node dist/src/migrate-main.js': 'npm run migrate',
  'node dist/src/main.js': 'npm start',
  'node dist/src/worker-main.js': 'npm run worker',
};
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };
const documented = new Set<string>(ENV_VARS);

// ---------------------------------------------------------------- docker-compose.yml

interface ComposeService {
  image?: string;
  build?: string | { context?: string; target?: string };
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  profiles?: string[];
  deploy?: {
    replicas?: number;
    resources?: { reservations?: { devices?: { driver?: string; count?: number | string; capabilities?: string[] }[] } };
  };
  depends_on?: Record<string, { condition?: string }> | string[];
  volumes?: (string | { source?: string; target?: string })[];
  read_only?: boolean;
  tmpfs?: string | string[];
}

const compose = YAML.parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;

function commandOf(svc: ComposeService): string {
  const c = svc.command;
  return (Array.isArray(c) ? c.join(' ') : String(c ?? '')).trim().replace(/\s+/g, ' ');
}

/** The service's environment as compose passes it (list form `NAME=value` or map form). */
/** Compose's `${NAME:-default}` and `${NAME}`, as `docker compose` resolves them from `shell`. */
function interpolate(value: unknown, shell: Record<string, string>): unknown {
  if (typeof value !== 'string') return value;
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => shell[name] || (fallback ?? ''));
}

/** A service's environment as its container sees it, started from a shell with `shell` set. */
function envOf(svc: ComposeService, shell: Record<string, string> = {}): Record<string, unknown> {
  const e = svc.environment ?? {};
  const entries = Array.isArray(e)
    ? e.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, undefined] : [entry.slice(0, i), entry.slice(i + 1)];
      })
    : Object.entries(e);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v, shell)]));
}

function targetOf(svc: ComposeService): string | undefined {
  return typeof svc.build === 'object' ? svc.build.target : undefined;
}

function volumeTargets(svc: ComposeService): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of svc.volumes ?? []) {
    if (typeof v === 'string') {
      const [source, target] = v.split(':');
      out[target] = source;
    } else if (v.target) {
      out[v.target] = v.source ?? '';
    }
  }
  return out;
}

describe('docker-compose.yml', () => {
  it('defines the infrastructure and application services', () => {
    for (const name of ['postgres', 'redis', ...APP_SERVICES]) expect(services).toHaveProperty([name]);
  });

  it('runs Redis with an append-only file so queued jobs survive a restart', () => {
    expect(commandOf(services.redis)).toContain('--appendonly yes');
  });

  it.each(APP_SERVICES)('%s runs its compiled entry with node', (name) => {
    expect(commandOf(services[name])).toBe(EXPECTED_COMMANDS[name]);
  });

  it.each(APP_SERVICES)('%s runs read-only with a /tmp tmpfs', (name) => {
    expect(services[name].read_only).toBe(true);
    const tmpfs = services[name].tmpfs ?? [];
    expect((Array.isArray(tmpfs) ? tmpfs : [tmpfs]).map((t) => t.split(':')[0])).toContain('/tmp');
  });

  it('builds the CPU services from the runtime target and the GPU worker from the gpu target', () => {
    for (const name of ['migrate', 'api', 'worker']) expect(targetOf(services[name])).toBe('runtime');
    expect(targetOf(services['worker-gpu'])).toBe('gpu');
  });

  it('keeps the GPU worker behind the gpu profile with an NVIDIA GPU reserved', () => {
    const gpu = services['worker-gpu'];
    expect(gpu.profiles).toEqual(['gpu']);
    const devices = gpu.deploy?.resources?.reservations?.devices ?? [];
    expect(devices.some((d) => d.driver === 'nvidia' && (d.capabilities ?? []).includes('gpu'))).toBe(true);
  });

  it('runs the API without in-process workers', () => {
    expect(envOf(services.api).WORKERS).toBe('0');
  });

  it('mounts the same blobs volume at BLOB_DIR in the API and every worker', () => {
    for (const name of ['api', 'worker', 'worker-gpu']) {
      const blobDir = envOf(services[name]).BLOB_DIR as string;
      expect(blobDir).toBe('/data/blobs');
      expect(volumeTargets(services[name])[blobDir]).toBe('blobs');
    }
  });

  it.each(APP_SERVICES)('%s sets only documented environment variables', (name) => {
    const env = envOf(services[name]);
    expect(Object.keys(env).length).toBeGreaterThan(0);
    const undocumented = Object.keys(env).filter((k) => !documented.has(k));
    expect(undocumented).toEqual([]);
  });

  it.each(APP_SERVICES)('%s passes every environment value as a string', (name) => {
    const nonStrings = Object.entries(envOf(services[name])).filter(([, v]) => typeof v !== 'string');
    expect(nonStrings).toEqual([]);
  });

  it.each(APP_SERVICES)('%s environment is accepted by loadConfig', (name) => {
    const env = envOf(services[name]) as Record<string, string>;
    expect(loadConfig({ ...env }).blobStore).toBe('fs');
    // As `BLOB_STORE=s3 docker compose --profile minio up` starts it: blobs in MinIO's bucket.
    const onMinio = loadConfig({ ...(envOf(services[name], { BLOB_STORE: 's3' }) as Record<string, string>) });
    expect(onMinio).toMatchObject({ blobStore: 's3', s3: { endpoint: 'http://minio:9000', bucket: 'cnn-modules', forcePathStyle: true } });
    expect(onMinio.s3.credentials?.accessKeyId).toBe(envOf(services.minio).MINIO_ROOT_USER);
  });

  it('runs MinIO and makes its bucket behind the minio profile, before the API and workers start', () => {
    expect(services.minio.profiles).toEqual(['minio']);
    expect(services['minio-bucket'].profiles).toEqual(['minio']);
    expect(envOf(services['minio-bucket']).BUCKET).toBe('cnn-modules');
    for (const name of ['api', 'worker', 'worker-gpu'] as const) {
      const dependsOn = services[name].depends_on as Record<string, { condition: string; required?: boolean }>;
      expect(dependsOn['minio-bucket']).toEqual({ condition: 'service_completed_successfully', required: false });
    }
  });
});

// ---------------------------------------------------------------- README.md

describe('README.md and package.json', () => {
  const commands = [...new Set(APP_SERVICES.map((name) => commandOf(services[name])))];

  it('documents every command the compose file runs and its npm equivalent', () => {
    const readme = read('README.md');
    expect(commands.sort()).toEqual(Object.keys(NPM_EQUIVALENT).sort());
    const missing = commands.flatMap((c) => [c.replace(/^node /, ''), NPM_EQUIVALENT[c]]).filter((c) => !readme.includes(c));
    expect(missing).toEqual([]);
  });

  it('has each npm equivalent run the same compiled entry, without compiling', () => {
    for (const c of commands) {
      const script = pkg.scripts[NPM_EQUIVALENT[c].replace(/^npm (run )?/, '')];
      expect(script).toMatch(new RegExp(`exec ${c.replace(/\./g, '\\.')}$`));
      expect(script).not.toMatch(/\b(tsc|tsx)\b|npm run build/);
    }
  });

  it('compiles the generated Prisma client into dist/ (the build includes all of src/)', () => {
    const build = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
    expect(build.include).toContain('src');
    expect(read('prisma/schema.prisma')).toMatch(/output\s*=\s*"\.\.\/src\/store\/generated"/);
  });
});

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.trimEnd();
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    pending += line;
    if (pending.trim()) logical.push(pending.trim());
    pending = '';
  }
  if (pending.trim()) logical.push(pending.trim());

  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const keyword = m[1].toUpperCase();
    const args = m[2];
    if (keyword === 'FROM') {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(args);
      if (!from) throw new Error(`cannot parse FROM ${args}`);
      stages.push({ name: from[2] ?? String(stages.length), from: from[1], instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push({ keyword, args });
    }
  }
  return stages;
}

/** Variable names set by one ENV instruction (`ENV A=1 B="x y"` or legacy `ENV A value`). */
function envNames(args: string): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) return [args.split(/\s+/)[0]];
  const names: string[] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=(?:"(?:[^"\\]|\\.)*"|'[^']*'|(?:[^\s\\]|\\.)*)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) names.push(m[1]);
  return names;
}

const stages = parseDockerfile(read('Dockerfile'));
const stage = (name: string): Stage => {
  const s = stages.find((st) => st.name.toLowerCase() === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};

/** `name` and every stage it builds on (FROM) or copies from (COPY --from). */
function stageClosure(name: string, seen = new Set<string>()): Stage[] {
  const s = stages.find((st) => st.name.toLowerCase() === name.toLowerCase());
  if (!s || seen.has(s.name)) return [];
  seen.add(s.name);
  const refs = [s.from];
  for (const ins of s.instructions) {
    const m = ins.keyword === 'COPY' ? /--from=(\S+)/.exec(ins.args) : null;
    if (m) refs.push(m[1]);
  }
  return [s, ...refs.flatMap((r) => stageClosure(r, seen))];
}

/** The CMD a stage's image runs: its own last CMD, else the one inherited through FROM. */
function cmdOf(name: string): unknown {
  for (let s = stages.find((st) => st.name.toLowerCase() === name); s; s = stages.find((st) => st.name === s!.from)) {
    const cmds = s.instructions.filter((i) => i.keyword === 'CMD');
    if (cmds.length === 0) continue;
    const args = cmds[cmds.length - 1].args;
    try {
      return JSON.parse(args);
    } catch {
      return args; // shell form; the assertions require exec form
    }
  }
  return undefined;
}

describe('Dockerfile', () => {
  it('has runtime and gpu targets, with runtime last so it is the default', () => {
    const names = stages.map((s) => s.name.toLowerCase());
    expect(names).toContain('runtime');
    expect(names).toContain('gpu');
    expect(names[names.length - 1]).toBe('runtime');
  });

  it('bases the gpu target on a CUDA image and installs @tensorflow/tfjs-node-gpu for it', () => {
    const chain = stageClosure('gpu');
    expect(chain.some((s) => /^nvidia\/cuda:/.test(s.from))).toBe(true);
    const runs = chain.flatMap((s) => s.instructions).filter((i) => i.keyword === 'RUN');
    expect(runs.some((r) => /npm\s+(install|i|add)\b.*@tensorflow\/tfjs-node-gpu/.test(r.args))).toBe(true);
  });

  it('starts the API from runtime and a worker from gpu (exec form, node on the compiled entry)', () => {
    expect(cmdOf('runtime')).toEqual(['node', 'dist/src/main.js']);
    expect(cmdOf('gpu')).toEqual(['node', 'dist/src/worker-main.js']);
  });

  it.each(['runtime', 'gpu'])('%s copies only dist/, prisma/migrations and node_modules', (name) => {
    const copies = stage(name).instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    const sources = copies.flatMap((c) => {
      if (!/--from=/.test(c.args)) return [`context:${c.args}`];
      const parts = c.args.split(/\s+/).filter((a) => !a.startsWith('--'));
      return parts.slice(0, -1);
    });
    expect(sources.sort()).toEqual(['/app/dist', '/app/node_modules', '/app/prisma/migrations']);
  });

  it.each(['runtime', 'gpu'])('%s installs no dev dependencies', (name) => {
    // Its own RUNs install nothing with npm...
    const runs = stage(name).instructions.filter((i) => i.keyword === 'RUN');
    expect(runs.filter((r) => /\bnpm\s+(ci|install|i|add)\b/.test(r.args))).toEqual([]);
    // ...and node_modules comes from a stage whose npm installs end with dev dependencies omitted.
    const from = stage(name)
      .instructions.filter((i) => i.keyword === 'COPY')
      .map((i) => /--from=(\S+)\s+\/app\/node_modules\b/.exec(i.args)?.[1])
      .find(Boolean);
    expect(from).toBeDefined();
    const npmSteps = stageClosure(from!)
      .reverse()
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'RUN' && /\bnpm\s+(ci|install|i|add|prune)\b/.test(i.args));
    // The last full install or prune omits them, and so does every install after it.
    const args = npmSteps.map((i) => i.args);
    const lastFull = args.map((a) => /\bnpm\s+(ci|prune)\b/.test(a)).lastIndexOf(true);
    expect(lastFull).toBeGreaterThanOrEqual(0);
    for (const a of args.slice(lastFull)) expect(a).toMatch(/--omit=dev|--production/);
    expect(Object.keys(pkg.devDependencies)).toContain('typescript');
  });

  it('sets only documented environment variables (or NODE_ENV)', () => {
    const names = stages.flatMap((s) => s.instructions.filter((i) => i.keyword === 'ENV').flatMap((i) => envNames(i.args)));
    expect(names.length).toBeGreaterThan(0);
    const undocumented = [...new Set(names)].filter((n) => n !== 'NODE_ENV' && !documented.has(n));
    expect(undocumented).toEqual([]);
  });

  it('runs the runtime image as the non-root node user', () => {
    const users = stage('runtime').instructions.filter((i) => i.keyword === 'USER');
    expect(users.at(-1)?.args).toBe('node');
  });
});
