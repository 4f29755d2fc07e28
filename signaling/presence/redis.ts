import type { RedisClient, RedisKeys } from '../../infra/redis/connect.ts';
import type { PresenceRecord, PresenceStore } from './store.ts';

const SEEN_TTL_SEC = 90 * 24 * 3600;

// Both keys of a user share the `{u:…}` hash tag, so each script stays in one slot.
const CONNECT = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); return redis.call('HLEN', KEYS[1])`;
const DISCONNECT = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
local n = redis.call('HLEN', KEYS[1])
if n == 0 then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return n`;

type Scripted = RedisClient & {
  presenceConnect(key: string, conn: string, node: string): Promise<number>;
  presenceDisconnect(connsKey: string, seenKey: string, conn: string, at: string, ttl: number): Promise<number>;
};

/**
 * Per user: hash connection → node. Per node: set of "user connection" entries, so that
 * when a node stops heartbeating any other node can remove what it left behind.
 */
export class RedisPresenceStore implements PresenceStore {
  private readonly r: Scripted;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly staleMs: number,
  ) {
    if (!('presenceConnect' in redis)) {
      redis.defineCommand('presenceConnect', { numberOfKeys: 1, lua: CONNECT });
      redis.defineCommand('presenceDisconnect', { numberOfKeys: 2, lua: DISCONNECT });
    }
    this.r = redis as Scripted;
  }

  async connect(user: string, connection: string): Promise<boolean> {
    const [n] = await Promise.all([
      this.r.presenceConnect(this.keys.userConns(user), connection, this.nodeId),
      this.r.sadd(this.keys.nodeConns(this.nodeId), `${user} ${connection}`),
    ]);
    return n === 1;
  }

  async disconnect(user: string, connection: string, at: number): Promise<boolean> {
    const [n] = await Promise.all([
      this.r.presenceDisconnect(this.keys.userConns(user), this.keys.userSeen(user), connection, String(at), SEEN_TTL_SEC),
      this.r.srem(this.keys.nodeConns(this.nodeId), `${user} ${connection}`),
    ]);
    return n === 0;
  }

  async query(users: string[]): Promise<Map<string, PresenceRecord>> {
    const out = new Map<string, PresenceRecord>();
    const results = await Promise.all(
      users.map((u) => Promise.all([this.r.hlen(this.keys.userConns(u)), this.r.get(this.keys.userSeen(u))])),
    );
    users.forEach((u, i) => {
      const [n, seen] = results[i]!;
      out.set(u, { online: n > 0, lastSeen: n > 0 || seen === null ? null : Number(seen) });
    });
    return out;
  }

  async heartbeat(now: number): Promise<void> {
    await this.r.zadd(this.keys.nodes(), now, this.nodeId);
  }

  async sweep(now: number): Promise<{ user: string; lastSeen: number }[]> {
    const dead = await this.r.zrangebyscore(this.keys.nodes(), 0, now - this.staleMs);
    const offline: { user: string; lastSeen: number }[] = [];
    for (const node of dead) {
      if (node === this.nodeId) continue;
      // One sweeper per dead node, even with every node looking.
      const got = await this.r.set(this.keys.nodeSweepLock(node), this.nodeId, 'PX', 30_000, 'NX');
      if (got !== 'OK') continue;
      const setKey = this.keys.nodeConns(node);
      let cursor = '0';
      do {
        const [next, entries] = await this.r.sscan(setKey, cursor, 'COUNT', 500);
        cursor = next;
        const outcomes = await Promise.all(
          entries.map(async (entry) => {
            const [user, conn] = entry.split(' ') as [string, string];
            const n = await this.r.presenceDisconnect(this.keys.userConns(user), this.keys.userSeen(user), conn, String(now), SEEN_TTL_SEC);
            return n === 0 ? user : null;
          }),
        );
        for (const u of outcomes) if (u) offline.push({ user: u, lastSeen: now });
        if (entries.length) await this.r.srem(setKey, ...entries);
      } while (cursor !== '0');
      await this.r.del(setKey);
      await this.r.zrem(this.keys.nodes(), node);
    }
    return offline;
  }

  async leave(): Promise<void> {
    await this.r.del(this.keys.nodeConns(this.nodeId));
    await this.r.zrem(this.keys.nodes(), this.nodeId);
  }
}
