import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createRedis, type RedisClient } from '../infra/redis/connect.ts';
import type { MediaEventFrame, SfuMethod } from '../protocol/sfu.ts';
import { captureLog } from '../testkit/fakes.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';
import { LocalSfuClient, NoSfuClient, RedisCommandServer, RedisSfuClient, commandChannel, replyChannel, type SfuClient } from './channel.ts';
import { SfuError } from './errors.ts';
import type { MediaEventSink, SfuService } from './service.ts';

/** The two things the channel needs of an SfuService: handle() and onEvent(). */
class FakeService {
  sink: MediaEventSink = () => undefined;
  readonly handle = vi.fn(async (method: SfuMethod, params: unknown): Promise<unknown> => ({ method, params }));
  onEvent(sink: MediaEventSink): void {
    this.sink = sink;
  }
  asService(): SfuService {
    return this as unknown as SfuService;
  }
}

const frame = (callId: string, to = ['0xA']): MediaEventFrame => ({ to, event: { type: 'rejoin', callId, reason: 'test' } });
const scoped = { callId: 'c1', peerId: 'p1' };

async function expectSfuError(p: Promise<unknown>, code: string, message?: RegExp): Promise<SfuError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SfuError);
  expect((err as SfuError).code).toBe(code);
  if (message) expect((err as SfuError).message).toMatch(message);
  return err as SfuError;
}

describe('NoSfuClient', () => {
  it('fails every request with UNAVAILABLE and closes cleanly', async () => {
    const c: SfuClient = new NoSfuClient();
    c.onEvent(() => {
      throw new Error('never');
    });
    await expectSfuError(c.request('sfu-1', 'leave', scoped), 'UNAVAILABLE', /no media node/);
    await expect(c.close()).resolves.toBeUndefined();
  });
});

describe('LocalSfuClient', () => {
  it('hands a request to the named node and returns its result', async () => {
    const a = new FakeService();
    const b = new FakeService();
    const c = new LocalSfuClient(new Map([['sfu-a', a.asService()], ['sfu-b', b.asService()]]));
    expect(await c.request('sfu-b', 'leave', scoped)).toEqual({ method: 'leave', params: scoped });
    expect(b.handle).toHaveBeenCalledWith('leave', scoped);
    expect(a.handle).not.toHaveBeenCalled();
  });

  it('rejects a request to an unknown node with UNAVAILABLE', async () => {
    const a = new FakeService();
    const c = new LocalSfuClient(new Map([['sfu-a', a.asService()]]));
    await expectSfuError(c.request('sfu-gone', 'leave', scoped), 'UNAVAILABLE', /sfu-gone/);
    expect(a.handle).not.toHaveBeenCalled();
  });

  it('passes the service errors through unchanged', async () => {
    const a = new FakeService();
    a.handle.mockRejectedValueOnce(new SfuError('CALL_NOT_FOUND', 'no room'));
    const c = new LocalSfuClient(new Map([['sfu-a', a.asService()]]));
    await expectSfuError(c.request('sfu-a', 'createTransport', { ...scoped, direction: 'send' }), 'CALL_NOT_FOUND', /no room/);
  });

  it('delivers events of every node to the handler set later', () => {
    const a = new FakeService();
    const b = new FakeService();
    const c = new LocalSfuClient(new Map([['sfu-a', a.asService()], ['sfu-b', b.asService()]]));
    a.sink('sig-1', frame('before-handler'));
    const got: MediaEventFrame[] = [];
    c.onEvent((f) => got.push(f));
    a.sink('sig-1', frame('from-a'));
    b.sink('sig-1', frame('from-b'));
    expect(got).toEqual([frame('from-a'), frame('from-b')]);
  });
});

describe('RedisSfuClient and RedisCommandServer over Redis', () => {
  const prefix = testPrefix('sfu-channel');
  const cfg = { url: REDIS_URL, clusterNodes: [], keyPrefix: prefix, password: null, tls: false };
  const redis: RedisClient[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const client = (role: 'command' | 'subscriber') => {
    const r = createRedis(cfg, role);
    redis.push(r);
    return r;
  };

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    for (const r of redis) r.disconnect();
    await clearPrefix(prefix);
  });

  async function signaling(node: string, timeoutMs = 2000, sub = client('subscriber')) {
    const c = await RedisSfuClient.create(client('command'), sub, prefix, node, timeoutMs);
    const events: MediaEventFrame[] = [];
    c.onEvent((f) => events.push(f));
    cleanups.push(() => c.close());
    return { client: c, events };
  }
  async function media(node: string, sub = client('subscriber')) {
    const service = new FakeService();
    const cap = captureLog();
    const server = new RedisCommandServer(client('command'), sub, prefix, node, service.asService(), cap.log);
    await server.start();
    cleanups.push(() => server.stop());
    return { service, server, cap };
  }
  const until = async (cond: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('names channels with hash tags per node', () => {
    expect(commandChannel('p:', 'n1')).toBe('p:{sfu:n1}:cmd');
    expect(replyChannel('p:', 'n1')).toBe('p:{sig:n1}:rep');
  });

  it('pairs each reply with its request, whatever order the answers come in', async () => {
    const { client: c } = await signaling('sig-pair');
    const { service } = await media('sfu-pair');
    const delays: Record<string, number> = { c1: 60, c2: 0, c3: 30 };
    service.handle.mockImplementation(async (_m, params) => {
      const p = params as { callId: string };
      await new Promise((r) => setTimeout(r, delays[p.callId]));
      return { workers: [0], peers: Number(p.callId.slice(1)), producers: 0, consumers: 0 };
    });
    const done: string[] = [];
    const results = await Promise.all(
      ['c1', 'c2', 'c3'].map((callId) =>
        c.request('sfu-pair', 'callStats', { callId }).then((r) => {
          done.push(callId);
          return r;
        }),
      ),
    );
    expect(results.map((r) => r.peers)).toEqual([1, 2, 3]);
    expect(done).toEqual(['c2', 'c3', 'c1']);
    expect(service.handle.mock.calls.map((call) => call[0])).toEqual(['callStats', 'callStats', 'callStats']);
  });

  it('reaches only the node it names', async () => {
    const { client: c } = await signaling('sig-route');
    const one = await media('sfu-route-1');
    const two = await media('sfu-route-2');
    expect(await c.request('sfu-route-2', 'leave', scoped)).toEqual({ method: 'leave', params: scoped });
    expect(two.service.handle).toHaveBeenCalledTimes(1);
    expect(one.service.handle).not.toHaveBeenCalled();
  });

  it('keeps nodes apart when they share one subscriber connection', async () => {
    const sigSub = client('subscriber');
    const sfuSub = client('subscriber');
    const a = await signaling('sig-shared-a', 2000, sigSub);
    const b = await signaling('sig-shared-b', 2000, sigSub);
    const one = await media('sfu-shared-1', sfuSub);
    const two = await media('sfu-shared-2', sfuSub);
    expect(await a.client.request('sfu-shared-1', 'leave', scoped)).toEqual({ method: 'leave', params: scoped });
    expect(await b.client.request('sfu-shared-2', 'callStats', { callId: 'c9' })).toEqual({ method: 'callStats', params: { callId: 'c9' } });
    expect(one.service.handle).toHaveBeenCalledTimes(1);
    expect(two.service.handle).toHaveBeenCalledTimes(1);
    one.service.sink('sig-shared-b', frame('for-b'));
    two.service.sink('sig-shared-a', frame('for-a'));
    await until(() => a.events.length + b.events.length >= 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(a.events).toEqual([frame('for-a')]);
    expect(b.events).toEqual([frame('for-b')]);
  });

  it('maps error replies onto SfuError codes; unexpected errors become INTERNAL and are logged', async () => {
    const { client: c } = await signaling('sig-err');
    const { service, cap } = await media('sfu-err');
    service.handle.mockRejectedValueOnce(new SfuError('CALL_NOT_FOUND', 'This call has no media session here; rejoin'));
    await expectSfuError(c.request('sfu-err', 'leave', scoped), 'CALL_NOT_FOUND', /no media session/);
    service.handle.mockRejectedValueOnce(new SfuError('DRAINING', 'draining'));
    await expectSfuError(c.request('sfu-err', 'join', { ...scoped, address: '0xA', worker: 0, origin: 'sig-err' }), 'DRAINING');
    expect(cap.at('error')).toEqual([]);
    service.handle.mockRejectedValueOnce(new TypeError('cannot read properties of undefined'));
    await expectSfuError(c.request('sfu-err', 'leave', scoped), 'INTERNAL', /cannot read/);
    expect(cap.at('error')).toEqual([expect.objectContaining({ method: 'leave', msg: 'media command failed' })]);
    // The channel keeps working after failures.
    expect(await c.request('sfu-err', 'leave', scoped)).toEqual({ method: 'leave', params: scoped });
  });

  it('times out with UNAVAILABLE when no media node answers', async () => {
    const { client: c } = await signaling('sig-timeout', 150);
    const t0 = Date.now();
    await expectSfuError(c.request('sfu-nobody', 'leave', scoped), 'UNAVAILABLE', /sfu-nobody did not answer leave in 150 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('stops answering once the server is stopped', async () => {
    const { client: c } = await signaling('sig-stop', 200);
    const { server, service } = await media('sfu-stop');
    await c.request('sfu-stop', 'leave', scoped);
    await server.stop();
    await expectSfuError(c.request('sfu-stop', 'leave', scoped), 'UNAVAILABLE', /did not answer/);
    expect(service.handle).toHaveBeenCalledTimes(1);
  });

  it('close() rejects pending requests at once and refuses new ones', async () => {
    const { client: c } = await signaling('sig-close', 10_000);
    const pending = [c.request('sfu-nobody', 'leave', scoped), c.request('sfu-nobody', 'callStats', { callId: 'c1' })];
    const t0 = Date.now();
    await c.close();
    for (const p of pending) await expectSfuError(p, 'UNAVAILABLE', /client closed/);
    expect(Date.now() - t0).toBeLessThan(1000);
    await expectSfuError(c.request('sfu-nobody', 'leave', scoped), 'UNAVAILABLE', /client closed/);
  });

  it('ignores malformed frames and replies to unknown ids on its channel', async () => {
    const { client: c, events } = await signaling('sig-junk');
    await media('sfu-junk');
    const pub = client('command');
    await pub.spublish(replyChannel(prefix, 'sig-junk'), '{not json');
    await pub.spublish(replyChannel(prefix, 'sig-junk'), JSON.stringify({ id: 'nobody.1', ok: true, data: 1 }));
    expect(await c.request('sfu-junk', 'leave', scoped)).toEqual({ method: 'leave', params: scoped });
    expect(events).toEqual([]);
  });

  it("sends a media event to the serving signaling node's channel only", async () => {
    const a = await signaling('sig-ev-a');
    const b = await signaling('sig-ev-b');
    const { service } = await media('sfu-ev');
    service.sink('sig-ev-a', frame('for-a', ['0xA1', '0xA2']));
    service.sink('sig-ev-b', frame('for-b', ['0xB1']));
    await until(() => a.events.length === 1 && b.events.length === 1);
    // Published in this order on one connection: a misrouted event would have reached b first.
    expect(a.events).toEqual([frame('for-a', ['0xA1', '0xA2'])]);
    expect(b.events).toEqual([frame('for-b', ['0xB1'])]);
  });

  it('logs, does not throw, when a media event cannot be published', async () => {
    const service = new FakeService();
    const cap = captureLog();
    const broken = { spublish: async () => Promise.reject(new Error('connection is closed')) } as unknown as RedisClient;
    new RedisCommandServer(broken, client('subscriber'), prefix, 'sfu-broken', service.asService(), cap.log);
    service.sink('sig-x', frame('lost'));
    await until(() => cap.at('warn').length === 1);
    expect(cap.at('warn')[0]).toMatchObject({ msg: 'media event not sent', err: 'connection is closed' });
  });

  it('rejects at once with UNAVAILABLE when the command cannot be published', async () => {
    const sub = client('subscriber');
    const broken = { spublish: async () => Promise.reject(new Error('connection is closed')) } as unknown as RedisClient;
    const c = await RedisSfuClient.create(broken, sub, prefix, 'sig-broken', 10_000);
    cleanups.push(() => c.close());
    const t0 = Date.now();
    await expectSfuError(c.request('sfu-x', 'leave', scoped), 'UNAVAILABLE', /cannot reach media node: connection is closed/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
