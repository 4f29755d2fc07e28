import type { BlockRtcClient } from '../../web/sdk/index.ts';

// What the web app puts on `window` (web/app/main.ts), as seen from page.evaluate callbacks.
declare global {
  interface Window {
    blockrtc?: BlockRtcClient;
  }
}
