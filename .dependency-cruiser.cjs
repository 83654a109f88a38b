/**
 * The rooms' doors (STYLE.md section 1, README "Architecture") as rules that fail the build:
 *   api → jobs, store, config, errors      jobs → engine, store, config, errors
 *   store → config, errors                 engine → @tensorflow/* only
 *   config → nothing of ours               only store touches Prisma (its client and @prisma/*)
 *   web (the UI) → nothing of src/: it is a client of the HTTP API like any other
 * Type-only imports count: a type from another room is still a door.
 * Run: `npm run lint:deps` (also part of `npm run lint`; test/deps/rooms.test.ts runs the same rules).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order matter and rooms inseparable (madge --circular checks the same).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'web-is-a-client',
      severity: 'error',
      comment: 'The web UI talks to the service only over HTTP: it imports nothing from src/.',
      from: { path: '^web/' },
      to: { path: '^src/' },
    },
    {
      name: 'api-not-engine',
      severity: 'error',
      comment: 'Routes never import the engine: the API hands work to jobs through the queue contract.',
      from: { path: '^src/api/' },
      to: { path: '^src/engine/' },
    },
    {
      name: 'engine-only-tfjs',
      severity: 'error',
      comment: 'The engine is pure TF.js: no fs, env, Prisma, BullMQ, fastify, nor anything of the service outside src/engine.',
      from: { path: '^src/engine/' },
      to: { pathNot: ['^src/engine/', '(^|/)node_modules/@tensorflow/'] },
    },
    {
      name: 'store-not-api-or-jobs',
      severity: 'error',
      comment: 'The store serves api and jobs; it never reaches back into them.',
      from: { path: '^src/store/' },
      to: { path: '^src/(api|jobs)/' },
    },
    {
      name: 'jobs-not-api',
      severity: 'error',
      comment: 'Workers run without the HTTP layer; the api → jobs door is one-way.',
      from: { path: '^src/jobs/' },
      to: { path: '^src/api/' },
    },
    {
      name: 'config-imports-no-room',
      severity: 'error',
      comment: 'Config is read once, first; it depends on no other part of the service.',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: '^src/config/' },
    },
    {
      name: 'prisma-only-in-store',
      severity: 'error',
      comment: 'Only src/store talks to the database: nothing else imports the generated client or @prisma/*.',
      from: { path: '^src/', pathNot: '^src/store/' },
      to: { path: ['^src/store/generated/', '(^|/)node_modules/(@prisma|\\.prisma)/'] },
    },
  ],
  options: {
    // The generated Prisma client is a leaf here: who imports it matters, not what it imports.
    doNotFollow: { path: ['node_modules', '^src/store/generated/'] },
    exclude: { path: ['^dist/', '^\\.data/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    combinedDependencies: false,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
