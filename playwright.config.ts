import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests: real signaling/SFU/TURN processes started by the tests, one browser
 * context per user. Chromium comes from the system (Debian's /usr/bin/chromium) because
 * Playwright's own browser download is not available everywhere; override with CHROMIUM_PATH.
 */
export default defineConfig({
  testDir: 'e2e',
  testMatch: /.*\.spec\.ts$/,
  globalSetup: './e2e/global-setup.ts',
  // Media-heavy tests on a small machine: one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 150_000,
  globalTimeout: 12 * 60_000,
  expect: { timeout: 20_000 },
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    headless: true,
    viewport: { width: 1280, height: 800 },
    actionTimeout: 20_000,
    navigationTimeout: 30_000,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        '--allow-loopback-in-peer-connection',
        '--autoplay-policy=no-user-gesture-required',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        // Background tabs must keep decoding: every peer is a tab of one browser.
        '--disable-background-timer-throttling',
        '--disable-renderer-backgrounding',
        '--disable-backgrounding-occluded-windows',
      ],
    },
  },
});
