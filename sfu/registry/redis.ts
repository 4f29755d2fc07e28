import type { RedisClient } from '../../infra/redis/connect.ts';
import { PENDING_WEIGHT, type Placement, type SfuRegistry, type WorkerLoad } from './registry.ts';

// Every registry key carries the `{sfu}` hash tag: one slot, so placement is one script.
const PLACE = `
local existing = redis.call('GET', KEYS[2])
if existing then return existing end
local prefix = ARGV[1]
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')
local maxc = tonumber(ARGV[4])
local bestNode, bestWorker, bestScore = nil, nil, nil
for _, node in ipairs(nodes) do
  local h = redis.call('HGETALL', prefix .. '{sfu}:node:' .. node)
  local info = {}
  for i = 1, #h, 2 do info[h[i]] = h[i + 1] end
  if info['draining'] ~= '1' then
    local count = tonumber(info['workers'] or '0')
    for w = 0, count - 1 do
      local v = info['w:' .. w]
      if v then
        local alive, consumers, producers, rooms = string.match(v, '^(%d) (%d+) (%d+) (%d+)')
        consumers = tonumber(consumers)
        if alive == '1' and consumers < maxc then
          local pending = tonumber(info['p:' .. w] or '0')
          local s = consumers + tonumber(producers) + ${PENDING_WEIGHT} * (tonumber(rooms) + pending)
          if bestScore == nil or s < bestScore then bestNode, bestWorker, bestScore = node, w, s end
        end
      end
    end
  end
end
if bestNode == nil then return false end
local placement = bestNode .. ' ' .. bestWorker
redis.call('SET', KEYS[2], placement)
redis.call('HINCRBY', prefix .. '{sfu}:node:' .. bestNode, 'p:' .. bestWorker, 1)
redis.call('SADD', prefix .. '{sfu}:calls:' .. bestNode, ARGV[3])
return placement`;

const RELEASE_IF = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 1`;

type Scripted = RedisClient & {
  sfuPlace(nodesKey: string, callKey: string, prefix: string, minScore: number, callId: string, maxConsumers: number): Promise<string | null>;
  sfuReleaseIf(callKey: string, callsKey: string, node: string, callId: string): Promise<number>;
};

export class RedisSfuRegistry implements SfuRegistry {
  private readonly r: Scripted;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly staleMs: number,
    private readonly maxConsumers: number,
  ) {
    if (!('sfuPlace' in redis)) {
      redis.defineCommand('sfuPlace', { numberOfKeys: 2, lua: PLACE });
      redis.defineCommand('sfuReleaseIf', { numberOfKeys: 2, lua: RELEASE_IF });
    }
    this.r = redis as Scripted;
  }

  private k = {
    nodes: () => `${this.prefix}{sfu}:nodes`,
    node: (n: string) => `${this.prefix}{sfu}:node:${n}`,
    call: (c: string) => `${this.prefix}{sfu}:call:${c}`,
    calls: (n: string) => `${this.prefix}{sfu}:calls:${n}`,
    recovery: (n: string) => `${this.prefix}{sfu}:recovery:${n}`,
  };

  async heartbeat(node: string, workers: WorkerLoad[], draining: boolean, now: number): Promise<void> {
    const fields: Record<string, string> = { workers: String(workers.length), draining: draining ? '1' : '0', at: String(now) };
    for (const w of workers) fields[`w:${w.index}`] = `${w.alive ? 1 : 0} ${w.consumers} ${w.producers} ${w.rooms} ${w.cpu.toFixed(3)}`;
    const key = this.k.node(node);
    // The heartbeat carries the real load, so the pending placements it now includes are dropped.
    await this.r.multi().del(key).hset(key, fields).pexpire(key, this.staleMs * 20).zadd(this.k.nodes(), now, node).exec();
  }

  async remove(node: string): Promise<void> {
    await this.r.multi().zrem(this.k.nodes(), node).del(this.k.node(node)).exec();
  }

  async place(callId: string, now: number): Promise<Placement | null> {
    const v = await this.r.sfuPlace(this.k.nodes(), this.k.call(callId), this.prefix, now - this.staleMs, callId, this.maxConsumers);
    return parse(v);
  }

  async lookup(callId: string): Promise<Placement | null> {
    return parse(await this.r.get(this.k.call(callId)));
  }

  async release(callId: string): Promise<void> {
    const p = await this.lookup(callId);
    await this.r.del(this.k.call(callId));
    if (p) await this.r.srem(this.k.calls(p.node), callId);
  }

  async replace(callId: string, deadNode: string, now: number): Promise<Placement | null> {
    await this.r.sfuReleaseIf(this.k.call(callId), this.k.calls(deadNode), deadNode, callId);
    return this.place(callId, now);
  }

  async staleNodes(now: number): Promise<string[]> {
    return this.r.zrangebyscore(this.k.nodes(), 0, now - this.staleMs);
  }

  async callsOn(node: string): Promise<string[]> {
    return this.r.smembers(this.k.calls(node));
  }

  async claimRecovery(node: string, by: string): Promise<boolean> {
    return (await this.r.set(this.k.recovery(node), by, 'PX', 30_000, 'NX')) === 'OK';
  }

  async forget(node: string): Promise<void> {
    await this.r.multi().zrem(this.k.nodes(), node).del(this.k.node(node)).del(this.k.calls(node)).del(this.k.recovery(node)).exec();
  }
}

function parse(v: string | null): Placement | null {
  if (!v) return null;
  const [node, worker] = v.split(' ');
  return { node: node!, worker: Number(worker) };
}
