import { test, type Browser } from '@playwright/test';
import { closeAll, newPeer, signIn, type Peer } from './peers.ts';
import { Cluster, type Web } from './servers.ts';

export interface Suite<T> {
  readonly cluster: Cluster;
  /** What `start` returned: the nodes the test talks to. */
  readonly started: T;
  /** Peers opened by the test; closed after the file. */
  readonly peers: Peer[];
  /** A new peer on `url`, signed in, closed with the others. */
  signedIn(browser: Browser, url: string, name: string): Promise<Peer>;
}

/**
 * A fresh cluster (database, Redis prefix) with the nodes `start` launches, up before the
 * file's tests and stopped after them with the peers they opened; a failed test prints what
 * the nodes logged.
 */
export function clusterSuite<T>(start: (cluster: Cluster) => Promise<T>, setupTimeoutMs = 90_000): Suite<T> {
  let cluster: Cluster | undefined;
  let started: { value: T } | undefined;
  const peers: Peer[] = [];
  test.beforeAll(async () => {
    test.setTimeout(setupTimeoutMs);
    cluster = new Cluster();
    await cluster.init();
    started = { value: await start(cluster) };
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
    get started() {
      if (!started) throw new Error('suite not started');
      return started.value;
    },
    peers,
    async signedIn(browser, url, name) {
      const peer = await newPeer(browser, url, name);
      peers.push(peer);
      await signIn(peer);
      return peer;
    },
  };
}

/** A single-process BlockRTC (`blockrtc all`, with coturn first when asked). */
export function singleNodeSuite(opts: { coturn?: boolean } = {}): Suite<Web> & { readonly web: Web } {
  const suite = clusterSuite(async (cluster) => {
    if (opts.coturn) await cluster.coturn();
    return cluster.all();
  });
  return Object.defineProperty(suite, 'web', { get: () => suite.started }) as Suite<Web> & { readonly web: Web };
}

/** A failed test's output ends with what the nodes logged (CI keeps nothing else of them). */
function logsOnFailure(cluster: () => Cluster | undefined): void {
  test.afterEach(async ({}, testInfo) => {
    const c = cluster();
    if (!c || testInfo.status === testInfo.expectedStatus) return;
    // Printed in full (the list reporter shortens attachments) and kept with the results.
    const logs = c.recentLogs();
    console.log(`node logs of "${testInfo.title}":\n${logs}`);
    await testInfo.attach('node logs', { body: logs, contentType: 'text/plain' });
  });
}
