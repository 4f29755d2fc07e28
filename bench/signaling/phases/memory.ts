/**
 * Memory per idle connection: connections are opened in equal steps, every server is
 * sampled before the first step and after each one has settled, and the figure is the
 * slope of memory over connections.
 */
import type { ConnectResult } from '../ipc.ts';
import { log } from '../log.ts';
import { cpuWatch, mergeCpu, sampleMemory, type CpuReport, type MemorySample } from '../measure.ts';
import { sleep, type Loadgen, type ServerProcess } from '../procs.ts';
import { split } from '../stats.ts';
import { connectFigures, connectStep, prepareUsers } from './connections.ts';
import { wsUrl, type BenchContext } from './context.ts';

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

export interface MemoryPoint {
  connections: number;
  sample: MemorySample;
}

/**
 * Per-connection memory of one server from samples taken at several connection counts:
 * the slope of memory over connections, which a constant offset (V8 sizing its heap a
 * little differently at one sample) does not move the way it moves a single before/after
 * difference.
 */
export function memoryFigures(points: MemoryPoint[]) {
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

/**
 * Connects idle users to `servers` in `steps` equal steps, sampling every server's memory
 * before the first and after each step has settled.
 */
export async function steppedIdle(
  ctx: BenchContext,
  lgs: Loadgen[],
  servers: ServerProcess[],
  perLgPerServer: number[][],
  steps: number,
  phase: number,
  concurrency: number,
  settleMs: number,
) {
  const points: MemoryPoint[][] = servers.map(() => []);
  const held = servers.map(() => 0);
  const sampleAll = async () => {
    const samples = await Promise.all(servers.map((s) => sampleMemory(s, 4, 750)));
    samples.forEach((m, j) => points[j]!.push({ connections: held[j]!, sample: m }));
  };
  await sampleAll();
  await prepareUsers(
    ctx,
    lgs,
    perLgPerServer.map((row) => row.reduce((a, b) => a + b, 0)),
  );
  const results: ConnectResult[][] = [];
  const cpu: CpuReport[] = [];
  for (let st = 0; st < steps; st++) {
    const targetsOf = (i: number) => perLgPerServer[i]!.map((count, j) => ({ url: wsUrl(servers[j]!), count: split(count, steps)[st]! }));
    const watch = cpuWatch(servers, lgs);
    results.push(await connectStep(ctx, lgs, targetsOf, phase, concurrency, 'raw'));
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
