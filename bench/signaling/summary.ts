/** The console summary of a finished report: one line per phase and chat run, the goals, a contention warning. */
import { fmtB } from './log.ts';
import type { CpuPerOp, CpuReport } from './measure.ts';
import type { ConnectFigures } from './phases/connections.ts';
import type { ChatLike, IdleLike, Report } from './report-shape.ts';
import type { Summary } from './stats.ts';

export function printSummary(out: Report): void {
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
  const rate = out.connectRate as { connect?: ConnectFigures; concurrency: number; cpu: CpuReport; cpuPerConnect: CpuPerOp } | undefined;
  if (rate?.connect) {
    console.log(
      `connect rate: ${rate.connect.perSecond} JWT connects/s over ${rate.connect.connected} (≤${rate.concurrency} in flight), latency p50 ${rate.connect.latencyMs.p50} / p99 ${rate.connect.latencyMs.p99} ms; ` +
        `server ${Object.values(rate.cpu.serverCores)[0]} cores (${rate.cpuPerConnect.serverUs} µs/connect), load generators ${rate.cpu.loadgenCores.join('+')} cores (${rate.cpuPerConnect.loadgenUs} µs/connect), other jobs ${rate.cpu.otherCores} cores`,
    );
  }
  const chat = out.chat as (ChatLike & { pairs: number }) | undefined;
  type Run = { run: string; mode: 'open' | 'closed'; rate: number; window: number; deliveredPerSecond: number; delivered: number; acked: number; persisted: number; deliveryLatencyMs: Summary; cpu: CpuReport; cpuPerMessage: CpuPerOp };
  const chatLine = (r: Run | undefined, label = 'chat') => {
    if (!r) return;
    console.log(
      `${label} ${r.run.padEnd(10)} (${r.mode === 'open' ? `open loop, offered ${r.rate}/s` : `closed loop, ${r.window} in flight per sender`}): ${r.deliveredPerSecond} msg/s delivered — latency p50 ${r.deliveryLatencyMs.p50} / p95 ${r.deliveryLatencyMs.p95} / p99 ${r.deliveryLatencyMs.p99} / max ${r.deliveryLatencyMs.max} ms; ` +
        `acked ${r.acked}, delivered ${r.delivered}, persisted ${r.persisted}; cores: server ${Object.values(r.cpu.serverCores)[0]} (${r.cpuPerMessage.serverUs} µs/msg), load generators ${r.cpu.loadgenCores.join('+')}, ` +
        `postgres ${r.cpu.postgresCores} (${r.cpuPerMessage.postgresUs} µs/msg), redis ${r.cpu.redisCores} (${r.cpuPerMessage.redisUs} µs/msg), other jobs ${r.cpu.otherCores}`,
    );
  };
  if (chat) {
    const runs = chat as unknown as { fixedRuns?: Run[]; maxRuns?: Run[]; fixed?: Run; max?: Run };
    for (const r of runs.fixedRuns ?? []) chatLine(r);
    for (const r of runs.maxRuns ?? []) chatLine(r);
    console.log(`median runs (the figures): ${runs.fixed?.run ?? '-'}, ${runs.max?.run ?? '-'}`);
    for (const s of chat.steps ?? []) chatLine(s as unknown as Run);
  }
  const receipts = out.chatReceipts as (ChatLike & { fixedRuns?: Run[]; maxRuns?: Run[] }) | undefined;
  if (receipts) {
    console.log('chat with receipts (1,000 users, latency from the scheduled send):');
    for (const r of [...(receipts.fixedRuns ?? []), ...(receipts.maxRuns ?? []), ...((receipts.steps ?? []) as unknown as Run[])]) chatLine(r, 'receipts');
  }
  console.log('goals:', JSON.stringify(out.goals));
  const c = out.cpuContention as { starved: boolean; note: string };
  if (c.starved) console.log(`WARNING: ${c.note}`);
}

