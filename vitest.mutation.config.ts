import { defineConfig } from 'vitest/config';

/**
 * The unit tests of the modules under mutation testing (stryker.config.mjs): only these run
 * for each mutant. Integration and browser suites stay out: they are slow and end-to-end.
 */
export default defineConfig({
  test: {
    include: [
      'signaling/auth/**/*.test.ts',
      'signaling/ratelimit/**/*.test.ts',
      'signaling/backends.test.ts',
      'signaling/chat/**/*.test.ts',
      'signaling/call/**/*.test.ts',
      'db/messages*.test.ts',
      'sfu/room.test.ts',
    ],
    exclude: ['**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
