/**
 * `npm run bench:signaling`: idle-connection memory, connect rate and chat throughput of
 * real `blockrtc signaling` processes on real PostgreSQL and Redis, driven by separate
 * load generator processes. Phases run one after another (the machine has few cores).
 *
 * Flags: --only=idle-bare,idle,idle-multi,connect-rate,chat   --scale=0.1 (fewer connections,
 * shorter runs; for trying the bench out)   --out=path.json
 * --chat=fixed,max,steps (which chat runs)   --window=4 (in-flight sends per sender in the closed loop)
 * --repeats=3 (fixed-rate and closed-loop runs; the median is the figure)
 * --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (extra node flags for the signaling
 * nodes; diagnostics only)   --server-log=path (copy the servers' output there)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, hostname } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getAddress } from 'ethers';
import { Redis } from 'ioredis';
import { PG_ADMIN_URL, createTestDatabase, query } from '../../testkit/pg.ts';
import { migrate } from '../../testkit/node.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../../testkit/redis.ts';
import type { ChatCollectResult, ChatPair, ChatSendResult, ConnectResult } from './ipc.ts';
import { cpuWatch, sampleMemory, scrape, waitConnections, type CpuReport, type MemorySample } from './measure.ts';
import { killAll, setServerLogFile, setServerNodeArgs, sleep, startBareWs, startLoadgen, startSignalingNode, type Loadgen, type ServerProcess } from './procs.ts';
import { nowMs, round, sumErrors, summarize, type Summary } from './stats.ts';

// ---- parameters -------------------------------------------------------------------------

const args = new Map(
  process.argv.slice(2).map((a) => {
    const body = a.replace(/^--/, '');
    const eq = body.indexOf('=');
    return eq < 0 ? ([body, 'true'] as const) : ([body.slice(0, eq), body.slice(eq + 1)] as const);
  }),
);
const ALL_PHASES = ['idle-bare', 'idle', 'idle-multi', 'connect-rate', 'chat'] as const;
type Phase = (typeof ALL_PHASES)[number];
const only = new Set((args.get('only')?.split(',') ?? ALL_PHASES) as Phase[]);
const scale = Number(args.get('scale') ?? 1);
const chatRuns = new Set(args.get('chat')?.split(',') ?? ['fixed', 'max', 'steps']);
if (args.has('server-log')) setServerLogFile(args.get('server-log')!);
if (args.has('server-node-args')) setServerNodeArgs(args.get('server-node-args')!.split(' ').filter(Boolean));
const OUT = args.get('out') ?? fileURLToPath(new URL('../results/signaling.json', import.meta.url));

const n = (v: number) => Math.max(2, Math.round(v * scale));
const JWT_SECRET = `bench-${randomBytes(24).toString('hex')}`;
const P = {
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
    repeats: Math.max(1, Number(args.get('repeats') ?? 3)),
    fixed: { rate: 5_000, durationMs: Math.max(3_000, 20_000 * Math.min(1, scale)), warmupMs: 2_000 },
    max: { window: Number(args.get('window') ?? 4), durationMs: Math.max(3_000, 15_000 * Math.min(1, scale)), warmupMs: 3_000 },
    /**
     * Open-loop steps after the closed-loop run: the rates the goal names (run only if the
     * closed loop came near them; beyond that they only build a backlog) and fractions of
     * the closed-loop maximum (latency below saturation).
     */
    steps: [10_000, 12_500],
    stepFractionsOfMax: [0.5, 0.8],
    stepDurationMs: Math.max(3_000, 10_000 * Math.min(1, scale)),
  },
  /** Long enough that no node pushes a refreshed token during the bench. */
  tokenTtlSec: 3600,
  connectTimeoutMs: 30_000,
  /** Hard bound for every child process (each lives for one phase). */
  childMaxLifeMs: 20 * 60_000,
  benchMaxMs: 60 * 60_000,
};

const nodeEnvBase = (dbUrl: string, prefix: string): Record<string, string> => ({
  DATABASE_URL: dbUrl,
  REDIS_URL,
  REDIS_KEY_PREFIX: prefix,
  JWT_SECRET,
  RATE_LIMIT_CONNECT: '100000000/60',
  RATE_LIMIT_AUTH: '100000000/60',
  RATE_LIMIT_MESSAGES: '100000000/60',
  WS_MAX_FRAMES_PER_SECOND: '100000',
  DRAIN_TIMEOUT_MS: '5000',
});

// A fresh second octet per run: source ports left in TIME_WAIT by an earlier run (or phase)
// never collide with this one's binds.
const ipOctet = 1 + Math.floor(Math.random() * 250);
const sourceIp = (phase: number, i: number) => `127.${ipOctet}.${phase}.${i + 1}`;
const wsUrl = (s: ServerProcess) => `${s.url.replace(/^http/, 'ws')}/ws`;

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

// ---- shared steps -----------------------------------------------------------------------

async function startLoadgens(count: number): Promise<Loadgen[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startLoadgen(i, P.childMaxLifeMs)));
}

interface ConnectFigures {
  requested: number;
  connected: number;
  failed: number;
  errors: Record<string, number>;
  wallMs: number;
  perSecond: number;
  latencyMs: Summary;
  loadgenRssBytes: number[];
}

/** Creates users and mints their tokens in every load generator (kept out of measured windows). */
async function prepareUsers(lgs: Loadgen[], counts: number[], addresses?: string[][]): Promise<void> {
  await Promise.all(lgs.map((lg, i) => lg.call({ cmd: 'prepare', count: counts[i]!, jwtSecret: JWT_SECRET, ttlSec: P.tokenTtlSec, ...(addresses ? { addresses: addresses[i]! } : {}) })));
}

/** Connects the prepared users (one step); prints progress. Returns each load generator's result. */
async function connectStep(
  lgs: Loadgen[],
  targetsOf: (i: number) => { url: string; count: number }[],
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
      lgs.map((lg, i) => lg.call({ cmd: 'connect', targets: targetsOf(i), localAddress: sourceIp(phase, i), concurrency: per[i]!, timeoutMs: P.connectTimeoutMs, client })),
    );
  } finally {
    clearInterval(ticker);
  }
}

/** Connect figures over one or more steps (the clock only runs while a step connects). */
function connectFigures(steps: ConnectResult[][]): ConnectFigures {
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
async function connectAll(
  lgs: Loadgen[],
  targetsOf: (i: number) => { url: string; count: number }[],
  phase: number,
  concurrencyTotal: number,
  client: 'raw' | 'ws',
): Promise<ConnectFigures> {
  return connectFigures([await connectStep(lgs, targetsOf, phase, concurrencyTotal, client)]);
}

async function closeAll(lgs: Loadgen[]): Promise<{ ms: number; closed: number; terminated: number; droppedBeforeClose: number }> {
  const t0 = nowMs();
  const r = await Promise.all(lgs.map((lg) => lg.call({ cmd: 'close', concurrency: 200, timeoutMs: 15_000 })));
  return {
    ms: Math.round(nowMs() - t0),
    closed: r.reduce((a, x) => a + x.closed, 0),
    terminated: r.reduce((a, x) => a + x.terminated, 0),
    droppedBeforeClose: r.reduce((a, x) => a + x.dropped, 0),
  };
}

/** CPU time per operation (µs): comparable between runs even when other jobs take cores. */
function cpuPerOp(cpu: CpuReport, ops: number) {
  const us = (cores: number) => Math.round((cores * cpu.wallMs * 1000) / Math.max(1, ops));
  return {
    serverUs: us(Object.values(cpu.serverCores).reduce((a, b) => a + b, 0)),
    loadgenUs: us(cpu.loadgenCores.reduce((a, b) => a + b, 0)),
    backendUs: us(cpu.backendCores),
  };
}

/**
 * Connects and closes a few connections per server before the "before" sample, so that
 * one-time costs of the connection path (compiled code, lazily created state) do not count
 * as per-connection memory.
 */
async function warmUp(lg: Loadgen, servers: ServerProcess[], perServer: number, phase: number): Promise<void> {
  await prepareUsers([lg], [perServer * servers.length]);
  const r = await lg.call({
    cmd: 'connect',
    targets: servers.map((s) => ({ url: wsUrl(s), count: perServer })),
    localAddress: sourceIp(phase, 200),
    concurrency: 50,
    timeoutMs: P.connectTimeoutMs,
    client: 'raw',
  });
  if (r.failed > 0) throw new Error(`warm-up connections failed: ${JSON.stringify(r.errors)}`);
  await lg.call({ cmd: 'close', concurrency: 50, timeoutMs: 15_000 });
  await Promise.all(servers.map((s) => waitConnections(s, 0, 30_000)));
  await sleep(3000);
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

interface MemoryPoint {
  connections: number;
  sample: MemorySample;
}

/**
 * Per-connection memory of one server from samples taken at several connection counts:
 * the slope of memory over connections, which a constant offset (V8 sizing its heap a
 * little differently at one sample) does not move the way it moves a single before/after
 * difference.
 */
function memoryFigures(points: MemoryPoint[]) {
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const conns = last.connections - first.connections;
  const fit = (f: (m: MemorySample) => number) => Math.round(slope(points.map((p) => ({ x: p.connections, y: f(p.sample) }))));
  return {
    connections: last.connections,
    points: points.map((p) => ({
      connections: p.connections,
      rssBytes: p.sample.rssBytes,
      heapUsedBytes: p.sample.heapUsedBytes,
      newSpaceBytes: p.sample.newSpaceBytes,
      asIsRssBytes: p.sample.asIs.rssBytes,
      asIsHeapUsedMinBytes: p.sample.asIs.heapUsedMinBytes,
    })),
    /**
     * The main figures: slopes over the steps after a forced full GC at each; RSS without
     * V8's young generation, whose committed size follows the allocation rate (tens of MB
     * after a connect burst, a few MB when idle), not the number of connections.
     */
    rssPerConnectionBytes: fit((m) => m.rssBytes - m.newSpaceBytes),
    heapPerConnectionBytes: fit((m) => m.heapUsedBytes),
    /** Slope of RSS itself after GC (young generation included). */
    rssWithNewSpacePerConnectionBytes: fit((m) => m.rssBytes),
    /** Slopes without forcing a GC (RSS: last sample; heap: lowest sample). */
    asIsRssPerConnectionBytes: fit((m) => m.asIs.rssBytes),
    asIsHeapPerConnectionBytes: fit((m) => m.asIs.heapUsedMinBytes),
    /** Plain (last − first) / connections, after GC (RSS without the young generation). */
    rssDeltaPerConnectionBytes: Math.round((last.sample.rssBytes - last.sample.newSpaceBytes - (first.sample.rssBytes - first.sample.newSpaceBytes)) / conns),
    heapDeltaPerConnectionBytes: Math.round((last.sample.heapUsedBytes - first.sample.heapUsedBytes) / conns),
  };
}

/** Average cores over several windows, weighted by their length. */
function mergeCpu(reports: CpuReport[]): CpuReport {
  const wall = reports.reduce((a, r) => a + r.wallMs, 0);
  const avg = (f: (r: CpuReport) => number) => Number((reports.reduce((a, r) => a + f(r) * r.wallMs, 0) / wall).toFixed(2));
  const first = reports[0]!;
  return {
    wallMs: wall,
    machineBusyCores: avg((r) => r.machineBusyCores),
    serverCores: Object.fromEntries(Object.keys(first.serverCores).map((k) => [k, avg((r) => r.serverCores[k]!)])),
    loadgenCores: first.loadgenCores.map((_, i) => avg((r) => r.loadgenCores[i]!)),
    backendCores: avg((r) => r.backendCores),
    orchestratorCores: avg((r) => r.orchestratorCores),
    otherCores: avg((r) => r.otherCores),
  };
}

/**
 * Connects idle users to `servers` in `steps` equal steps, sampling every server's memory
 * before the first and after each step has settled.
 */
async function steppedIdle(lgs: Loadgen[], servers: ServerProcess[], perLgPerServer: number[][], steps: number, phase: number, concurrency: number, settleMs: number) {
  const points: MemoryPoint[][] = servers.map(() => []);
  const held = servers.map(() => 0);
  const sampleAll = async () => {
    const samples = await Promise.all(servers.map((s) => sampleMemory(s, 4, 750)));
    samples.forEach((m, j) => points[j]!.push({ connections: held[j]!, sample: m }));
  };
  await sampleAll();
  await prepareUsers(
    lgs,
    perLgPerServer.map((row) => row.reduce((a, b) => a + b, 0)),
  );
  const results: ConnectResult[][] = [];
  const cpu: CpuReport[] = [];
  for (let st = 0; st < steps; st++) {
    const targetsOf = (i: number) => perLgPerServer[i]!.map((count, j) => ({ url: wsUrl(servers[j]!), count: split(count, steps)[st]! }));
    const watch = cpuWatch(servers, lgs);
    results.push(await connectStep(lgs, targetsOf, phase, concurrency, 'raw'));
    cpu.push(watch.stop());
    lgs.forEach((_, i) => targetsOf(i).forEach((t, j) => (held[j]! += t.count)));
    await sleep(settleMs);
    await sampleAll();
    const total = held.reduce((a, b) => a + b, 0);
    log(`  step ${st + 1}/${steps}: ${total} connections held`);
  }
  const connect = connectFigures(results);
  const cpuDuringConnect = mergeCpu(cpu);
  return { connect, cpuDuringConnect, memory: points.map((p) => memoryFigures(p)) };
}

// ---- phases -----------------------------------------------------------------------------

/** Idle connections to one server: memory per connection, and the bare `ws` baseline. */
async function idleOne(kind: 'bare-ws' | 'signaling', phase: number, env: Record<string, string>) {
  const server = kind === 'bare-ws' ? await startBareWs('bare-ws', P.childMaxLifeMs) : await startSignalingNode(`idle-${ipOctet}`, env, P.childMaxLifeMs);
  const lgs = await startLoadgens(P.idle.loadgens);
  try {
    await warmUp(lgs[0]!, [server], P.idle.warmupConnections, phase);
    log(`  ${kind}: ${P.idle.connections} connections from ${lgs.length} load generators in ${P.idle.steps} steps`);
    const r = await steppedIdle(lgs, [server], split(P.idle.connections, lgs.length).map((c) => [c]), P.idle.steps, phase, P.idle.concurrency, P.idle.settleMs);
    const memory = r.memory[0]!;
    log(`  ${kind}: RSS ${fmtB(memory.rssPerConnectionBytes)}/conn, heap ${fmtB(memory.heapPerConnectionBytes)}/conn; closing`);
    const closed = await closeAll(lgs);
    const left = await waitConnections(server, 0, 60_000);
    return {
      server: kind,
      connect: r.connect,
      memory,
      cpuDuringConnect: r.cpuDuringConnect,
      cpuPerConnect: cpuPerOp(r.cpuDuringConnect, r.connect.connected),
      close: { ...closed, serverConnectionsAfter: left },
    };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await server.stop();
  }
}

async function idleMulti(phase: number, env: Record<string, string>) {
  const { nodes: nodeCount, loadgens, connections, concurrency, settleMs, steps } = P.idleMulti;
  const servers: ServerProcess[] = [];
  let lgs: Loadgen[] = [];
  try {
    for (let i = 0; i < nodeCount; i++) servers.push(await startSignalingNode(`multi${i}-${ipOctet}`, env, P.childMaxLifeMs));
    lgs = await startLoadgens(loadgens);
    await warmUp(lgs[0]!, servers, P.idleMulti.warmupConnections, phase);
    // Every load generator spreads its share over every node.
    const perLgPerServer = split(connections, loadgens).map((count) => split(count, nodeCount));
    log(`  ${connections} connections over ${nodeCount} nodes from ${loadgens} load generators in ${steps} steps`);
    const r = await steppedIdle(lgs, servers, perLgPerServer, steps, phase, concurrency, settleMs);
    const perProcess = servers.map((s, j) => ({ node: s.label, ...r.memory[j]! }));
    const sumOver = (f: (p: (typeof perProcess)[number]['points'][number]) => number, k: number) => perProcess.reduce((a, p) => a + f(p.points[k]!), 0);
    const stepsTaken = perProcess[0]!.points.length;
    // The fleet as one: total memory over total connections at each step.
    const fleet = memoryFigures(
      Array.from({ length: stepsTaken }, (_, k) => ({
        connections: sumOver((p) => p.connections, k),
        sample: {
          rssBytes: sumOver((p) => p.rssBytes, k),
          heapUsedBytes: sumOver((p) => p.heapUsedBytes, k),
          newSpaceBytes: sumOver((p) => p.newSpaceBytes, k),
          asIs: { rssBytes: sumOver((p) => p.asIsRssBytes, k), heapUsedMinBytes: sumOver((p) => p.asIsHeapUsedMinBytes, k), heapUsedLastBytes: NaN, samples: 0 },
          connections: sumOver((p) => p.connections, k),
        },
      })),
    );
    const totalRss = sumOver((p) => p.asIsRssBytes, stepsTaken - 1);
    log(`  total server RSS ${fmtB(totalRss)}; ${fmtB(fleet.rssPerConnectionBytes)}/conn (after GC); closing`);
    const closed = await closeAll(lgs);
    const left = await Promise.all(servers.map((s) => waitConnections(s, 0, 90_000)));
    return {
      nodes: nodeCount,
      loadgens,
      connect: r.connect,
      totalServerRssBytes: totalRss,
      totalServerRssBeforeBytes: sumOver((p) => p.asIsRssBytes, 0),
      rssPerConnectionBytes: fleet.rssPerConnectionBytes,
      heapPerConnectionBytes: fleet.heapPerConnectionBytes,
      asIsRssPerConnectionBytes: fleet.asIsRssPerConnectionBytes,
      fleet,
      perProcess,
      cpuDuringConnect: r.cpuDuringConnect,
      cpuPerConnect: cpuPerOp(r.cpuDuringConnect, r.connect.connected),
      close: { ...closed, serverConnectionsAfter: left },
    };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await Promise.all(servers.map((s) => s.stop()));
  }
}

async function connectRate(phase: number, env: Record<string, string>) {
  const server = await startSignalingNode(`rate-${ipOctet}`, env, P.childMaxLifeMs);
  const lgs = await startLoadgens(P.connectRate.loadgens);
  try {
    await sleep(1000);
    const per = split(P.connectRate.connections, lgs.length);
    log(`  ${P.connectRate.connections} JWT connects, at most ${P.connectRate.concurrency} handshakes in flight`);
    await prepareUsers(lgs, per);
    const cpu = cpuWatch([server], lgs);
    const connect = await connectAll(lgs, (i) => [{ url: wsUrl(server), count: per[i]! }], phase, P.connectRate.concurrency, 'raw');
    const cpuReport = cpu.stop();
    log(`  ${connect.perSecond} connects/s, p99 ${connect.latencyMs.p99} ms`);
    const closed = await closeAll(lgs);
    const left = await waitConnections(server, 0, 60_000);
    return { concurrency: P.connectRate.concurrency, connect, cpu: cpuReport, cpuPerConnect: cpuPerOp(cpuReport, connect.connected), close: { ...closed, serverConnectionsAfter: left } };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await server.stop();
  }
}

interface ChatRunSpec {
  run: string;
  mode: 'open' | 'closed';
  rate: number;
  window: number;
  durationMs: number;
  warmupMs: number;
}

async function chatPhase(phase: number, env: Record<string, string>, dbUrl: string) {
  const c = P.chat;
  const server = await startSignalingNode(`chat-${ipOctet}`, env, P.childMaxLifeMs);
  const lgs = await startLoadgens(c.loadgens);
  try {
    const addr = () => getAddress(`0x${randomBytes(20).toString('hex')}`);
    const pairs: ChatPair[] = Array.from({ length: c.pairs }, () => ({ from: addr(), to: addr() }));
    // Pair i sends from load generator i%2 to a recipient on the other one, so every
    // latency sample crosses processes (same machine clock).
    const senderLg = (i: number) => i % lgs.length;
    const receiverLg = (i: number) => (i + 1) % lgs.length;
    const addresses = lgs.map((_, k) => [...pairs.filter((_, i) => senderLg(i) === k).map((p) => p.from), ...pairs.filter((_, i) => receiverLg(i) === k).map((p) => p.to)]);
    await prepareUsers(lgs, addresses.map((a) => a.length), addresses);
    const connect = await connectAll(lgs, (k) => [{ url: wsUrl(server), count: addresses[k]!.length }], phase, 100, 'ws');
    if (connect.failed > 0) throw new Error(`chat users failed to connect: ${JSON.stringify(connect.errors)}`);
    await sleep(1000);

    const runOne = async (asked: ChatRunSpec) => {
      // Short (scaled-down) runs keep a measured window after the warm-up.
      const spec = { ...asked, warmupMs: Math.min(asked.warmupMs, Math.floor(asked.durationMs / 3)) };
      const startAt = nowMs() + 500;
      const m0 = await scrape(server);
      const cpu = cpuWatch([server], lgs);
      const rates = split(spec.rate, lgs.length);
      const sends: ChatSendResult[] = await Promise.all(
        lgs.map((lg, k) =>
          lg.call({
            cmd: 'chat',
            run: spec.run,
            mode: spec.mode,
            pairs: pairs.filter((_, i) => senderLg(i) === k),
            rate: rates[k]!,
            window: spec.window,
            durationMs: spec.durationMs,
            warmupMs: spec.warmupMs,
            textBytes: c.textBytes,
            startAt,
          }),
        ),
      );
      const acked = sends.reduce((a, s) => a + s.acked, 0);
      // Deliveries trail the acks; wait while they keep arriving (bounded) until every
      // acked message is there.
      const hardUntil = Date.now() + 60_000;
      let delivered = -1;
      let progressAt = Date.now();
      while (Date.now() < hardUntil && Date.now() - progressAt < 10_000) {
        const d = (await Promise.all(lgs.map((lg) => lg.call({ cmd: 'count', run: spec.run })))).reduce((a, r) => a + r.received, 0);
        if (d > delivered) progressAt = Date.now();
        delivered = d;
        if (delivered >= acked) break;
        await sleep(100);
      }
      const cpuReport = cpu.stop();
      const m1 = await scrape(server);
      const rx: ChatCollectResult[] = await Promise.all(lgs.map((lg) => lg.call({ cmd: 'collect', run: spec.run })));
      const [row] = await query<{ n: number }>(dbUrl, `select count(*)::int as n from messages where client_id like $1`, [`${spec.run}-%`]);
      const persisted = row?.n ?? -1;
      const sent = sends.reduce((a, s) => a + s.sent, 0);
      const received = rx.reduce((a, r) => a + r.received, 0);
      const measuredSec = (spec.durationMs - spec.warmupMs) / 1000;
      const receivedInWindow = rx.reduce((a, r) => a + r.receivedInWindow, 0);
      const ackedInWindow = sends.reduce((a, s) => a + s.ackedInWindow, 0);
      const batchCount = (m1.values.get('blockrtc_chat_commit_batch_size_count') ?? 0) - (m0.values.get('blockrtc_chat_commit_batch_size_count') ?? 0);
      const batchSum = (m1.values.get('blockrtc_chat_commit_batch_size_sum') ?? 0) - (m0.values.get('blockrtc_chat_commit_batch_size_sum') ?? 0);
      const commitCount = (m1.values.get('blockrtc_chat_commit_seconds_count') ?? 0) - (m0.values.get('blockrtc_chat_commit_seconds_count') ?? 0);
      const commitSum = (m1.values.get('blockrtc_chat_commit_seconds_sum') ?? 0) - (m0.values.get('blockrtc_chat_commit_seconds_sum') ?? 0);
      const result = {
        ...spec,
        offeredPerSecond: spec.mode === 'open' ? spec.rate : null,
        sent,
        acked,
        failed: sends.reduce((a, s) => a + s.failed, 0),
        unanswered: sends.reduce((a, s) => a + s.unanswered, 0),
        errors: sumErrors(...sends.map((s) => s.errors)),
        delivered: received,
        persisted,
        persistedEqualsAcked: persisted === acked,
        deliveredEqualsAcked: received === acked,
        // Arrivals inside the measured window (warm-up end → run end): what the node sustained,
        // not what it was offered (an overloaded node delivers its backlog after the window).
        ackedPerSecond: Math.round(ackedInWindow / measuredSec),
        deliveredPerSecond: Math.round(receivedInWindow / measuredSec),
        deliveryLatencyMs: summarize(rx.flatMap((r) => r.latencies)),
        ackLatencyMs: summarize(sends.flatMap((s) => s.ackLatencies)),
        pacerLagMs: spec.mode === 'open' ? summarize(sends.flatMap((s) => s.pacerLag)) : null,
        avgCommitBatch: batchCount > 0 ? round(batchSum / batchCount, 1) : null,
        avgCommitMs: commitCount > 0 ? round((commitSum / commitCount) * 1000, 2) : null,
        serverEventLoopLagP99Ms: round((m1.values.get('blockrtc_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000, 1),
        cpu: cpuReport,
        cpuPerMessage: cpuPerOp(cpuReport, received),
      };
      log(
        `  ${spec.run}: ${spec.mode === 'open' ? `offered ${spec.rate} msg/s, ` : `window ${spec.window}/sender, `}${result.deliveredPerSecond} msg/s delivered, p50 ${result.deliveryLatencyMs.p50} / p99 ${result.deliveryLatencyMs.p99} / max ${result.deliveryLatencyMs.max} ms; ` +
          `acked ${acked}, delivered ${received}, persisted ${persisted}${result.failed ? `, failed ${result.failed} ${JSON.stringify(result.errors)}` : ''}`,
      );
      await sleep(2000);
      return result;
    };

    const repeat = async <T,>(n: number, one: (i: number) => Promise<T>): Promise<T[]> => {
      const out: T[] = [];
      for (let i = 1; i <= n; i++) out.push(await one(i));
      return out;
    };
    // The median run; of an even number, the worse of the middle two.
    const median = <T,>(runs: T[], worse: (r: T) => number): T | null => [...runs].sort((x, y) => worse(x) - worse(y))[Math.floor(runs.length / 2)] ?? null;
    const fixedRuns = chatRuns.has('fixed')
      ? await repeat(c.repeats, (i) => runOne({ run: `fixed${i}`, mode: 'open', rate: c.fixed.rate, window: 0, durationMs: c.fixed.durationMs, warmupMs: c.fixed.warmupMs }))
      : [];
    const maxRuns = chatRuns.has('max')
      ? await repeat(c.repeats, (i) => runOne({ run: `closedmax${i}`, mode: 'closed', rate: 0, window: c.max.window, durationMs: c.max.durationMs, warmupMs: c.max.warmupMs }))
      : [];
    const fixed = median(fixedRuns, (r) => r.deliveryLatencyMs.p99);
    const max = median(maxRuns, (r) => -r.deliveredPerSecond);
    const capacity = max?.deliveredPerSecond ?? Infinity;
    const rates = [...(max ? c.stepFractionsOfMax.map((f) => Math.round((f * capacity) / 100) * 100) : []), ...c.steps].filter((r, i, all) => r > 0 && all.indexOf(r) === i);
    const steps = [];
    const skippedSteps: { rate: number; reason: string }[] = [];
    for (const rate of chatRuns.has('steps') ? rates : []) {
      if (rate > 1.1 * capacity) {
        skippedSteps.push({ rate, reason: `above the closed-loop maximum (${capacity} msg/s): it would only build a backlog` });
        continue;
      }
      steps.push(await runOne({ run: `open${rate}`, mode: 'open', rate, window: 0, durationMs: c.stepDurationMs, warmupMs: 2000 }));
    }
    const closed = await closeAll(lgs);
    return { pairs: c.pairs, users: c.pairs * 2, loadgens: lgs.length, textBytes: c.textBytes, connect, fixed, max, fixedRuns, maxRuns, steps, skippedSteps, close: closed };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await server.stop();
  }
}

// ---- main -------------------------------------------------------------------------------

async function postgresVersion(): Promise<string> {
  try {
    const [r] = await query<{ v: string }>(PG_ADMIN_URL, "select current_setting('server_version') as v");
    return r?.v ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function redisVersion(): Promise<string> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    return /redis_version:(\S+)/.exec(await r.info('server'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  } finally {
    r.disconnect();
  }
}

function gitState(): { commit: string; dirty: boolean } | null {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

const fmtB = (b: number) => (Math.abs(b) >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(1)} MiB` : Math.abs(b) >= 1024 ? `${(b / 1024).toFixed(2)} KiB` : `${Math.round(b)} B`);

async function main(): Promise<number> {
  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const out: Record<string, unknown> = {
    benchmark: 'signaling',
    startedAt,
    machine: {
      hostname: hostname(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      totalMemoryBytes: totalmem(),
      node: process.version,
      platform: `${process.platform} ${release()}`,
      loadavgAtStart: loadavg().map((v) => round(v, 2)),
      postgres: await postgresVersion(),
      redis: await redisVersion(),
    },
    code: gitState(),
    parameters: { scale, phases: [...only], ...P, sourceAddresses: `127.${ipOctet}.<phase>.<loadgen+1>` },
    notes: [
      'Per-connection memory: connections are opened in equal steps and the server is sampled before the first and after each step (after settling); the figure is the least-squares slope of memory over connections. RSS is VmRSS of the server process minus the committed size of V8\'s young generation (which follows the allocation rate, not the connection count); heap is blockrtc_nodejs_heap_size_used_bytes. Samples are read after a forced full GC (servers run with --expose-gc and bench/signaling/gc-on-signal.mjs preloaded; SIGUSR2 → gc()). "asIs" slopes are read before that GC; "rssWithNewSpace" keeps the young generation; "rssDelta" is plain (last − first) / connections.',
      'Latencies use one machine clock: send time is written into the message text by the sending load generator, arrival time is taken by the receiving one.',
      'CPU figures are averages over each measured window from /proc; "other" is everything that is neither a bench process nor PostgreSQL/Redis.',
    ],
  };
  const db = await createTestDatabase('bench');
  const prefix = testPrefix('bench');
  out.serverEnvironment = { ...nodeEnvBase(db.url, prefix), JWT_SECRET: '<random per run>', LOG_LEVEL: 'warn' };
  let failed = false;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    killAll();
    await clearPrefix(prefix).catch((e: unknown) => console.error('clearing the Redis prefix failed:', e));
    await db.drop().catch((e: unknown) => console.error('dropping the database failed:', e));
  };
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping children, dropping the database`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The whole bench is bounded too, whatever a phase does.
  setTimeout(() => {
    console.error(`bench still running after ${P.benchMaxMs / 60_000} min: stopping`);
    void cleanup().finally(() => process.exit(1));
  }, P.benchMaxMs).unref();

  try {
    await migrate(db.url);
    const env = nodeEnvBase(db.url, prefix);
    const phases: [Phase, string, () => Promise<unknown>][] = [
      ['idle-bare', 'idleBareWs', () => idleOne('bare-ws', 1, env)],
      ['idle', 'idleSignaling', () => idleOne('signaling', 2, env)],
      ['idle-multi', 'idleMulti', () => idleMulti(3, env)],
      ['connect-rate', 'connectRate', () => connectRate(4, env)],
      ['chat', 'chat', () => chatPhase(5, env, db.url)],
    ];
    for (const [name, key, fn] of phases) {
      if (!only.has(name)) continue;
      log(`phase ${name}`);
      const p0 = Date.now();
      try {
        out[key] = { ...(await fn() as object), phaseSeconds: Math.round((Date.now() - p0) / 1000) };
      } catch (err) {
        failed = true;
        console.error(`phase ${name} failed:`, err);
        out[key] = { error: err instanceof Error ? err.message : String(err) };
        killAll();
      }
      await sleep(1000);
    }
  } finally {
    await cleanup();
  }
  out.finishedAt = new Date().toISOString();
  out.durationSeconds = Math.round((Date.now() - t0) / 1000);
  out.goals = goals(out);
  out.cpuContention = contention(out);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  printSummary(out);
  console.log(`\nwrote ${OUT} (${out.durationSeconds} s)`);
  return failed ? 1 : 0;
}

// ---- report -----------------------------------------------------------------------------

interface IdleLike {
  memory?: { rssPerConnectionBytes: number; heapPerConnectionBytes: number; asIsRssPerConnectionBytes: number; connections: number };
  connect?: ConnectFigures;
  cpuPerConnect?: ReturnType<typeof cpuPerOp>;
}
interface ChatLike {
  fixed?: { deliveryLatencyMs: Summary; persistedEqualsAcked: boolean; deliveredPerSecond: number };
  max?: { deliveredPerSecond: number; deliveryLatencyMs: Summary; persistedEqualsAcked: boolean };
  steps?: { rate: number; deliveredPerSecond: number; deliveryLatencyMs: Summary; persistedEqualsAcked: boolean }[];
}

/**
 * Other jobs' CPU use during each measured window. The machine has two cores; when other
 * processes take a good part of them, throughput and latency figures are CPU-starved and
 * the CPU-time-per-operation figures are the ones to compare between runs.
 */
function contention(out: Record<string, unknown>) {
  const windows: Record<string, number> = {};
  const walk = (v: unknown, path: string) => {
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.otherCores === 'number' && typeof o.machineBusyCores === 'number') {
      windows[path] = o.otherCores;
      return;
    }
    for (const [k, x] of Object.entries(o)) walk(x, path ? `${path}.${k}` : k);
  };
  for (const k of ['idleBareWs', 'idleSignaling', 'idleMulti', 'connectRate', 'chat']) walk(out[k], k);
  const values = Object.values(windows);
  const maxOther = values.length ? Math.max(...values) : 0;
  return {
    otherProcessesCoresByWindow: windows,
    maxOtherCores: maxOther,
    starved: maxOther >= 0.25,
    note:
      maxOther >= 0.25
        ? `Other processes used up to ${maxOther} of ${cpus().length} cores during measured windows: throughput, rates and latencies are CPU-starved; compare CPU time per operation instead, or re-run on a quiet machine.`
        : 'No significant CPU use by other processes during measured windows.',
  };
}

function goals(out: Record<string, unknown>) {
  const idle = out.idleSignaling as IdleLike | undefined;
  const chat = out.chat as ChatLike | undefined;
  const bestOpen = Math.max(0, ...(chat?.steps ?? []).filter((s) => s.deliveryLatencyMs.p99 < 50 && s.persistedEqualsAcked).map((s) => s.deliveredPerSecond));
  return {
    idleRssPerConnection: idle?.memory ? { goalBytes: 6 * 1024, measuredBytes: idle.memory.rssPerConnectionBytes, met: idle.memory.rssPerConnectionBytes <= 6 * 1024 } : null,
    chatP99At5000: chat?.fixed ? { goalMs: 50, measuredMs: chat.fixed.deliveryLatencyMs.p99, met: chat.fixed.deliveryLatencyMs.p99 < 50 && chat.fixed.persistedEqualsAcked } : null,
    chatThroughput: chat?.max
      ? { goalPerSecond: 10_000, closedLoopPerSecond: chat.max.deliveredPerSecond, openLoopWithP99Under50msPerSecond: bestOpen, met: Math.max(chat.max.deliveredPerSecond, bestOpen) >= 10_000 }
      : null,
  };
}

function printSummary(out: Record<string, unknown>): void {
  const m = out.machine as { cpus: number; node: string; loadavgAtStart: number[] };
  console.log(`\n=== BlockRTC signaling bench (${m.cpus} CPUs, Node ${m.node}, load at start ${m.loadavgAtStart.join(' ')}) ===`);
  console.log(`(memory per connection: slope over connection steps, after a forced GC, RSS without V8's young generation)`);
  const idleLine = (name: string, r: IdleLike | undefined) => {
    if (!r?.memory || !r.connect) return;
    console.log(
      `${name}: ${r.memory.connections} idle connections — RSS ${fmtB(r.memory.rssPerConnectionBytes)}/conn, heap ${fmtB(r.memory.heapPerConnectionBytes)}/conn (no GC forced: RSS ${fmtB(r.memory.asIsRssPerConnectionBytes)}/conn) ` +
        `(connected at ${r.connect.perSecond}/s, ${r.connect.failed} failed; CPU per connect: server ${r.cpuPerConnect?.serverUs} µs, load generator ${r.cpuPerConnect?.loadgenUs} µs)`,
    );
  };
  idleLine('bare ws  ', out.idleBareWs as IdleLike | undefined);
  idleLine('signaling', out.idleSignaling as IdleLike | undefined);
  const multi = out.idleMulti as
    | { connect?: ConnectFigures; nodes: number; totalServerRssBytes: number; rssPerConnectionBytes: number; heapPerConnectionBytes: number; perProcess: { node: string; rssPerConnectionBytes: number; connections: number }[] }
    | undefined;
  if (multi?.connect) {
    console.log(
      `multi-node: ${multi.connect.connected} connections on ${multi.nodes} nodes — total server RSS ${fmtB(multi.totalServerRssBytes)}; RSS ${fmtB(multi.rssPerConnectionBytes)}/conn, heap ${fmtB(multi.heapPerConnectionBytes)}/conn ` +
        `(per node: ${multi.perProcess.map((p) => fmtB(p.rssPerConnectionBytes)).join(', ')})`,
    );
  }
  const rate = out.connectRate as { connect?: ConnectFigures; concurrency: number; cpu: CpuReport; cpuPerConnect: ReturnType<typeof cpuPerOp> } | undefined;
  if (rate?.connect) {
    console.log(
      `connect rate: ${rate.connect.perSecond} JWT connects/s over ${rate.connect.connected} (≤${rate.concurrency} in flight), latency p50 ${rate.connect.latencyMs.p50} / p99 ${rate.connect.latencyMs.p99} ms; ` +
        `server ${Object.values(rate.cpu.serverCores)[0]} cores (${rate.cpuPerConnect.serverUs} µs/connect), load generators ${rate.cpu.loadgenCores.join('+')} cores (${rate.cpuPerConnect.loadgenUs} µs/connect), other jobs ${rate.cpu.otherCores} cores`,
    );
  }
  const chat = out.chat as (ChatLike & { pairs: number }) | undefined;
  type Run = { run: string; mode: 'open' | 'closed'; rate: number; window: number; deliveredPerSecond: number; delivered: number; acked: number; persisted: number; deliveryLatencyMs: Summary; cpu: CpuReport; cpuPerMessage: ReturnType<typeof cpuPerOp> };
  const chatLine = (r: Run | undefined) => {
    if (!r) return;
    console.log(
      `chat ${r.run.padEnd(10)} (${r.mode === 'open' ? `open loop, offered ${r.rate}/s` : `closed loop, ${r.window} in flight per sender`}): ${r.deliveredPerSecond} msg/s delivered — latency p50 ${r.deliveryLatencyMs.p50} / p95 ${r.deliveryLatencyMs.p95} / p99 ${r.deliveryLatencyMs.p99} / max ${r.deliveryLatencyMs.max} ms; ` +
        `acked ${r.acked}, delivered ${r.delivered}, persisted ${r.persisted}; cores: server ${Object.values(r.cpu.serverCores)[0]} (${r.cpuPerMessage.serverUs} µs/msg), load generators ${r.cpu.loadgenCores.join('+')}, pg+redis ${r.cpu.backendCores}, other jobs ${r.cpu.otherCores}`,
    );
  };
  if (chat) {
    const runs = chat as unknown as { fixedRuns?: Run[]; maxRuns?: Run[]; fixed?: Run; max?: Run };
    for (const r of runs.fixedRuns ?? []) chatLine(r);
    for (const r of runs.maxRuns ?? []) chatLine(r);
    console.log(`median runs (the figures): ${runs.fixed?.run ?? '-'}, ${runs.max?.run ?? '-'}`);
    for (const s of chat.steps ?? []) chatLine(s as unknown as Run);
  }
  console.log('goals:', JSON.stringify(out.goals));
  const c = out.cpuContention as { starved: boolean; note: string };
  if (c.starved) console.log(`WARNING: ${c.note}`);
}

process.on('exit', killAll);
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('bench failed:', err);
    killAll();
    process.exit(1);
  },
);
