/** The console summary of fleet.json: the figures the sizing guide cites, a few lines per phase. */
import { fmtB } from '../signaling/log.ts';

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});
const n = (v: unknown): string => (typeof v === 'number' ? String(v) : '-');
const b = (v: unknown): string => (typeof v === 'number' ? fmtB(v) : '-');

export function printSummary(r: Obj): void {
  const lines: string[] = ['', `fleet bench: ${n(o(r.machine).cpus)} cores, load ${JSON.stringify(o(r.machine).loadavgAtStart)}, Redis Cluster ${String(o(o(r.machine).redisCluster).version ?? '-')}, PostgreSQL ${String(o(r.machine).postgres)}, scale ${n(o(r.parameters).scale)}`];
  const err = (k: string) => (o(r[k]).error ? lines.push(`${k}: FAILED ${String(o(r[k]).error).split('\n')[0]}`) : 0);
  if (r.connections) {
    err('connections');
    const c = o(r.connections);
    const pc = o(c.perConnection);
    const pr = o(c.presence);
    if (c.connected !== undefined) {
      lines.push(`connections: ${n(c.connected)}/${n(c.requested)} over ${n(c.nodes)} nodes, ${n(c.connectsPerSecond)}/s, ${n(c.redisCommandsPerConnect)} Redis commands per connect`);
      lines.push(`  per connection: server RSS ${b(pc.serverRssBytes)} (median of nodes), load generator ${b(pc.loadgenRssBytes)}, kernel TCP ${b(pc.kernelTcpBytes)}; Redis ${b(pc.redisBytesPerOnlineUser)} per online user`);
      lines.push(`  presence: ${pr.ok ? 'ok' : 'FAILED'} (${n(o(pr.events).sawOfflineThenOnline)}/${n(o(pr.events).expected)} contacts seen offline then online); memory bound here ≈ ${n(o(c.limits).connectionsByMemory)} connections`);
    }
  }
  if (r.chat) {
    err('chat');
    if (o(r.chat).perNodeAtP99Under50) lines.push(`chat (CPU per message net of the idle fleet): per node at p99 < 50 ms ${JSON.stringify(o(r.chat).perNodeAtP99Under50)}`);
    for (const byN of (o(r.chat).byNodes as Obj[] | undefined) ?? []) {
      for (const at of (byN.atRates as Obj[] | undefined) ?? []) {
        const m = o(at.median);
        const cpu = o(m.cpuPerMessageNetOfIdleUs);
        const pg = o(m.postgres);
        lines.push(
          `chat ${n(byN.nodes)} node(s) @ ${n(at.rate)}/s: ${n(m.deliveredPerSecond)}/s delivered, p50 ${n(o(m.deliveryLatencyMs).p50)} / p99 ${n(o(m.deliveryLatencyMs).p99)} ms; CPU/msg nodes ${n(cpu.serverUs)} µs, Redis ${n(cpu.clusterRedisUs)} µs, PG ${n(cpu.postgresUs)} µs; ${n(o(m.redis).commandsPerMessage)} Redis cmd, ${n(pg.rowsPerMessage)} PG rows, ${n(pg.walBytesPerMessage)} WAL B per message`,
        );
      }
    }
  }
  if (r.storm) {
    err('storm');
    const s = o(r.storm);
    if (s.reconnect) {
      const rc = o(s.reconnect);
      lines.push(`storm: ${n(s.victimUsers)} users' host SIGKILLed; ${n(rc.reconnected)}/${n(rc.dropped)} back in ${n(rc.allBackMs)} ms, peak ${n(rc.peakConnectsPerSecond)} connects/s; Redis peak ${n(o(s.redis).peakCommandsPerSecond)} cmd/s, ${n(o(s.redis).commandsPerReconnect)} per reconnect`);
      lines.push(`  chat: ${o(s.chat).ok ? 'ok' : 'FAILED'} (acked ${n(o(s.chat).acked)}, lost ${n(o(s.chat).lostAcked)}, not stored ${n(o(s.chat).ackedNotStored)}, ${n(o(s.chat).receivedBySync)} by sync); presence ${o(s.presence).ok ? 'ok' : 'FAILED'}`);
    }
  }
  if (r.media) {
    err('media');
    const m = o(r.media);
    if (m.callsUp !== undefined)
      lines.push(`media: ${n(m.callsUp)}/${n(m.calls)} calls up over ${n(m.sfuProcesses)} SFUs, setup p50 ${n(o(m.setupMs).p50)} / p99 ${n(o(m.setupMs).p99)} ms, loss max ${n(o(m.lossPct).max)} %; ${n(m.consumers)} consumers, ${n(m.consumersPerWorkerCore)} per worker-core, ${n(m.cpuPerForwardedPacketUs)} µs CPU per forwarded packet`);
  }
  console.log(lines.join('\n'));
}
