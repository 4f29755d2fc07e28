// Bundles the web app (and the SDK it uses) into web/dist, which the signaling node serves at /.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const watch = process.argv.includes('--watch');
const dev = watch || process.argv.includes('--dev');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const started = Date.now();
await build({
  entryPoints: { app: join(here, 'app/main.ts') },
  outdir: dist,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: !dev,
  sourcemap: true,
  legalComments: 'none',
  // siwe's parser requires Node's 'buffer'; a small shim covers what it uses.
  alias: { buffer: join(here, 'sdk/buffer-shim.ts') },
  logLevel: 'warning',
  // mediasoup-client's debug logger reads process.env in some builds.
  define: { 'process.env.NODE_ENV': '"production"', 'process.env.DEBUG': 'undefined' },
});
for (const f of ['index.html', 'styles.css', 'favicon.svg']) copyFileSync(join(here, 'app', f), join(dist, f));
console.log(`web app built into ${dist} in ${Date.now() - started} ms`);
