/**
 * Phase `groups`: group messages to groups of 10, 100 and 1,000 members spread over several
 * signaling nodes. Reports, per group size, bus publishes per message (from the nodes'
 * `blockrtc_bus_publishes_total`: a message should cost one group publish whatever the
 * size), deliveries per second and delivery latency (send → event at each member).
 *
 * Self-contained: the members are `ws` clients in this process (a group of 1,000 is 1,000
 * sockets), their sessions and tokens are made like the load generators make them, and
 * each member has accepted the creator (a contacts row) so it joins rather than being invited.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { getAddress } from 'ethers';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../../protocol/common.ts';
import { redisKeys } from '../../../infra/redis/connect.ts';
import { RedisSessionStore } from '../../../signaling/auth/sessions/redis.ts';
import { TokenService } from '../../../signaling/auth/tokens.ts';
import { query } from '../../../testkit/pg.ts';
import { log } from '../log.ts';
import { scrape } from '../measure.ts';
import { sleep, startSignalingNode, type ServerProcess } from '../procs.ts';
import { round, summarize } from '../stats.ts';
import { wsUrl, type BenchContext } from './context.ts';

interface Member {
  address: string;
  ws: WebSocket;
  /** Answers by request id. */
  pending: Map<string, (frame: { ok: boolean; data?: unknown; error?: { code: string } }) => void>;
}

/** Text of a bench message: `<send time ms>|<padding>`; the receiver measures from it. */
const now = () => performance.timeOrigin + performance.now();

async function publishes(servers: ServerProcess[]): Promise<{ user: number; group: number }> {
  const scrapes = await Promise.all(servers.map((s) => scrape(s)));
  const sum = (ch: string) => scrapes.reduce((a, s) => a + (s.values.get(`blockrtc_bus_publishes_total{channel="${ch}"}`) ?? 0), 0);
  return { user: sum('user'), group: sum('group') };
}

function open(url: string, token: string, address: string, onGroupMessage: (text: string) => void, timeoutMs: number): Promise<Member> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`], { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const member: Member = { address, ws, pending: new Map() };
    const timer = setTimeout(() => reject(new Error('hello-timeout')), timeoutMs);
    ws.on('error', (err) => reject(err));
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"ev":"group.message"')) return onGroupMessage(text);
      if (text.startsWith('{"ev":"session.hello"')) {
        clearTimeout(timer);
        return resolve(member);
      }
      if (text.startsWith('{"re"')) {
        const f = JSON.parse(text) as { re: string; ok: boolean; data?: unknown; error?: { code: string } };
        member.pending.get(f.re)?.(f);
        member.pending.delete(f.re);
      }
    });
  });
}

function request<T>(m: Member, type: string, body: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => (m.pending.delete(id), reject(new Error(`${type} timed out`))), timeoutMs);
    m.pending.set(id, (f) => {
      clearTimeout(t);
      if (f.ok) resolve(f.data as T);
      else reject(new Error(`${type}: ${f.error?.code}`));
    });
    m.ws.send(JSON.stringify({ id, type, ...body }));
  });
}

export async function groupsPhase(ctx: BenchContext) {
  const g = ctx.P.groups;
  const maxSize = Math.max(...g.sizes);
  const env = { ...ctx.env, GROUP_MAX_MEMBERS: String(maxSize), MAX_CONNECTIONS_PER_USER: '10', WS_MAX_PAYLOAD_BYTES: String(256 * 1024) };
  const servers = await Promise.all(Array.from({ length: g.nodes }, (_, i) => startSignalingNode(`groups-${ctx.ipOctet}-${i}`, env, ctx.P.childMaxLifeMs)));
  const redis = new Redis(ctx.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
  const sessions = new RedisSessionStore(redis, redisKeys(ctx.env.REDIS_KEY_PREFIX!), ctx.env.REDIS_KEY_PREFIX!);
  const tokens = new TokenService(ctx.jwtSecret, ctx.P.tokenTtlSec);
  const results: object[] = [];
  try {
    for (const size of g.sizes) {
      log(`groups: ${size} members over ${g.nodes} nodes`);
      const addresses = Array.from({ length: size }, () => getAddress(`0x${randomBytes(20).toString('hex')}`));
      const creator = addresses[0]!;
      // Every member accepted the creator (as if it had added the creator as a contact).
      await query(ctx.dbUrl, `insert into contacts (owner, peer, shares_presence) select unnest($1::text[]), $2, true on conflict do nothing`, [addresses.slice(1), creator]);
      const latencies: number[] = [];
      let received = 0;
      let firstAt = 0;
      let lastAt = 0;
      const onMessage = (text: string) => {
        const m = /"text":"(\d+(?:\.\d+)?)\|/.exec(text);
        if (!m) return; // a system message
        const t = now();
        latencies.push(t - Number(m[1]));
        received++;
        if (firstAt === 0) firstAt = t;
        lastAt = t;
      };
      const members: Member[] = [];
      for (let i = 0; i < size; i += 200) {
        const slice = addresses.slice(i, i + 200);
        const recs = await Promise.all(slice.map((a) => sessions.create(a, 86_400)));
        members.push(
          ...(await Promise.all(
            recs.map((r, k) =>
              open(wsUrl(servers[(i + k) % servers.length]!), tokens.issue({ address: r.address, sid: r.id, gen: r.gen, sessionExpiresAt: r.expiresAt }).token, r.address, onMessage, ctx.P.connectTimeoutMs),
            ),
          )),
        );
      }
      const created = await request<{ group: { id: string } }>(members[0]!, 'group.create', { name: `bench ${size}`, members: addresses.slice(1) });
      const group = created.group.id;
      // Live delivery is in place once the member's node subscribed: wait until every node holding members reports the channel.
      const until = Date.now() + 30_000;
      while (Date.now() < until) {
        const channels = await Promise.all(servers.map((s) => scrape(s).then((x) => x.values.get('blockrtc_group_channels') ?? 0)));
        if (channels.every((c) => c >= 1)) break;
        await sleep(100);
      }
      await sleep(500);

      const senders = members.slice(0, Math.min(g.senders, members.length));
      const total = g.messages;
      const before = await publishes(servers);
      const acks: number[] = [];
      const errors: Record<string, number> = {};
      const interval = 1000 / g.rate;
      const t0 = now();
      const sends: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        const due = t0 + i * interval;
        const wait = due - now();
        if (wait > 1) await sleep(wait);
        const sentAt = now();
        const sender = senders[i % senders.length]!;
        sends.push(
          request(sender, 'group.send', { group, clientId: randomUUID(), kind: 'text', text: `${sentAt}|${'x'.repeat(g.textBytes)}` }).then(
            () => void acks.push(now() - sentAt),
            (err: Error) => void (errors[err.message] = (errors[err.message] ?? 0) + 1),
          ),
        );
      }
      await Promise.all(sends);
      const expected = acks.length * (size - 1);
      const drainUntil = Date.now() + 60_000;
      while (received < expected && Date.now() < drainUntil) await sleep(50);
      const after = await publishes(servers);
      const sent = acks.length;
      const seconds = lastAt > firstAt ? (lastAt - firstAt) / 1000 : 0;
      const figures = {
        members: size,
        nodes: g.nodes,
        messages: sent,
        failedSends: errors,
        publishesPerMessage: { group: sent ? round((after.group - before.group) / sent) : 0, user: sent ? round((after.user - before.user) / sent) : 0 },
        deliveries: { expected, received },
        deliveredPerSec: seconds > 0 ? Math.round(received / seconds) : null,
        deliveryMs: summarize(latencies),
        ackMs: summarize(acks),
      };
      log(`groups ${size}: ${JSON.stringify({ publishesPerMessage: figures.publishesPerMessage, received, expected, p99: figures.deliveryMs.p99 })}`);
      results.push(figures);
      for (const m of members) m.ws.terminate();
      await sleep(1000);
    }
  } finally {
    redis.disconnect();
    await Promise.all(servers.map((s) => s.stop(2000)));
  }
  return { note: 'publishes counted from the nodes (blockrtc_bus_publishes_total); members spread round-robin over the nodes', runs: results };
}
