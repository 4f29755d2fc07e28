/**
 * Phases `idle-bare` and `idle`: idle connections to one server, memory per connection;
 * a bare `ws` server gives the baseline a signaling node is compared with.
 */
import { fmtB, log } from '../log.ts';
import { cpuPerOp, waitConnections } from '../measure.ts';
import { rssBytes, sleep, startBareWs, startSignalingNode } from '../procs.ts';
import { split } from '../stats.ts';
import { closeAll, startLoadgens, warmUp } from './connections.ts';
import type { BenchContext } from './context.ts';
import { steppedIdle } from './memory.ts';

export async function idleOne(ctx: BenchContext, kind: 'bare-ws' | 'signaling', phase: number) {
  const { P } = ctx;
  const server = kind === 'bare-ws' ? await startBareWs('bare-ws', P.childMaxLifeMs) : await startSignalingNode(`idle-${ctx.ipOctet}`, ctx.env, P.childMaxLifeMs);
  const lgs = await startLoadgens(ctx, P.idle.loadgens);
  try {
    // What the process holds before any connection: the code and libraries its role loads.
    await sleep(2000);
    await server.gc();
    const startedRssBytes = rssBytes(server.pid);
    log(`  ${kind}: RSS ${fmtB(startedRssBytes)} after start, before any connection`);
    await warmUp(ctx, lgs[0]!, [server], P.idle.warmupConnections, phase);
    log(`  ${kind}: ${P.idle.connections} connections from ${lgs.length} load generators in ${P.idle.steps} steps`);
    const r = await steppedIdle(ctx, lgs, [server], split(P.idle.connections, lgs.length).map((c) => [c]), P.idle.steps, phase, P.idle.concurrency, P.idle.settleMs);
    const memory = r.memory[0]!;
    log(`  ${kind}: RSS ${fmtB(memory.rssPerConnectionBytes)}/conn, heap ${fmtB(memory.heapPerConnectionBytes)}/conn; closing`);
    const closed = await closeAll(lgs);
    const left = await waitConnections(server, 0, 60_000);
    return {
      server: kind,
      startedRssBytes,
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
