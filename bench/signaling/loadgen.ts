/**
 * A load generator process: holds WebSocket clients and runs the orchestrator's commands
 * (IPC). Kept lean per socket so that one process can hold 15,000 connections and still
 * leave the CPU to the server under test.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'ethers';
import WebSocket from 'ws';
import { Cluster, Redis } from 'ioredis';
import { redisKeys } from '../../infra/redis/connect.ts';
import { RedisSessionStore } from '../../signaling/auth/sessions/redis.ts';
import { TokenService } from '../../signaling/auth/tokens.ts';
import type { Command, CommandName, ConnectResult, ReconnectSpec, Reply, ResultMap, Target } from './ipc.ts';
import { addChatClient, catchUp, chat, collect, forgetChatClients, receivedSoFar, request, takePresenceEvents, type Client } from './loadgen-chat.ts';
import { closingAll, reconnect, reconnectStats } from './loadgen-reconnect.ts';
import { openOne } from './wsopen.ts';
import { rawClose, rawConnect, type RawClient } from './rawclient.ts';
import { bump, cpuSince, nowMs } from './stats.ts';

if (!process.send) {
  console.error('loadgen.ts runs as a child of bench/signaling/run.ts (needs an IPC channel)');
  process.exit(2);
}
const send = (r: Reply) => process.send!(r);

// Bounded life whatever happens to the orchestrator: a watchdog, and leaving with it.
const maxLifeMs = Number(process.env.BENCH_MAX_LIFE_MS ?? 900_000);
setTimeout(() => {
  console.error(`loadgen ${process.pid}: watchdog (${maxLifeMs} ms) expired`);
  process.exit(3);
}, maxLifeMs).unref();
process.on('disconnect', () => process.exit(0));

interface User {
  address: string;
  token: string;
}

let users: User[] = [];
/** Users connected so far (both kinds); the next connect command continues from here. */
let usedUsers = 0;
const clients: Client[] = [];
const rawClients: RawClient[] = [];
/** Where each idle user is connected (to close and reopen it: presence churn). */
const rawByAddress = new Map<string, { client: RawClient; url: string; user: User; localAddress: string }>();

// ---- commands ---------------------------------------------------------------------------

async function prepare(c: Extract<Command, { cmd: 'prepare' }>): Promise<ResultMap['prepare']> {
  const t0 = nowMs();
  const addresses = c.addresses ?? Array.from({ length: c.count }, () => getAddress(`0x${randomBytes(20).toString('hex')}`));
  // Sessions and tokens are made here, off the clock, by the server's own session store and
  // token service with the Redis and secret the nodes under test were given: the connect
  // run measures the server's token and session check, not this process's signing.
  const tokens = new TokenService(c.jwtSecret, c.ttlSec);
  const redis = c.redisClusterNodes?.length
    ? new Cluster(c.redisClusterNodes.map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) })), { redisOptions: { maxRetriesPerRequest: 2 } })
    : new Redis(c.redisUrl, { maxRetriesPerRequest: 2 });
  try {
    const store = new RedisSessionStore(redis, redisKeys(c.redisPrefix), c.redisPrefix);
    users = [];
    usedUsers = 0;
    for (let i = 0; i < addresses.length; i += 1000) {
      const recs = await Promise.all(addresses.slice(i, i + 1000).map((a) => store.create(a, 86_400)));
      for (const r of recs) users.push({ address: r.address, token: tokens.issue({ address: r.address, sid: r.id, gen: r.gen, sessionExpiresAt: r.expiresAt }).token });
    }
  } finally {
    redis.disconnect();
  }
  return { addresses, ms: Math.round(nowMs() - t0) };
}

async function openRaw(url: string, user: User, localAddress: string, timeoutMs: number, again: ReconnectSpec | undefined): Promise<void> {
  const u = new URL(url);
  const client = await rawConnect({ host: u.hostname, port: Number(u.port), path: u.pathname, localAddress, token: user.token, timeoutMs });
  rawClients.push(client);
  rawByAddress.set(user.address, { client, url, user, localAddress });
  if (again) client.onDrop = () => void reconnect(again, (next) => openRaw(next, user, localAddress, timeoutMs, again));
}

async function openChat(url: string, user: User, localAddress: string, timeoutMs: number, again: ReconnectSpec | undefined): Promise<Client> {
  const { ws } = await openOne(url, user.token, localAddress, timeoutMs);
  const client = addChatClient(user.address, ws);
  clients.push(client);
  if (again) {
    ws.once('close', () => {
      void reconnect(again, async (next) => {
        // Back on another node: catch up on what was missed while away.
        catchUp(await openChat(next, user, localAddress, timeoutMs, again));
      });
    });
  }
  return client;
}

/** Closes some idle users' connections and opens them again after `downMs` (presence off, then on). */
async function cycle(c: Extract<Command, { cmd: 'cycle' }>): Promise<ResultMap['cycle']> {
  const found = c.addresses.map((a) => rawByAddress.get(a)).filter((x) => x !== undefined);
  const out = { closed: 0, reopened: 0, failed: 0, errors: {} as Record<string, number> };
  await Promise.all(found.map(async (e) => ((await rawClose(e.client, c.timeoutMs)) === 'closed' ? out.closed++ : undefined)));
  await new Promise((r) => setTimeout(r, c.downMs));
  await Promise.all(
    found.map(async (e) => {
      try {
        await openRaw(e.url, e.user, e.localAddress, c.timeoutMs, undefined);
        out.reopened++;
      } catch (err) {
        out.failed++;
        bump(out.errors, err instanceof Error ? err.message : String(err));
      }
    }),
  );
  return out;
}

async function connect(c: Extract<Command, { cmd: 'connect' }>): Promise<ConnectResult> {
  const plan: { url: string; user: User }[] = [];
  for (const t of c.targets as Target[]) {
    for (let i = 0; i < t.count; i++) {
      const user = users[usedUsers++];
      if (!user) throw new Error(`only ${users.length} users prepared`);
      plan.push({ url: t.url, user });
    }
  }
  const cpuMark = process.cpuUsage();
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let failed = 0;
  let next = 0;
  const startedAt = nowMs();
  let finishedAt = startedAt;
  const progress = setInterval(() => send({ progress: { connected: latencies.length, failed } }), 1000);
  const worker = async () => {
    while (next < plan.length) {
      const p = plan[next++]!;
      try {
        const t0 = nowMs();
        if (c.client === 'raw') await openRaw(p.url, p.user, c.localAddress, c.timeoutMs, c.reconnect);
        else await openChat(p.url, p.user, c.localAddress, c.timeoutMs, c.reconnect);
        finishedAt = nowMs();
        latencies.push(Math.round((finishedAt - t0) * 1000) / 1000);
      } catch (err) {
        failed++;
        bump(errors, err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  clearInterval(progress);
  return {
    requested: plan.length,
    connected: latencies.length,
    failed,
    errors,
    startedAt,
    finishedAt,
    latencies,
    cpu: cpuSince(cpuMark),
    rssBytes: process.memoryUsage.rss(),
  };
}

async function closeAll(c: Extract<Command, { cmd: 'close' }>): Promise<ResultMap['close']> {
  const t0 = nowMs();
  closingAll(true);
  let closed = 0;
  let terminated = 0;
  let dropped = 0;
  let next = 0;
  const list = clients.splice(0);
  forgetChatClients();
  const raws = rawClients.splice(0);
  let nextRaw = 0;
  const worker = async () => {
    while (nextRaw < raws.length) {
      const r = raws[nextRaw++]!;
      if (r.dropped || r.socket.destroyed) {
        dropped++;
        continue;
      }
      if ((await rawClose(r, c.timeoutMs)) === 'closed') closed++;
      else terminated++;
    }
    while (next < list.length) {
      const { ws } = list[next++]!;
      if (ws.readyState === WebSocket.CLOSED) {
        dropped++;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate();
          terminated++;
          resolve();
        }, c.timeoutMs);
        ws.once('close', () => {
          clearTimeout(t);
          closed++;
          resolve();
        });
        ws.close(1000, 'bench done');
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  users = [];
  usedUsers = 0;
  rawByAddress.clear();
  closingAll(false);
  return { closed, terminated, dropped, ms: Math.round(nowMs() - t0) };
}

async function run(c: Command): Promise<ResultMap[CommandName]> {
  switch (c.cmd) {
    case 'prepare':
      return prepare(c);
    case 'connect':
      return connect(c);
    case 'chat':
      return chat(c);
    case 'count':
      return { received: receivedSoFar(c.run) };
    case 'collect':
      return collect(c.run);
    case 'close':
      return closeAll(c);
    case 'reconnectStats':
      return reconnectStats();
    case 'presenceEvents':
      return { events: takePresenceEvents() };
    case 'request':
      return request(c.from, c.body, c.timeoutMs);
    case 'cycle':
      return cycle(c);
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (m: Command) => {
  run(m).then(
    (result) => send({ re: m.id, ok: true, result }),
    (err: unknown) => send({ re: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
send({ progress: { connected: 0, failed: 0 } });
