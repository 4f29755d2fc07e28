/**
 * Phase `chat`: chat across 1, 2 and 4 signaling nodes on the Redis Cluster, sender and
 * recipient always on different nodes (with one node, the same), at fixed offered rates
 * (open loop) with receipts as the web SDK sends them. CPU per message of the nodes, Redis
 * and PostgreSQL apart — flat as nodes are added if delivery is sharded — and PostgreSQL's
 * rows and WAL bytes per message, Redis commands per message.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'ethers';
import { query } from '../../../testkit/pg.ts';
import type { ChatCollectResult, ChatPair, ChatSendResult } from '../../signaling/ipc.ts';
import { log } from '../../signaling/log.ts';
import { cpuPerOp } from '../../signaling/measure.ts';
import { sleep, type Loadgen } from '../../signaling/procs.ts';
import { nowMs, split, summarize } from '../../signaling/stats.ts';
import { clusterDelta } from '../cluster.ts';
import { fleetCpuWatch, pgDelta, pgMark, prepare, sourceIp, startLoadgens, startNodes, wsUrl, type FleetContext } from '../context.ts';

const PHASE = 2;

type Run = Awaited<ReturnType<typeof runOnce>>;

async function runOnce(ctx: FleetContext, lgs: Loadgen[], nodes: Parameters<typeof fleetCpuWatch>[1], pairsByLg: ChatPair[][], run: string, rate: number) {
  const c = ctx.P.chat;
  // The fleet's CPU with no chat (heartbeats, sweeps, timers): at low rates it would
  // otherwise be charged to the few messages and hide whether the per-message cost is flat.
  const idleWatch = fleetCpuWatch(ctx, nodes, lgs);
  await sleep(2000);
  const idle = idleWatch.stop();
  const startAt = nowMs() + 500;
  const r0 = await ctx.cluster.info();
  const pg0 = await pgMark(ctx.dbUrl);
  const cpu = fleetCpuWatch(ctx, nodes, lgs);
  const rates = split(rate, lgs.length);
  const sends: ChatSendResult[] = await Promise.all(
    lgs.map((lg, k) =>
      lg.call({ cmd: 'chat', run, mode: 'open', pairs: pairsByLg[k]!, rate: rates[k]!, window: 0, durationMs: c.durationMs, warmupMs: c.warmupMs, textBytes: c.textBytes, startAt, latencyFrom: 'scheduled', receipts: c.receipts }),
    ),
  );
  const acked = sends.reduce((a, s) => a + s.acked, 0);
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const d = (await Promise.all(lgs.map((lg) => lg.call({ cmd: 'count', run })))).reduce((a, x) => a + x.received, 0);
    if (d >= acked) break;
    await sleep(100);
  }
  // Receipts trail the messages by their 30 ms batch.
  await sleep(500);
  const cpuReport = cpu.stop();
  await sleep(1000); // row counters reach pg_stat within a second
  const pg1 = await pgMark(ctx.dbUrl);
  const r1 = await ctx.cluster.info();
  const rx: ChatCollectResult[] = await Promise.all(lgs.map((lg) => lg.call({ cmd: 'collect', run })));
  const [row] = await query<{ n: number }>(ctx.dbUrl, 'select count(*)::int as n from messages where client_id like $1', [`${run}-%`]);
  const delivered = rx.reduce((a, r) => a + r.received, 0);
  const measuredSec = (c.durationMs - c.warmupMs) / 1000;
  const pgd = await pgDelta(ctx.dbUrl, pg0, pg1);
  const redis = clusterDelta(r0, r1);
  const cpuPer = cpuPerOp(cpuReport, delivered);
  const receipts = rx.reduce((a, r) => ({ delivered: a.delivered + r.receipts.delivered, read: a.read + r.receipts.read, ok: a.ok + r.receipts.ok, failed: a.failed + r.receipts.failed }), { delivered: 0, read: 0, ok: 0, failed: 0 });
  return {
    run,
    offeredPerSecond: rate,
    sent: sends.reduce((a, s) => a + s.sent, 0),
    acked,
    delivered,
    persisted: row?.n ?? -1,
    deliveredPerSecond: Math.round(rx.reduce((a, r) => a + r.receivedInWindow, 0) / measuredSec),
    deliveryLatencyMs: summarize(rx.flatMap((r) => r.latencies)),
    ackLatencyMs: summarize(sends.flatMap((s) => s.ackLatencies)),
    receipts,
    cpu: cpuReport,
    cpuPerMessageUs: { ...cpuPer, clusterRedisUs: Math.round((cpuReport.clusterRedisCores * cpuReport.wallMs * 1000) / Math.max(1, delivered)) },
    /** The same less the idle fleet's CPU over the run's length. */
    cpuPerMessageNetOfIdleUs: netOfIdle(cpuReport, idle, delivered),
    idleCpu: idle,
    postgres: { ...pgd, rowsPerMessage: Math.round(((pgd.rowsInserted + pgd.rowsUpdated) / Math.max(1, delivered)) * 100) / 100, walBytesPerMessage: Math.round(pgd.walBytes / Math.max(1, delivered)) },
    redis: { commands: redis.commands, commandsPerMessage: Math.round((redis.commands / Math.max(1, delivered)) * 10) / 10, commandsPerMaster: redis.commandsPerMaster },
  };
}

type Cpu = ReturnType<ReturnType<typeof fleetCpuWatch>['stop']>;

function netOfIdle(run: Cpu, idle: Cpu, messages: number) {
  const us = (runCores: number, idleCores: number) => Math.round((Math.max(0, runCores - idleCores) * run.wallMs * 1000) / Math.max(1, messages));
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return { serverUs: us(sum(run.serverCores), sum(idle.serverCores)), clusterRedisUs: us(run.clusterRedisCores, idle.clusterRedisCores), postgresUs: us(run.postgresCores, idle.postgresCores) };
}

/** The median run by p99 (of an even number, the worse of the middle two). */
const median = (runs: Run[]): Run | null => [...runs].sort((a, b) => a.deliveryLatencyMs.p99 - b.deliveryLatencyMs.p99)[Math.floor(runs.length / 2)] ?? null;

export async function chatPhase(ctx: FleetContext) {
  const c = ctx.P.chat;
  const maxNodes = Math.max(...c.nodeCounts);
  const servers = await startNodes(ctx, 'chat', maxNodes);
  let lgs: Loadgen[] = [];
  try {
    lgs = await startLoadgens(ctx, c.loadgens);
    const byNodes: { nodes: number; users: number; atRates: { rate: number; median: Run | null; runs: Run[] }[] }[] = [];
    for (const n of c.nodeCounts) {
      const nodes = servers.slice(0, n);
      const addr = () => getAddress(`0x${randomBytes(20).toString('hex')}`);
      const pairs: ChatPair[] = Array.from({ length: c.pairs }, () => ({ from: addr(), to: addr() }));
      // Pair i: sender in generator i%2 on node i%n, recipient in the other generator on
      // node (i+1)%n — another node whenever there are two or more.
      const placed = lgs.map(() => [] as { address: string; node: number }[]);
      pairs.forEach((p, i) => {
        placed[i % lgs.length]!.push({ address: p.from, node: i % n });
        placed[(i + 1) % lgs.length]!.push({ address: p.to, node: (i + 1) % n });
      });
      for (const list of placed) list.sort((a, b) => a.node - b.node);
      await prepare(ctx, lgs, placed.map((l) => l.map((x) => x.address)), placed.map((l) => l.length));
      const conn = await Promise.all(
        lgs.map((lg, k) =>
          lg.call({
            cmd: 'connect',
            targets: nodes.map((s, j) => ({ url: wsUrl(s), count: placed[k]!.filter((x) => x.node === j).length })).filter((t) => t.count > 0),
            localAddress: sourceIp(ctx, PHASE, k + 10 * n),
            concurrency: 50,
            timeoutMs: ctx.P.connectTimeoutMs,
            client: 'ws',
          }),
        ),
      );
      if (conn.some((r) => r.failed)) throw new Error(`chat users failed to connect: ${JSON.stringify(conn.map((r) => r.errors))}`);
      await sleep(1000);
      const pairsByLg = lgs.map((_, k) => pairs.filter((_, i) => i % lgs.length === k));
      const atRates = [];
      for (const rate of c.rates) {
        const runs: Run[] = [];
        for (let i = 1; i <= c.repeats; i++) {
          const r = await runOnce(ctx, lgs, nodes, pairsByLg, `n${n}r${rate}x${i}`, rate);
          log(`  ${n} node(s), ${rate} msg/s offered: ${r.deliveredPerSecond}/s delivered, p50 ${r.deliveryLatencyMs.p50} / p99 ${r.deliveryLatencyMs.p99} ms; CPU/msg nodes ${r.cpuPerMessageUs.serverUs} µs, Redis ${r.cpuPerMessageUs.clusterRedisUs} µs, PG ${r.cpuPerMessageUs.postgresUs} µs; acked ${r.acked}, delivered ${r.delivered}, persisted ${r.persisted}`);
          runs.push(r);
          await sleep(1000);
        }
        atRates.push({ rate, median: median(runs), runs });
      }
      await Promise.all(lgs.map((lg) => lg.call({ cmd: 'close', concurrency: 100, timeoutMs: 15_000 })));
      byNodes.push({ nodes: n, users: c.pairs * 2, atRates });
    }
    // The sharded-channel claim: CPU per message should not grow with the number of nodes.
    const flat = c.rates.map((rate) => {
      const per = byNodes.map((b) => ({ nodes: b.nodes, ...b.atRates.find((a) => a.rate === rate)?.median?.cpuPerMessageNetOfIdleUs }));
      const nodeUs = per.map((p) => p.serverUs ?? NaN);
      return { rate, perNodes: per, nodesCpuGrowth: Math.round((Math.max(...nodeUs) / Math.max(1, Math.min(...nodeUs))) * 100) / 100 };
    });
    // Messages per node at p99 < 50 ms: the highest offered rate whose median run met it, per node.
    const perNodeAtP99Under50 = byNodes.map((b) => {
      const ok = b.atRates.filter((a) => a.median && a.median.deliveryLatencyMs.p99 < 50 && a.median.persisted === a.median.acked);
      const best = Math.max(0, ...ok.map((a) => a.median!.deliveredPerSecond));
      return { nodes: b.nodes, deliveredPerSecond: best, perNode: Math.round(best / b.nodes) };
    });
    return { pairs: c.pairs, receipts: c.receipts, latencyFrom: 'scheduled', byNodes, cpuPerMessageByNodes: flat, perNodeAtP99Under50 };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await Promise.all(servers.map((s) => s.stop(5000)));
  }
}
