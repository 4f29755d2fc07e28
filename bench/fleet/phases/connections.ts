/**
 * Phase `connections`: the fleet's idle connections (--connections over ≥13 signaling
 * processes at full scale, as many load generators), memory per connection of every node,
 * of the load generators, of the kernel and of the Redis Cluster, presence from sample
 * users going offline and online among them, and where a bigger run would stop.
 */
import { log, fmtB } from '../../signaling/log.ts';
import { rssBytes, sleep, type Loadgen, type ServerProcess } from '../../signaling/procs.ts';
import { split, summarize } from '../../signaling/stats.ts';
import { clusterDelta } from '../cluster.ts';
import { fleetCpuWatch, memAvailableBytes, prepare, sockstat, sourceIp, startLoadgens, startNodes, wsUrl, type FleetContext } from '../context.ts';
import { PER_PROCESS } from '../parameters.ts';
import { addContacts, queryPresence, sawOfflineThenOnline } from '../presence.ts';

const PHASE = 1;

async function settledRss(s: ServerProcess): Promise<number> {
  await s.gc();
  return rssBytes(s.pid);
}

export async function connectionsPhase(ctx: FleetContext) {
  const p = ctx.P.connections;
  const servers = await startNodes(ctx, 'conn', p.nodes);
  let lgs: Loadgen[] = [];
  try {
    lgs = await startLoadgens(ctx, p.loadgens);
    const shares = split(p.connections, p.loadgens);
    log(`  ${p.connections} connections over ${p.nodes} nodes from ${p.loadgens} load generators; preparing sessions`);
    // Watchers first (full clients, load generator 0), then the idle users of every generator.
    const w = (await prepare(ctx, [lgs[0]!], null, [p.watchers]))[0]!;
    const wc = await lgs[0]!.call({ cmd: 'connect', targets: [{ url: wsUrl(servers[0]!), count: w.length }], localAddress: sourceIp(ctx, PHASE, 250), concurrency: 4, timeoutMs: ctx.P.connectTimeoutMs, client: 'ws' });
    if (wc.failed) throw new Error(`watchers failed to connect: ${JSON.stringify(wc.errors)}`);
    const idle = await prepare(ctx, lgs, null, shares);
    // Contacts spread over load generators and (by position) over nodes.
    const pickContacts = (i: number) => {
      const out: string[] = [];
      for (let k = 0; k < p.contactsPerWatcher; k++) {
        const list = idle[(i + k) % idle.length]!;
        out.push(list[(k * 7919 + i * 104729) % list.length]!);
      }
      return [...new Set(out)];
    };
    const contacts = w.map((watcher, i) => ({ watcher, contacts: pickContacts(i) }));
    await addContacts(ctx.dbUrl, contacts);

    const before = { lgRss: lgs.map((l) => rssBytes(l.pid)), rss: await Promise.all(servers.map(settledRss)), redis: await ctx.cluster.info(), sock: sockstat(), memAvailable: memAvailableBytes() };
    const cpu = fleetCpuWatch(ctx, servers, lgs);
    const ticker = setInterval(() => log(`  connected ${lgs.reduce((a, l) => a + l.progress.connected, 0)}/${p.connections}`), 5000);
    const t0 = performance.now();
    const results = await Promise.all(
      lgs.map((lg, i) =>
        lg.call({
          cmd: 'connect',
          targets: split(shares[i]!, servers.length).map((count, j) => ({ url: wsUrl(servers[(i + j) % servers.length]!), count })),
          localAddress: sourceIp(ctx, PHASE, i),
          concurrency: Math.max(1, Math.round(p.concurrency / lgs.length)),
          timeoutMs: ctx.P.connectTimeoutMs,
          client: 'raw',
        }),
      ),
    ).finally(() => clearInterval(ticker));
    const connectSec = (performance.now() - t0) / 1000;
    const cpuConnect = cpu.stop();
    const connected = results.reduce((a, r) => a + r.connected, 0);
    const failed = results.reduce((a, r) => a + r.failed, 0);
    log(`  ${connected} connected, ${failed} failed in ${connectSec.toFixed(1)} s; sampling memory`);
    await sleep(3000);
    const after = { rss: await Promise.all(servers.map(settledRss)), redis: await ctx.cluster.info(), sock: sockstat(), memAvailable: memAvailableBytes() };
    const perNode = servers.map((s, i) => {
      const conns = split(p.connections, 1)[0]! / servers.length;
      return { node: s.label, connections: Math.round(conns), rssBeforeBytes: before.rss[i]!, rssAfterBytes: after.rss[i]!, rssPerConnectionBytes: Math.round((after.rss[i]! - before.rss[i]!) / conns) };
    });
    const redis = clusterDelta(before.redis, after.redis);
    const online = connected + w.length;
    const perConn = {
      serverRssBytes: Math.round(summarize(perNode.map((n) => n.rssPerConnectionBytes)).p50),
      loadgenRssBytes: Math.round(results.reduce((a, r, i) => a + r.rssBytes - before.lgRss[i]!, 0) / Math.max(1, connected)),
      kernelTcpBytes: Math.round((after.sock.tcpMemBytes - before.sock.tcpMemBytes) / Math.max(1, connected)),
      redisBytesPerOnlineUser: Math.round(redis.memoryDeltaBytes / Math.max(1, online)),
    };

    // Presence: every contact online, then half of them off and on again.
    const q0 = await Promise.all(contacts.map((c) => queryPresence(lgs[0]!, c.watcher, c.contacts)));
    await lgs[0]!.call({ cmd: 'presenceEvents' });
    const cycled = contacts.flatMap((c) => c.contacts.filter((_, k) => k % 2 === 0).map((contact) => ({ watcher: c.watcher, contact })));
    const cycledSet = [...new Set(cycled.map((c) => c.contact))];
    log(`  presence: ${cycledSet.length} contacts of ${w.length} watchers go offline for ${p.presenceDownMs} ms and come back`);
    await Promise.all(lgs.map((lg) => lg.call({ cmd: 'cycle', addresses: cycledSet, downMs: p.presenceDownMs, timeoutMs: 15_000 })));
    await sleep(2000);
    const events = (await lgs[0]!.call({ cmd: 'presenceEvents' })).events;
    const seen = sawOfflineThenOnline(events, cycled);
    const q1 = await Promise.all(contacts.map((c) => queryPresence(lgs[0]!, c.watcher, c.contacts)));
    const presence = {
      watchers: w.length,
      contacts: contacts.reduce((a, c) => a + c.contacts.length, 0),
      queryBefore: q0,
      cycled: cycled.length,
      events: seen,
      queryAfter: q1,
      ok: seen.ok && q0.every((q) => q.offline === 0 && q.unknown === 0) && q1.every((q) => q.offline === 0 && q.unknown === 0),
    };
    log(`  presence ${presence.ok ? 'ok' : 'FAILED'}: ${seen.sawOfflineThenOnline}/${seen.expected} offline→online seen`);

    // Where a bigger run stops on this machine: memory per connection summed over the ends
    // that live here, against the memory that was available before the run.
    const bytesPerConn = Math.max(0, perConn.serverRssBytes) + Math.max(0, perConn.loadgenRssBytes) + Math.max(0, perConn.kernelTcpBytes) + Math.max(0, perConn.redisBytesPerOnlineUser);
    const limits = {
      memoryAvailableAtStartBytes: before.memAvailable,
      bytesPerConnectionAllEnds: bytesPerConn,
      connectionsByMemory: Math.floor(before.memAvailable / Math.max(1, bytesPerConn)),
      socketsPerProcess: PER_PROCESS,
      processesPerMillion: { signaling: Math.ceil(1_000_000 / PER_PROCESS), loadgens: Math.ceil(1_000_000 / PER_PROCESS) },
      note: 'A bigger run on one machine stops at whichever comes first: memory (server RSS + load-generator RSS + kernel TCP buffers + Redis, per connection, against MemAvailable), processes (one per 16,000 sockets on each side: 2 cores shared by all of them), or ephemeral ports (~28,000 per source address and destination).',
    };
    log(`  per connection: server ${fmtB(perConn.serverRssBytes)}, load generator ${fmtB(perConn.loadgenRssBytes)}, kernel TCP ${fmtB(perConn.kernelTcpBytes)}, Redis ${fmtB(perConn.redisBytesPerOnlineUser)}/online user`);
    const closed = await Promise.all(lgs.map((lg) => lg.call({ cmd: 'close', concurrency: 200, timeoutMs: 15_000 })));
    return {
      nodes: servers.length,
      loadgens: lgs.length,
      requested: p.connections,
      connected,
      failed,
      errors: results.reduce<Record<string, number>>((a, r) => {
        for (const [k, v] of Object.entries(r.errors)) a[k] = (a[k] ?? 0) + v;
        return a;
      }, {}),
      connectSeconds: Math.round(connectSec * 10) / 10,
      connectsPerSecond: Math.round(connected / connectSec),
      connectLatencyMs: summarize(results.flatMap((r) => r.latencies)),
      cpuDuringConnect: cpuConnect,
      redisCommandsPerConnect: Math.round((redis.commands / Math.max(1, connected)) * 10) / 10,
      perNode,
      perConnection: perConn,
      redis,
      sockstat: { before: before.sock, after: after.sock },
      loadgenRssBytes: results.map((r) => r.rssBytes),
      presence,
      limits,
      closed: closed.reduce((a, c) => a + c.closed, 0),
    };
  } finally {
    await Promise.all(lgs.map((l) => l.stop()));
    await Promise.all(servers.map((s) => s.stop(5000)));
  }
}
