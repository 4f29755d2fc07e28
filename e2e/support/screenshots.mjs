#!/usr/bin/env node
// Regenerates the README's screenshots: runs the browser tests that take them with
// SCREENSHOT_DIR pointing at docs/screenshots (a normal test run writes them under
// test-results/ and leaves the tree untouched).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const specs = ['e2e/chat.spec.ts', 'e2e/call.spec.ts', 'e2e/group.spec.ts', 'e2e/groups-requests.spec.ts'];
const r = spawnSync('npx', ['playwright', 'test', ...specs, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, SCREENSHOT_DIR: fileURLToPath(new URL('../../docs/screenshots', import.meta.url)) },
});
process.exit(r.status ?? 1);
