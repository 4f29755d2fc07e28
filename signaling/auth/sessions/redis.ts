import { randomUUID } from 'node:crypto';
import type { RedisClient, RedisKeys } from '../../../infra/redis/connect.ts';
import { ENDED_RETENTION_MS, type SessionRecord, type SessionStore } from './store.ts';

// KEYS[1] session hash; ARGV: grace end (ms), the generation to move from. Bumps the
// generation of a live session still at that generation; otherwise returns it unchanged.
const ROTATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'gen', 1)
  redis.call('HSET', KEYS[1], 'prev', ARGV[1])
end
return redis.call('HMGET', KEYS[1], 'address', 'exp', 'gen', 'prev')
`;

/**
 * One hash per session (`{s:<id>}`: address, absolute end, generation, grace end of the
 * previous generation) expiring at the session's end; ended sessions are also added to a
 * sorted set by time, which every node polls to close their sockets.
 */
export class RedisSessionStore implements SessionStore {
  private readonly ended: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly prefix: string,
  ) {
    this.ended = `${prefix}sessions:ended`;
    if (!('sessionRotate' in redis)) redis.defineCommand('sessionRotate', { numberOfKeys: 1, lua: ROTATE });
  }

  private key(id: string): string {
    return `${this.prefix}{s:${id}}`;
  }

  async create(address: string, maxAgeSec: number): Promise<SessionRecord> {
    const rec: SessionRecord = { id: randomUUID(), address, expiresAt: Date.now() + maxAgeSec * 1000, gen: 1, previousUntil: 0 };
    const key = this.key(rec.id);
    await this.redis
      .multi()
      .hset(key, { address, exp: String(rec.expiresAt), gen: '1', prev: '0' })
      .pexpireat(key, rec.expiresAt)
      .exec();
    return rec;
  }

  async get(id: string): Promise<SessionRecord | null> {
    return this.parse(id, await this.redis.hmget(this.key(id), 'address', 'exp', 'gen', 'prev'));
  }

  async rotate(id: string, graceMs: number, fromGen: number): Promise<SessionRecord | null> {
    const r = this.redis as RedisClient & { sessionRotate(key: string, prev: string, from: string): Promise<(string | null)[] | null> };
    return this.parse(id, await r.sessionRotate(this.key(id), String(Date.now() + graceMs), String(fromGen)));
  }

  async end(id: string): Promise<boolean> {
    const now = Date.now();
    const [deleted] = await Promise.all([
      this.redis.del(this.key(id)),
      this.redis.zadd(this.ended, now, id),
      this.redis.zremrangebyscore(this.ended, '-inf', now - ENDED_RETENTION_MS),
    ]);
    return deleted === 1;
  }

  async endedSince(since: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.ended, since, '+inf');
  }

  async connectionCount(user: string): Promise<number | null> {
    return this.redis.hlen(this.keys.userConns(user));
  }

  private parse(id: string, v: (string | null)[] | null): SessionRecord | null {
    if (!v) return null;
    const [address, exp, gen, prev] = v;
    if (!address || !exp || !gen) return null;
    const expiresAt = Number(exp);
    if (expiresAt <= Date.now()) return null;
    return { id, address, expiresAt, gen: Number(gen), previousUntil: Number(prev ?? 0) };
  }
}
