/**
 * Phase `storm`: a host of signaling processes holding the victim users (≥50,000 at full
 * scale) is SIGKILLed while chat flows. Its clients come back to the surviving nodes with
 * the web SDK's backoff and jitter. Figures: time until all are connected again, peak
 * connects/s, Redis ops/s; checks: every acked message is in PostgreSQL and reached its
 * recipient (live or by `chat.sync` after the reconnect), and the victim users that did not
 * come back are offline after the presence TTL while those that did are online.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'ethers';
import { query } from '../../../testkit/pg.ts';
import type { ReconnectSpec, ReconnectStats } from '../../signaling/ipc.ts';
import { log } from '../../signaling/log.ts';
import { sleep, type Loadgen, type ServerProcess } from '../../signaling/procs.ts';
import { nowMs, split, summarize } from '../../signaling/stats.ts';
import type { MasterInfo } from '../cluster.ts';
import { fleetCpuWatch, prepare, sourceIp, startLoadgens, startNodes, wsUrl, type FleetContext } from '../context.ts';
import { PER_PROCESS } from '../parameters.ts';
import { addContacts, queryPresence } from '../presence.ts';

const PHASE = 3;
const WATCHERS = 2;

const addr = () => getAddress(`0x${randomBytes(20).toString('hex')}`);

/** Redis INFO once a second while the storm runs: ops/s and commands per second over the masters. */
function redisSampler(ctx: FleetContext) {
  const samples: { at: number; opsPerSec: number; commandsPerSec: number }[] = [];
  let last: MasterInfo[] | null = null;
  let lastAt = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const info = await ctx.cluster.info().catch(() => null);
      const at = nowMs();
      if (info && last) {
        const cmds = info.reduce((a, m, i) => a + m.totalCommands - last![i]!.totalCommands, 0);
        samples.push({ at, opsPerSec: info.reduce((a, m) => a + m.opsPerSec, 0), commandsPerSec: Math.round(cmds / ((at - lastAt) / 1000)) });
      }
      if (info) ((last = info), (lastAt = at));
      await sleep(1000);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

function mergeStats(all: ReconnectStats[]) {
  const perSecond: Record<string, number> = {};
  for (const s of all) for (const [k, v] of Object.entries(s.perSecond)) perSecond[k] = (perSecond[k] ?? 0) + v;
  const sum = (f: (s: ReconnectStats) => number) => all.reduce((a, s) => a + f(s), 0);
  return {
    dropped: sum((s) => s.dropped),
    reconnected: sum((s) => s.reconnected),
    pending: sum((s) => s.pending),
    gaveUp: sum((s) => s.gaveUp),
    attempts: sum((s) => s.attempts),
    failedAttempts: sum((s) => s.failedAttempts),
    errors: all.reduce<Record<string, number>>((a, s) => {
      for (const [k, v] of Object.entries(s.errors)) a[k] = (a[k] ?? 0) + v;
      return a;
    }, {}),
    peakConnectsPerSecond: Math.max(0, ...Object.values(perSecond)),
    perSecond,
    lastReconnectAt: Math.max(0, ...all.map((s) => s.lastReconnectAt)),
  };
}

export async function stormPhase(ctx: FleetContext) {
  const p = ctx.P.storm;
  const victims = await startNodes(ctx, 'victim', p.victims);
  let survivors: ServerProcess[] = [];
  let lgs: Loadgen[] = [];
  try {
    survivors = await startNodes(ctx, 'survivor', p.survivors);
    const total = p.victimUsers + p.survivorUsers;
    lgs = await startLoadgens(ctx, Math.max(2, Math.ceil(total / PER_PROCESS)));
    const again: ReconnectSpec = { urls: survivors.map(wsUrl), ...p.reconnect };
    const victimShares = split(p.victimUsers - p.abandoned - p.chatPairs / 2, lgs.length);
    const survivorShares = split(p.survivorUsers, lgs.length);
    // Load generator 0 also holds the watchers, the chat users and the users that never come back.
    const watchers = Array.from({ length: WATCHERS }, addr);
    const senders = Array.from({ length: p.chatPairs }, addr);
    const recipients = Array.from({ length: p.chatPairs }, addr);
    const abandoned = Array.from({ length: p.abandoned }, addr);
    const idle0 = Array.from({ length: victimShares[0]! + survivorShares[0]! }, addr);
    const lg0Users = [...watchers, ...senders, ...recipients, ...abandoned, ...idle0];
    await Promise.all([prepare(ctx, [lgs[0]!], [lg0Users], [lg0Users.length]), prepare(ctx, lgs.slice(1), null, lgs.slice(1).map((_, i) => victimShares[i + 1]! + survivorShares[i + 1]!))]);
    const sampleBack = idle0.slice(0, p.sampleBack);
    await addContacts(ctx.dbUrl, watchers.map((w) => ({ watcher: w, contacts: [...abandoned, ...sampleBack] })));
    const lg0 = lgs[0]!;
    const connect = (lg: Loadgen, i: number, targets: { url: string; count: number }[], client: 'raw' | 'ws', reconnect?: ReconnectSpec) =>
      lg.call({ cmd: 'connect', targets: targets.filter((t) => t.count > 0), localAddress: sourceIp(ctx, PHASE, i), concurrency: 200, timeoutMs: ctx.P.connectTimeoutMs, client, ...(reconnect ? { reconnect } : {}) });
    const spread = (n: number, nodes: ServerProcess[]) => split(n, nodes.length).map((count, j) => ({ url: wsUrl(nodes[j]!), count }));
    await connect(lg0, 200, [{ url: wsUrl(survivors[0]!), count: WATCHERS }], 'ws');
    await connect(lg0, 200, spread(p.chatPairs, survivors), 'ws', again);
    // Half the recipients sit on the victims: they must get what was acked while they were away.
    await connect(lg0, 200, [...spread(Math.floor(p.chatPairs / 2), victims), ...spread(p.chatPairs - Math.floor(p.chatPairs / 2), survivors)], 'ws', again);
    await connect(lg0, 201, spread(p.abandoned, victims), 'raw');
    log(`  ${p.victimUsers} users on ${victims.length} victim process(es), ${p.survivorUsers} on ${survivors.length} survivors, ${lgs.length} load generators`);
    const conn = await Promise.all(lgs.map((lg, i) => connect(lg, i, [...spread(victimShares[i]!, victims), ...spread(survivorShares[i]!, survivors)], 'raw', again)));
    const connected = conn.reduce((a, r) => a + r.connected, 0);
    if (conn.some((r) => r.failed)) log(`  connect failures: ${JSON.stringify(conn.map((r) => r.errors))}`);
    await sleep(2000);
    const presenceBefore = await queryPresence(lg0, watchers[0]!, [...abandoned, ...sampleBack]);

    const [row] = await query<{ max: string }>(ctx.dbUrl, 'select coalesce(max(id), 0)::text as max from messages');
    const run = `storm${ctx.ipOctet}`;
    const startAt = nowMs() + 500;
    const pairs = senders.map((from, i) => ({ from, to: recipients[i]! }));
    const redis = redisSampler(ctx);
    const cpu = fleetCpuWatch(ctx, survivors, lgs);
    const chatP = lg0.call({ cmd: 'chat', run, mode: 'open', pairs, rate: p.chatRate, window: 0, durationMs: p.runMs, warmupMs: 1000, textBytes: 64, startAt, latencyFrom: 'scheduled', receipts: false, trackIds: true, syncAfter: row!.max }, p.runMs + 180_000);
    await sleep(startAt - nowMs() + p.killAfterMs);
    const killAt = nowMs();
    for (const v of victims) process.kill(v.pid, 'SIGKILL');
    log(`  SIGKILL ${victims.map((v) => v.label).join(', ')} (${p.victimUsers} users) while chat flows at ${p.chatRate} msg/s`);
    // Until everyone who reconnects is back (or the policy's own deadline).
    let merged = mergeStats(await Promise.all(lgs.map((lg) => lg.call({ cmd: 'reconnectStats' }))));
    const until = Date.now() + p.reconnect.giveUpAfterMs + 10_000;
    while (Date.now() < until) {
      await sleep(500);
      merged = mergeStats(await Promise.all(lgs.map((lg) => lg.call({ cmd: 'reconnectStats' }))));
      if (merged.dropped > 0 && merged.pending === 0 && nowMs() - killAt > 2000) break;
    }
    log(`  ${merged.reconnected}/${merged.dropped} back in ${Math.round(merged.lastReconnectAt - killAt)} ms, peak ${merged.peakConnectsPerSecond} connects/s`);
    const send = await chatP;
    const cpuReport = cpu.stop();
    const redisSamples = await redis.stop();
    // Catch-up syncs and the last deliveries.
    await sleep(3000);
    const rx = await lg0.call({ cmd: 'collect', run });
    const acked = new Set(send.ackedIds ?? []);
    const received = new Set(rx.ids ?? []);
    const stored = new Set((await query<{ id: string }>(ctx.dbUrl, 'select id::text as id from messages where client_id like $1', [`${run}-%`])).map((r) => r.id));
    const lost = [...acked].filter((id) => !received.has(id));
    const notStored = [...acked].filter((id) => !stored.has(id));
    // Presence: wait out the stale TTL (and a sweep) since the kill.
    await sleep(Math.max(0, killAt + p.staleMs + 4000 - nowMs()));
    const abandonedAfter = await queryPresence(lg0, watchers[0]!, abandoned);
    const backAfter = await queryPresence(lg0, watchers[0]!, sampleBack);
    const peakRedis = redisSamples.reduce((a, s) => Math.max(a, s.commandsPerSec), 0);
    const stormCommands = redisSamples.filter((s) => s.at >= killAt && s.at <= merged.lastReconnectAt + 1000).reduce((a, s) => a + s.commandsPerSec, 0);
    const result = {
      victims: victims.length,
      survivors: survivors.length,
      loadgens: lgs.length,
      victimUsers: p.victimUsers,
      survivorUsers: p.survivorUsers,
      connectedBefore: connected + WATCHERS + 2 * p.chatPairs + p.abandoned,
      reconnectPolicy: p.reconnect,
      reconnect: { ...merged, perSecond: undefined, allBackMs: merged.pending === 0 ? Math.round(merged.lastReconnectAt - killAt) : null },
      connectsPerSecondTimeline: Object.entries(merged.perSecond).sort(([a], [b]) => Number(a) - Number(b)).map(([sec, n]) => ({ secondsAfterKill: Math.round(Number(sec) - killAt / 1000), n })),
      redis: {
        peakCommandsPerSecond: peakRedis,
        peakInstantaneousOpsPerSecond: redisSamples.reduce((a, s) => Math.max(a, s.opsPerSec), 0),
        commandsDuringStorm: stormCommands,
        commandsPerReconnect: Math.round((stormCommands / Math.max(1, merged.reconnected)) * 10) / 10,
        samples: redisSamples.map((s) => ({ secondsAfterKill: Math.round((s.at - killAt) / 100) / 10, commandsPerSec: s.commandsPerSec, opsPerSec: s.opsPerSec })),
      },
      chat: {
        rate: p.chatRate,
        sent: send.sent,
        acked: acked.size,
        failed: send.failed,
        unanswered: send.unanswered,
        receivedDistinct: received.size,
        receivedBySync: rx.bySync ?? 0,
        duplicatesDropped: rx.duplicates ?? 0,
        lostAcked: lost.length,
        ackedNotStored: notStored.length,
        ok: lost.length === 0 && notStored.length === 0,
        deliveryLatencyMs: summarize(rx.latencies),
      },
      presence: {
        before: presenceBefore,
        abandonedAfterTtl: abandonedAfter,
        reconnectedSample: backAfter,
        ok: abandonedAfter.online === 0 && abandonedAfter.offline === abandoned.length && backAfter.online === sampleBack.length,
      },
      cpu: cpuReport,
    };
    log(`  chat: acked ${acked.size}, lost ${lost.length}, not stored ${notStored.length}, ${result.chat.receivedBySync} by sync; presence ${result.presence.ok ? 'ok' : 'FAILED'} (abandoned offline ${abandonedAfter.offline}/${abandoned.length}, back online ${backAfter.online}/${sampleBack.length}); Redis peak ${peakRedis} cmd/s`);
    await Promise.all(lgs.map((lg) => lg.call({ cmd: 'close', concurrency: 200, timeoutMs: 15_000 })));
    return result;
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await Promise.all([...victims, ...survivors].map((s) => s.stop(5000)));
  }
}
