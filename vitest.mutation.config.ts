import { defineConfig } from 'vitest/config';

/**
 * The unit tests of the modules under mutation testing (stryker.config.mjs), which sets
 * MUTATION_TESTS to the tests of the group it mutates. Integration and browser suites stay
 * out: they are slow and end-to-end.
 */
const all = [
  'signaling/auth/**/*.test.ts',
  'signaling/ratelimit/**/*.test.ts',
  'signaling/backends.test.ts',
  'signaling/chat/writer.batching.test.ts',
  'signaling/chat/writer-isolation.test.ts',
  'signaling/chat/writer.errors.test.ts',
  'signaling/chat/service.test.ts',
  'signaling/call/**/*.test.ts',
  'db/messages.mutation.test.ts',
  'sfu/room*.test.ts',
  'sfu/service.test.ts',
];

export default defineConfig({
  test: {
    include: process.env.MUTATION_TESTS ? process.env.MUTATION_TESTS.split(',') : all,
    exclude: ['**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
