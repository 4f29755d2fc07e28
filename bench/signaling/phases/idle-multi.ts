/**
 * Phase `idle-multi`: idle connections spread over several signaling nodes sharing
 * PostgreSQL and Redis; memory per connection of each node and of the fleet as one.
 */
import { fmtB, log } from '../log.ts';
import { cpuPerOp, waitConnections } from '../measure.ts';
import { startSignalingNode, type Loadgen, type ServerProcess } from '../procs.ts';
import { split } from '../stats.ts';
import { closeAll, startLoadgens, warmUp } from './connections.ts';
import type { BenchContext } from './context.ts';
import { memoryFigures, steppedIdle } from './memory.ts';

export async function idleMulti(ctx: BenchContext, phase: number) {
  const { P } = ctx;
  const { nodes: nodeCount, loadgens, connections, concurrency, settleMs, steps } = P.idleMulti;
  const servers: ServerProcess[] = [];
  let lgs: Loadgen[] = [];
  try {
    for (let i = 0; i < nodeCount; i++) servers.push(await startSignalingNode(`multi${i}-${ctx.ipOctet}`, ctx.env, P.childMaxLifeMs));
    lgs = await startLoadgens(ctx, loadgens);
    await warmUp(ctx, lgs[0]!, servers, P.idleMulti.warmupConnections, phase);
    // Every load generator spreads its share over every node.
    const perLgPerServer = split(connections, loadgens).map((count) => split(count, nodeCount));
    log(`  ${connections} connections over ${nodeCount} nodes from ${loadgens} load generators in ${steps} steps`);
    const r = await steppedIdle(ctx, lgs, servers, perLgPerServer, steps, phase, concurrency, settleMs);
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
