/**
 * The rooms' doors (STYLE.md section 1): the import rules of `.dependency-cruiser.cjs` hold on src/ and web/,
 * and no code outside src/store queries the database through Prisma.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

interface Violation {
  from: string;
  to: string;
  rule: { name: string; severity: string };
}

/** Runs the dependency-cruiser CLI (an ES module, which jest's CommonJS loader cannot require). */
function cruise(): { violations: Violation[]; modules: number } {
  // Its package.json `exports` hide the bin from require.resolve.
  const bin = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
  let out: string;
  try {
    out = execFileSync(process.execPath, [bin, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', 'src', 'web'], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
  } catch (err) {
    // It exits non-zero when there are violations; the JSON report is still on stdout.
    out = (err as { stdout?: string }).stdout ?? '';
    if (!out) throw err;
  }
  const report = JSON.parse(out) as { summary: { violations: Violation[]; totalCruised: number } };
  return { violations: report.summary.violations, modules: report.summary.totalCruised };
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

// A Prisma query is a model delegate call (`db.model.findMany(`), a transaction or a raw query
// (`db.$transaction(`, `db.$queryRaw`), with any whitespace (a formatter may break the chain).
const MODELS = 'model|dataset|decomposition|module|composition|compositionModule|evaluation|job|apiKey';
const METHODS =
  'findMany|findFirst|findUnique|findUniqueOrThrow|findFirstOrThrow|create|createMany|update|updateMany|upsert|delete|deleteMany|count|groupBy|aggregate';
const PRISMA_CALL = new RegExp(
  `\\.\\s*\\$(transaction|queryRaw|executeRaw|queryRawUnsafe|executeRawUnsafe)\\b|\\.\\s*(${MODELS})\\s*\\.\\s*(${METHODS})\\s*\\(`,
);

/** `file:line: text` of every Prisma call in src/ outside src/store. */
function prismaCallsOutsideStore(): string[] {
  const src = path.join(ROOT, 'src');
  const store = `${path.join(src, 'store')}${path.sep}`;
  const hits: string[] = [];
  for (const file of tsFiles(src)) {
    if (file.startsWith(store)) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(new RegExp(PRISMA_CALL.source, 'g'))) {
      const line = text.slice(0, m.index).split('\n').length;
      hits.push(`${path.relative(ROOT, file)}:${line}: ${m[0].replace(/\s+/g, '')}`);
    }
  }
  return hits;
}

describe('rooms and doors', () => {
  it('src/ and web/ keep every import rule of .dependency-cruiser.cjs', () => {
    const { violations, modules } = cruise();
    expect(modules).toBeGreaterThan(50);
    const list = violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
    if (list.length > 0) throw new Error(`${list.length} dependency violations:\n${list.join('\n')}`);
  }, 60_000);

  it('only src/store queries the database (no Prisma calls elsewhere in src/)', () => {
    const hits = prismaCallsOutsideStore();
    if (hits.length > 0) throw new Error(`${hits.length} Prisma calls outside src/store (move them into a store repository):\n${hits.join('\n')}`);
  });

  it('recognises a Prisma call', () => {
    expect(PRISMA_CALL.test('await db.compositionModule.createMany({ data })')).toBe(true);
    expect(PRISMA_CALL.test('return deps.db.$transaction(async (tx) => {')).toBe(true);
    expect(PRISMA_CALL.test('models.findMany(')).toBe(false);
    // A chain the formatter broke over lines.
    expect(PRISMA_CALL.test('await tx.evaluation\n      .findMany({ where })')).toBe(true);
    expect(PRISMA_CALL.test('await db.$queryRaw`SELECT 1`')).toBe(true);
  });
});
