/** What the orchestrator reads from the servers under test and from the machine. */
import { backendPids, cpuMs, machineCpuMs, rssBytes, sleep, type Loadgen, type ServerProcess } from './procs.ts';

export interface Scrape {
  heapUsedBytes: number;
  connections: number;
  /** Any other `blockrtc_*` sample of interest, by full name (with labels). */
  values: Map<string, number>;
}

export async function scrape(server: ServerProcess): Promise<Scrape> {
  const res = await fetch(`${server.metricsUrl}/metrics`);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('blockrtc_')) continue;
    const sp = line.lastIndexOf(' ');
    values.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return { heapUsedBytes: values.get('blockrtc_nodejs_heap_size_used_bytes') ?? NaN, connections: values.get('blockrtc_ws_connections') ?? NaN, values };
}

export interface MemorySample {
  /** After a forced full GC: reproducible, the figures per connection are computed from these. */
  rssBytes: number;
  heapUsedBytes: number;
  /**
   * Committed size of V8's young generation: it grows and shrinks by tens of MB with the
   * allocation rate, whatever the number of connections, and so moves RSS with it.
   */
  newSpaceBytes: number;
  /** As the process was, without forcing a GC (last of several samples; heap: lowest seen). */
  asIs: { rssBytes: number; heapUsedMinBytes: number; heapUsedLastBytes: number; samples: number };
  connections: number;
}

/**
 * Samples as the process is (what monitoring would show), then forces a full GC and reads
 * again: without that, a figure depends on when V8 last collected the garbage of the
 * connect burst.
 */
export async function sampleMemory(server: ServerProcess, samples: number, intervalMs: number): Promise<MemorySample> {
  let heapMin = Infinity;
  let last: Scrape | null = null;
  let rss = NaN;
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(intervalMs);
    last = await scrape(server);
    heapMin = Math.min(heapMin, last.heapUsedBytes);
    rss = rssBytes(server.pid);
  }
  await server.gc();
  const after = await scrape(server);
  return {
    rssBytes: rssBytes(server.pid),
    heapUsedBytes: after.heapUsedBytes,
    newSpaceBytes: (after.values.get('blockrtc_nodejs_heap_space_size_total_bytes{space="new"}') ?? 0) + (after.values.get('blockrtc_nodejs_heap_space_size_total_bytes{space="new_large_object"}') ?? 0),
    asIs: { rssBytes: rss, heapUsedMinBytes: heapMin, heapUsedLastBytes: last!.heapUsedBytes, samples },
    connections: after.connections,
  };
}

/** Polls the server's connection gauge until it reaches `n`. */
export async function waitConnections(server: ServerProcess, n: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let seen = NaN;
  while (Date.now() < until) {
    seen = (await scrape(server)).connections;
    if (seen === n) return seen;
    await sleep(250);
  }
  return seen;
}

export interface CpuReport {
  wallMs: number;
  /** Average cores busy over the interval, per role. */
  machineBusyCores: number;
  serverCores: Record<string, number>;
  loadgenCores: number[];
  /** PostgreSQL and Redis. */
  backendCores: number;
  postgresCores: number;
  redisCores: number;
  orchestratorCores: number;
  /** Everything else on the machine: a sign of CPU contention from other jobs. */
  otherCores: number;
}

const r2 = (v: number) => Number(v.toFixed(2));

/** CPU used per role between start() and the returned stop(). */
export function cpuWatch(servers: ServerProcess[], loadgens: Loadgen[]): { stop(): CpuReport } {
  const t0 = performance.now();
  const m0 = machineCpuMs();
  const s0 = servers.map((s) => cpuMs(s.pid));
  const l0 = loadgens.map((l) => cpuMs(l.pid));
  const b0 = new Map(backendPids().map((p) => [p.pid, cpuMs(p.pid)]));
  const o0 = process.cpuUsage();
  return {
    stop() {
      const wall = performance.now() - t0;
      const m1 = machineCpuMs();
      const serverCores: Record<string, number> = {};
      let ours = 0;
      servers.forEach((s, i) => {
        const d = cpuMs(s.pid) - s0[i]!;
        ours += d;
        serverCores[s.label] = r2(d / wall);
      });
      const loadgenCores = loadgens.map((l, i) => {
        const d = cpuMs(l.pid) - l0[i]!;
        ours += d;
        return r2(d / wall);
      });
      const backend = { postgres: 0, redis: 0 };
      for (const p of backendPids()) backend[p.kind] += cpuMs(p.pid) - (b0.get(p.pid) ?? 0);
      const o = process.cpuUsage(o0);
      const orch = (o.user + o.system) / 1000;
      const busy = m1.busy - m0.busy;
      const backendMs = backend.postgres + backend.redis;
      return {
        wallMs: Math.round(wall),
        machineBusyCores: r2(busy / wall),
        serverCores,
        loadgenCores,
        backendCores: r2((backend.postgres + backend.redis) / wall),
        postgresCores: r2(backend.postgres / wall),
        redisCores: r2(backend.redis / wall),
        orchestratorCores: r2(orch / wall),
        otherCores: r2(Math.max(0, busy - ours - backendMs - orch) / wall),
      };
    },
  };
}

/** CPU time per operation (µs): comparable between runs even when other jobs take cores. */
export function cpuPerOp(cpu: CpuReport, ops: number) {
  const us = (cores: number) => Math.round((cores * cpu.wallMs * 1000) / Math.max(1, ops));
  return {
    serverUs: us(Object.values(cpu.serverCores).reduce((a, b) => a + b, 0)),
    loadgenUs: us(cpu.loadgenCores.reduce((a, b) => a + b, 0)),
    backendUs: us(cpu.backendCores),
    postgresUs: us(cpu.postgresCores ?? 0),
    redisUs: us(cpu.redisCores ?? 0),
  };
}

export type CpuPerOp = ReturnType<typeof cpuPerOp>;

/** Average cores over several windows, weighted by their length. */
export function mergeCpu(reports: CpuReport[]): CpuReport {
  const wall = reports.reduce((a, r) => a + r.wallMs, 0);
  const avg = (f: (r: CpuReport) => number) => Number((reports.reduce((a, r) => a + f(r) * r.wallMs, 0) / wall).toFixed(2));
  const first = reports[0]!;
  return {
    wallMs: wall,
    machineBusyCores: avg((r) => r.machineBusyCores),
    serverCores: Object.fromEntries(Object.keys(first.serverCores).map((k) => [k, avg((r) => r.serverCores[k]!)])),
    loadgenCores: first.loadgenCores.map((_, i) => avg((r) => r.loadgenCores[i]!)),
    backendCores: avg((r) => r.backendCores),
    postgresCores: avg((r) => r.postgresCores),
    redisCores: avg((r) => r.redisCores),
    orchestratorCores: avg((r) => r.orchestratorCores),
    otherCores: avg((r) => r.otherCores),
  };
}
