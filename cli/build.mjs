// Compiles the server (every role of `blockrtc`) into dist/server: what production runs
// (`npm start`, the image). A precompiled process does not carry the TypeScript loader, whose
// off-thread hooks and transform caches cost a signaling node ~50 MB of its idle memory.
// Development, tests and `bin/blockrtc.mjs` keep running the sources through tsx.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Two levels below the root, like the sources' own folders: paths the code resolves from its
// own location (../../web/dist for the web app) point at the same place from here.
const out = join(root, 'dist/server');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const started = Date.now();
await build({
  entryPoints: { main: join(root, 'cli/main.ts') },
  outdir: out,
  bundle: true,
  // Roles load what they need on demand (mediasoup only for media): dynamic imports stay
  // separate chunks, loaded when first used.
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
// db/client.ts finds the migrations next to itself.
cpSync(join(root, 'db/migrations'), join(out, 'migrations'), { recursive: true });
console.log(`server built into dist/server in ${Date.now() - started} ms`);
