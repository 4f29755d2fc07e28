// Mutation testing of the security- and data-critical modules: `npm run test:mutation`
// (slow, so not part of CI). One group of modules at a time while iterating, e.g.
// `MUTATION_GROUP=auth npm run test:mutation`: only that group's files are mutated and
// only its tests run (vitest.mutation.config.ts reads MUTATION_TESTS). Reports go to
// reports/mutation/ (HTML and JSON); incremental runs reuse earlier results.

/** Module groups: the files mutated and the unit tests that cover them. */
const groups = {
  auth: {
    mutate: ['signaling/auth/siwe.ts', 'signaling/auth/tokens.ts', 'signaling/auth/nonces/memory.ts', 'signaling/auth/nonces/redis.ts'],
    tests: ['signaling/auth/**/*.test.ts', 'signaling/backends.test.ts'],
  },
  ratelimit: {
    mutate: ['signaling/ratelimit/memory.ts', 'signaling/ratelimit/redis.ts'],
    tests: ['signaling/ratelimit/**/*.test.ts', 'signaling/backends.test.ts'],
  },
  // The writer's and the store's other tests also run on PGlite, whose start-up (seconds)
  // would be paid again for every mutant: they run in `npm test` but not here.
  writer: { mutate: ['signaling/chat/writer.ts'], tests: ['signaling/chat/writer.batching.test.ts', 'signaling/chat/writer-isolation.test.ts', 'signaling/chat/writer.errors.test.ts'] },
  store: { mutate: ['db/messages.ts'], tests: ['db/messages.mutation.test.ts'] },
  chat: { mutate: ['signaling/chat/service.ts'], tests: ['signaling/chat/service.test.ts'] },
  call: { mutate: ['signaling/call/service.ts'], tests: ['signaling/call/**/*.test.ts'] },
  sfu: { mutate: ['sfu/room.ts'], tests: ['sfu/room.test.ts', 'sfu/room-media.test.ts', 'sfu/room-limits.test.ts', 'sfu/service.test.ts'] },
};

const name = process.env.MUTATION_GROUP;
if (name && !(name in groups)) throw new Error(`MUTATION_GROUP must be one of ${Object.keys(groups).join(', ')}`);
const selected = name ? [groups[name]] : Object.values(groups);
// Read by vitest.mutation.config.ts in the test runner processes, which inherit it.
process.env.MUTATION_TESTS = [...new Set(selected.flatMap((g) => g.tests))].join(',');
const out = `reports/mutation/${name ?? 'all'}`;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  mutate: selected.flatMap((g) => g.mutate),
  ignorePatterns: ['reports', 'bench/results', 'web/dist', 'test-results', 'playwright-report', '.cache', '.data', 'coverage', 'helm', 'docs', 'e2e'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 10_000,
  incremental: true,
  incrementalFile: `${out}/incremental.json`,
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: `${out}/index.html` },
  jsonReporter: { fileName: `${out}/mutation.json` },
  clearTextReporter: { allowEmojis: false, logTests: false, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
