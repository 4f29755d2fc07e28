/**
 * The bench's parameters: connection counts, load generator counts and run lengths of every
 * phase, derived from the command-line flags, and the environment every signaling node
 * under test runs with. The parameters object is written to the report as is.
 */
import { REDIS_URL } from '../../testkit/redis.ts';

export const ALL_PHASES = ['idle-bare', 'idle', 'idle-multi', 'connect-rate', 'chat', 'chat-receipts', 'groups'] as const;
export type Phase = (typeof ALL_PHASES)[number];

export interface ParameterFlags {
  /** Fewer connections and shorter runs below 1. */
  scale: number;
  /** Fixed-rate and closed-loop chat runs (the median is the figure). */
  repeats: number;
  /** In-flight sends per sender in the closed-loop chat run. */
  window: number;
  /** Offered rate of the fixed-rate chat runs (default 5,000 msg/s, the goal's rate). */
  rate?: number;
}

export function benchParameters({ scale, repeats, window, rate = 5_000 }: ParameterFlags) {
  const n = (v: number) => Math.max(2, Math.round(v * scale));
  return {
    idle: { connections: n(15_000), loadgens: 2, concurrency: 400, steps: 3, settleMs: 5_000, warmupConnections: 200 },
    idleMulti: { connections: n(50_000), nodes: 4, loadgens: 4, concurrency: 400, steps: 2, settleMs: 5_000, warmupConnections: 100 },
    connectRate: { connections: n(12_000), loadgens: 2, concurrency: 256 },
    chat: {
      pairs: 200,
      loadgens: 2,
      textBytes: 64,
      /**
       * The fixed-rate and closed-loop runs are repeated: on two cores shared with PostgreSQL,
       * Redis and the load generators a single run's p99 moves by 2x with scheduling. The
       * median run is the figure; every run is kept.
       */
      repeats: Math.max(1, repeats),
      fixed: { rate, durationMs: Math.max(3_000, 20_000 * Math.min(1, scale)), warmupMs: 2_000 },
      max: { window, durationMs: Math.max(3_000, 15_000 * Math.min(1, scale)), warmupMs: 3_000 },
      /**
       * Open-loop steps after the closed-loop run: the rates the goal names (run only if the
       * closed loop came near them; beyond that they only build a backlog) and fractions of
       * the closed-loop maximum (latency below saturation).
       */
      steps: [10_000, 12_500],
      stepFractionsOfMax: [0.5, 0.8],
      stepDurationMs: Math.max(3_000, 10_000 * Math.min(1, scale)),
      latencyFrom: 'sent' as 'sent' | 'scheduled',
      receipts: false,
    },
    /**
     * The shape an outside harness measures: 1,000 users in 500 pairs with both ends of each
     * pair in one generator process, latency from the scheduled send time (generator stalls
     * count), and recipients sending delivered and read receipts as the web SDK does.
     */
    chatReceipts: {
      pairs: 500,
      loadgens: 1,
      textBytes: 64,
      repeats: Math.max(1, repeats),
      fixed: { rate, durationMs: Math.max(3_000, 20_000 * Math.min(1, scale)), warmupMs: 2_000 },
      max: { window: 10, durationMs: Math.max(3_000, 15_000 * Math.min(1, scale)), warmupMs: 3_000 },
      steps: [2_000],
      stepFractionsOfMax: [] as number[],
      stepDurationMs: Math.max(3_000, 10_000 * Math.min(1, scale)),
      latencyFrom: 'scheduled' as 'sent' | 'scheduled',
      receipts: true,
    },
    /**
     * Group messages over several nodes: members spread round-robin, `messages` sent at
     * `rate` per second by `senders` members (open loop), for each group size.
     */
    groups: {
      sizes: [10, 100, 1000].map((v) => Math.max(3, Math.round(v * Math.min(1, scale)))),
      nodes: 3,
      senders: 5,
      messages: Math.max(10, Math.round(300 * Math.min(1, scale))),
      rate: 50,
      textBytes: 64,
    },
    /** Long enough that no node pushes a refreshed token during the bench. */
    tokenTtlSec: 3600,
    connectTimeoutMs: 30_000,
    /** Hard bound for every child process (each lives for one phase). */
    childMaxLifeMs: 20 * 60_000,
    benchMaxMs: 60 * 60_000,
  };
}

export type BenchParameters = ReturnType<typeof benchParameters>;

/** Environment of every signaling node under test: limits out of the way, one shared secret. */
export const nodeEnvBase = (dbUrl: string, prefix: string, jwtSecret: string): Record<string, string> => ({
  DATABASE_URL: dbUrl,
  REDIS_URL,
  REDIS_KEY_PREFIX: prefix,
  JWT_SECRET: jwtSecret,
  RATE_LIMIT_CONNECT: '100000000/60',
  RATE_LIMIT_AUTH: '100000000/60',
  RATE_LIMIT_MESSAGES: '100000000/60',
  WS_MAX_FRAMES_PER_SECOND: '100000',
  DRAIN_TIMEOUT_MS: '5000',
});
