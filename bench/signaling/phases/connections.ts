/**
 * Steps every phase builds on: starting load generators, preparing users (tokens minted off
 * the clock), connecting them with progress lines, the connect figures, closing, and the
 * warm-up that keeps one-time costs out of the memory figures.
 */
import type { ConnectResult } from '../ipc.ts';
import { log } from '../log.ts';
import { waitConnections } from '../measure.ts';
import { sleep, startLoadgen, type Loadgen, type ServerProcess } from '../procs.ts';
import { nowMs, split, sumErrors, summarize, type Summary } from '../stats.ts';
import { sourceIp, wsUrl, type BenchContext } from './context.ts';

export interface ConnectFigures {
  requested: number;
  connected: number;
  failed: number;
  errors: Record<string, number>;
  wallMs: number;
  perSecond: number;
  latencyMs: Summary;
  loadgenRssBytes: number[];
}

export type TargetsOf = (i: number) => { url: string; count: number }[];

export async function startLoadgens(ctx: BenchContext, count: number): Promise<Loadgen[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startLoadgen(i, ctx.P.childMaxLifeMs)));
}

/**
 * Creates users and mints their tokens in every load generator (kept out of measured
 * windows), signed with the secret the nodes under test were given.
 */
export async function prepareUsers(ctx: BenchContext, lgs: Loadgen[], counts: number[], addresses?: string[][]): Promise<void> {
  await Promise.all(
    lgs.map((lg, i) => lg.call({ cmd: 'prepare', count: counts[i]!, jwtSecret: ctx.jwtSecret, ttlSec: ctx.P.tokenTtlSec, redisUrl: ctx.env.REDIS_URL!, redisPrefix: ctx.env.REDIS_KEY_PREFIX!, ...(addresses ? { addresses: addresses[i]! } : {}) })),
  );
}

/** Connects the prepared users (one step); prints progress. Returns each load generator's result. */
export async function connectStep(
  ctx: BenchContext,
  lgs: Loadgen[],
  targetsOf: TargetsOf,
  phase: number,
  concurrencyTotal: number,
  client: 'raw' | 'ws',
): Promise<ConnectResult[]> {
  const total = lgs.reduce((a, _, i) => a + targetsOf(i).reduce((s, t) => s + t.count, 0), 0);
  const base = lgs.map((l) => l.progress.connected);
  const ticker = setInterval(() => {
    const c = lgs.reduce((a, l, i) => a + Math.max(0, l.progress.connected - base[i]!), 0);
    const f = lgs.reduce((a, l) => a + l.progress.failed, 0);
    log(`  connected ${c}/${total}${f ? `, failed ${f}` : ''}`);
  }, 3000);
  const per = split(concurrencyTotal, lgs.length);
  try {
    return await Promise.all(
      lgs.map((lg, i) =>
        lg.call({ cmd: 'connect', targets: targetsOf(i), localAddress: sourceIp(ctx, phase, i), concurrency: per[i]!, timeoutMs: ctx.P.connectTimeoutMs, client }),
      ),
    );
  } finally {
    clearInterval(ticker);
  }
}

/** Connect figures over one or more steps (the clock only runs while a step connects). */
export function connectFigures(steps: ConnectResult[][]): ConnectFigures {
  const all = steps.flat();
  const wallMs = steps.reduce((a, rs) => a + (Math.max(...rs.map((r) => r.finishedAt)) - Math.min(...rs.map((r) => r.startedAt))), 0);
  const connected = all.reduce((a, r) => a + r.connected, 0);
  return {
    requested: all.reduce((a, r) => a + r.requested, 0),
    connected,
    failed: all.reduce((a, r) => a + r.failed, 0),
    errors: sumErrors(...all.map((r) => r.errors)),
    wallMs: Math.round(wallMs),
    perSecond: Math.round(connected / (wallMs / 1000)),
    latencyMs: summarize(all.flatMap((r) => r.latencies)),
    loadgenRssBytes: steps[steps.length - 1]!.map((r) => r.rssBytes),
  };
}

/** Connects the prepared users in one step; prints progress. */
export async function connectAll(
  ctx: BenchContext,
  lgs: Loadgen[],
  targetsOf: TargetsOf,
  phase: number,
  concurrencyTotal: number,
  client: 'raw' | 'ws',
): Promise<ConnectFigures> {
  return connectFigures([await connectStep(ctx, lgs, targetsOf, phase, concurrencyTotal, client)]);
}

export async function closeAll(lgs: Loadgen[]): Promise<{ ms: number; closed: number; terminated: number; droppedBeforeClose: number }> {
  const t0 = nowMs();
  const r = await Promise.all(lgs.map((lg) => lg.call({ cmd: 'close', concurrency: 200, timeoutMs: 15_000 })));
  return {
    ms: Math.round(nowMs() - t0),
    closed: r.reduce((a, x) => a + x.closed, 0),
    terminated: r.reduce((a, x) => a + x.terminated, 0),
    droppedBeforeClose: r.reduce((a, x) => a + x.dropped, 0),
  };
}

/**
 * Connects and closes a few connections per server before the "before" sample, so that
 * one-time costs of the connection path (compiled code, lazily created state) do not count
 * as per-connection memory.
 */
export async function warmUp(ctx: BenchContext, lg: Loadgen, servers: ServerProcess[], perServer: number, phase: number): Promise<void> {
  await prepareUsers(ctx, [lg], [perServer * servers.length]);
  const r = await lg.call({
    cmd: 'connect',
    targets: servers.map((s) => ({ url: wsUrl(s), count: perServer })),
    localAddress: sourceIp(ctx, phase, 200),
    concurrency: 50,
    timeoutMs: ctx.P.connectTimeoutMs,
    client: 'raw',
  });
  if (r.failed > 0) throw new Error(`warm-up connections failed: ${JSON.stringify(r.errors)}`);
  await lg.call({ cmd: 'close', concurrency: 50, timeoutMs: 15_000 });
  await Promise.all(servers.map((s) => waitConnections(s, 0, 30_000)));
  await sleep(3000);
}
