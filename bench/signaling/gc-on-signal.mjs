// Preloaded into the servers under test (with --expose-gc) so the bench can ask for a full
// garbage collection before reading memory: without it, per-connection figures depend on
// when V8 last collected. Nothing else in the process changes.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
});
