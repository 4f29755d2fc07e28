import { randomUUID } from 'node:crypto';
import type { RedisClient, RedisKeys } from '../../../infra/redis/connect.ts';
import { ENDED_RETENTION_MS, type SessionRecord, type SessionStore, type SessionVouch } from './store.ts';

// KEYS[1] session hash; ARGV: grace end (ms), the generation to move from. Bumps the
// generation of a live session still at that generation; otherwise returns it unchanged.
const ROTATE = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'ended') == '1' then return nil end
if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'gen', 1)
  redis.call('HSET', KEYS[1], 'prev', ARGV[1])
end
return redis.call('HMGET', KEYS[1], 'address', 'exp', 'gen', 'prev', 'ended')
`;

// KEYS[1] session hash; ARGV: address, absolute end (ms), generation. Recreates a record
// Redis lost (from a signed token), never overwriting one it has.
const RESTORE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'address', ARGV[1], 'exp', ARGV[2], 'gen', ARGV[3], 'prev', '0')
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'address', 'exp', 'gen', 'prev', 'ended')
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
    if (!('sessionRestore' in redis)) redis.defineCommand('sessionRestore', { numberOfKeys: 1, lua: RESTORE });
  }

  private key(id: string): string {
    return `${this.prefix}{s:${id}}`;
  }

  async create(address: string, maxAgeSec: number): Promise<SessionRecord> {
    const rec: SessionRecord = { id: randomUUID(), address, expiresAt: Date.now() + maxAgeSec * 1000, gen: 1, previousUntil: 0, ended: false };
    const key = this.key(rec.id);
    await this.redis
      .multi()
      .hset(key, { address, exp: String(rec.expiresAt), gen: '1', prev: '0' })
      .pexpireat(key, rec.expiresAt)
      .exec();
    return rec;
  }

  async get(id: string): Promise<SessionRecord | null> {
    return this.parse(id, await this.redis.hmget(this.key(id), 'address', 'exp', 'gen', 'prev', 'ended'));
  }

  async restore(v: SessionVouch): Promise<SessionRecord | null> {
    if (v.expiresAt <= Date.now()) return null;
    const r = this.redis as RedisClient & { sessionRestore(key: string, address: string, exp: string, gen: string): Promise<(string | null)[]> };
    return this.parse(v.id, await r.sessionRestore(this.key(v.id), v.address, String(v.expiresAt), String(v.gen)));
  }

  async rotate(id: string, graceMs: number, fromGen: number): Promise<SessionRecord | null> {
    const r = this.redis as RedisClient & { sessionRotate(key: string, prev: string, from: string): Promise<(string | null)[] | null> };
    return this.parse(id, await r.sessionRotate(this.key(id), String(Date.now() + graceMs), String(fromGen)));
  }

  async end(id: string, expiresAt: number): Promise<void> {
    const now = Date.now();
    const key = this.key(id);
    // Kept (as ended) until the session's own end, so its tokens stay refused.
    await Promise.all([
      this.redis.multi().hset(key, { ended: '1', exp: String(expiresAt) }).pexpireat(key, expiresAt).exec(),
      this.redis.zadd(this.ended, now, id),
      this.redis.zremrangebyscore(this.ended, '-inf', now - ENDED_RETENTION_MS),
    ]);
  }

  async endedSince(since: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.ended, since, '+inf');
  }

  async connectionCount(user: string): Promise<number | null> {
    return this.redis.hlen(this.keys.userConns(user));
  }

  private parse(id: string, v: (string | null)[] | null): SessionRecord | null {
    if (!v) return null;
    const [address, exp, gen, prev, ended] = v;
    if (!exp) return null;
    const expiresAt = Number(exp);
    if (expiresAt <= Date.now()) return null;
    if (ended === '1') return { id, address: address ?? '', expiresAt, gen: Number(gen ?? 0), previousUntil: 0, ended: true };
    if (!address || !gen) return null;
    return { id, address, expiresAt, gen: Number(gen), previousUntil: Number(prev ?? 0), ended: false };
  }
}
