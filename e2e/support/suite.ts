import { test } from '@playwright/test';
import { closeAll, type Peer } from './peers.ts';
import { Cluster, type Web } from './servers.ts';

export interface Suite {
  readonly cluster: Cluster;
  /** The embedded node (`blockrtc all`) the browsers open. */
  readonly web: Web;
  /** Peers opened by the test; closed after the file. */
  readonly peers: Peer[];
}

/**
 * A single-process BlockRTC (`blockrtc all`, with coturn first when asked) started before the
 * file's tests and stopped after them, with the peers they opened.
 */
export function singleNodeSuite(opts: { coturn?: boolean } = {}): Suite {
  let cluster: Cluster | undefined;
  let web: Web | undefined;
  const peers: Peer[] = [];
  test.beforeAll(async () => {
    test.setTimeout(90_000);
    cluster = new Cluster();
    await cluster.init();
    if (opts.coturn) await cluster.coturn();
    web = await cluster.all();
  });
  logsOnFailure(() => cluster);
  test.afterAll(async () => {
    await closeAll(peers);
    await cluster?.stop();
  });
  return {
    get cluster() {
      if (!cluster) throw new Error('suite not started');
      return cluster;
    },
    get web() {
      if (!web) throw new Error('suite not started');
      return web;
    },
    peers,
  };
}

/** A failed test's output ends with what the nodes logged (CI keeps nothing else of them). */
export function logsOnFailure(cluster: () => Cluster | undefined): void {
  test.afterEach(async ({}, testInfo) => {
    const c = cluster();
    if (!c || testInfo.status === testInfo.expectedStatus) return;
    // Printed in full (the list reporter shortens attachments) and kept with the results.
    const logs = c.recentLogs();
    console.log(`node logs of "${testInfo.title}":\n${logs}`);
    await testInfo.attach('node logs', { body: logs, contentType: 'text/plain' });
  });
}
