/**
 * Parameters of the fleet bench, derived from --connections and --scale. The figures that
 * size the run come from this machine's limits: one process holds at most ~19,500 sockets,
 * so no signaling node or load generator is given more than PER_PROCESS connections.
 */
export const FLEET_PHASES = ['connections', 'chat', 'storm', 'media'] as const;
export type FleetPhase = (typeof FLEET_PHASES)[number];

/** Connections per process: below the 19,500-socket ceiling with room for Redis, PostgreSQL and metrics sockets. */
export const PER_PROCESS = 16_000;

export interface FleetFlags {
  connections: number;
  scale: number;
  repeats: number;
  /** Offered rates of the chat runs, msg/s. */
  rates: number[];
  calls: number;
}

export function fleetParameters(f: FleetFlags) {
  const full = f.scale >= 1;
  const s = (v: number, min = 2) => Math.max(min, Math.round(v * f.scale));
  const connections = s(f.connections, 20);
  const nodes = Math.max(2, Math.ceil(connections / PER_PROCESS), full ? 13 : 0);
  const victims = full ? 3 : 1;
  return {
    scale: f.scale,
    connections: {
      connections,
      nodes,
      loadgens: nodes,
      concurrency: 256 * nodes,
      /** Sample users that have contacts among the connected users and watch them go offline and online. */
      watchers: 4,
      contactsPerWatcher: full ? 50 : 5,
      presenceDownMs: 3_000,
    },
    chat: {
      nodeCounts: [1, 2, 4],
      pairs: 200,
      loadgens: 2,
      textBytes: 64,
      rates: f.rates.map((r) => Math.max(20, Math.round(r * Math.min(1, full ? 1 : f.scale * 20)))),
      durationMs: full ? 20_000 : 5_000,
      warmupMs: full ? 3_000 : 1_500,
      repeats: Math.max(1, f.repeats),
      receipts: true,
    },
    storm: {
      /**
       * One host of signaling processes dies at once: 50,000 users cannot sit on one process
       * here (the socket ceiling), so the victim is `victims` processes killed together.
       */
      victims,
      victimUsers: s(50_000, 10),
      survivors: full ? 6 : 2,
      survivorUsers: s(36_000, 10),
      /** Victim users that do not come back: their presence must go offline after the stale TTL. */
      abandoned: Math.min(400, s(2_000, 4)),
      /** Users of the victim the watchers have as contacts and expect back online. */
      sampleBack: Math.min(100, s(2_000, 4)),
      chatPairs: 100,
      chatRate: full ? 1_000 : 100,
      killAfterMs: 5_000,
      runMs: full ? 60_000 : 20_000,
      reconnect: { initialDelayMs: 300, maxDelayMs: 15_000, jitter: 0.4, giveUpAfterMs: 120_000 },
      staleMs: 5_000,
    },
    media: {
      calls: Math.max(2, Math.round(f.calls * Math.min(1, full ? 1 : f.scale * 40))),
      participants: 3,
      sfuNodes: 2,
      durationSec: full ? 60 : 15,
      audioKbps: 32,
      videoKbps: 300,
      workers: full ? 4 : 1,
    },
    tokenTtlSec: 3600,
    connectTimeoutMs: 60_000,
    childMaxLifeMs: 40 * 60_000,
    benchMaxMs: 120 * 60_000,
  };
}

export type FleetParameters = ReturnType<typeof fleetParameters>;
