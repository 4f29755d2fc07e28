/**
 * Phase `connect-rate`: how many JWT-authenticated WebSocket connects per second one
 * signaling node accepts, with their latency and CPU cost.
 */
import { log } from '../log.ts';
import { cpuPerOp, cpuWatch, waitConnections } from '../measure.ts';
import { sleep, startSignalingNode } from '../procs.ts';
import { split } from '../stats.ts';
import { closeAll, connectAll, prepareUsers, startLoadgens } from './connections.ts';
import { wsUrl, type BenchContext } from './context.ts';

export async function connectRate(ctx: BenchContext, phase: number) {
  const { P } = ctx;
  const server = await startSignalingNode(`rate-${ctx.ipOctet}`, ctx.env, P.childMaxLifeMs);
  const lgs = await startLoadgens(ctx, P.connectRate.loadgens);
  try {
    await sleep(1000);
    const per = split(P.connectRate.connections, lgs.length);
    log(`  ${P.connectRate.connections} JWT connects, at most ${P.connectRate.concurrency} handshakes in flight`);
    await prepareUsers(ctx, lgs, per);
    const cpu = cpuWatch([server], lgs);
    const connect = await connectAll(ctx, lgs, (i) => [{ url: wsUrl(server), count: per[i]! }], phase, P.connectRate.concurrency, 'raw');
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
