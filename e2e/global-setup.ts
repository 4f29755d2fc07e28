import { execFileSync } from 'node:child_process';

/** The signaling nodes serve web/dist, so it is built once before any test starts a node. */
export default function globalSetup(): void {
  execFileSync(process.execPath, ['web/build.mjs'], { stdio: 'inherit' });
}
