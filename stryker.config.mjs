// Mutation testing of the security- and data-critical modules: `npm run test:mutation`
// (slow: not part of CI). One module while iterating: `npx stryker run --mutate <file>`.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  mutate: [
    'signaling/auth/siwe.ts',
    'signaling/auth/tokens.ts',
    'signaling/auth/nonces/memory.ts',
    'signaling/auth/nonces/redis.ts',
    'signaling/ratelimit/memory.ts',
    'signaling/ratelimit/redis.ts',
    'signaling/chat/writer.ts',
    'signaling/chat/service.ts',
    'db/messages.ts',
    'signaling/call/service.ts',
    'sfu/room.ts',
  ],
  ignorePatterns: ['reports', 'bench/results', 'web/dist', 'test-results', 'playwright-report', '.cache', '.data', 'coverage', 'helm', 'docs'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 10_000,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
