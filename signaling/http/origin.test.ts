import type { IncomingMessage } from 'node:http';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { clientIp, limitKey, proxyTrust, type TrustedProxies } from './origin.ts';

const req = (peer: string, xff?: string | string[]) => ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;
const trust = (hops: number, cidrs: string[] = []): TrustedProxies => ({ hops, cidrs });

describe('clientIp', () => {
  it('is the socket peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientIp(req('203.0.113.9', '1.2.3.4'), trust(0))).toBe('203.0.113.9');
  });

  it('takes the rightmost address that is not a trusted hop, so a client cannot rotate its own entries', () => {
    // Client 198.51.100.7 prepends a spoofed entry; the ingress (10.0.0.5) appends the real one.
    expect(clientIp(req('10.0.0.5', '6.6.6.6, 198.51.100.7'), trust(1))).toBe('198.51.100.7');
    expect(clientIp(req('10.0.0.5', '7.7.7.7, 8.8.8.8, 198.51.100.7'), trust(1))).toBe('198.51.100.7');
    // Two hops: load balancer then ingress.
    expect(clientIp(req('10.0.0.5', '6.6.6.6, 198.51.100.7, 10.0.0.9'), trust(2))).toBe('198.51.100.7');
    // Repeated headers count as one list.
    expect(clientIp(req('10.0.0.5', ['6.6.6.6', '198.51.100.7']), trust(1))).toBe('198.51.100.7');
  });

  it('stops at the leftmost address when every hop is trusted, and at the peer without a header', () => {
    expect(clientIp(req('10.0.0.5', '198.51.100.7'), trust(3))).toBe('198.51.100.7');
    expect(clientIp(req('10.0.0.5'), trust(1))).toBe('10.0.0.5');
  });

  it('skips proxies by CIDR wherever they sit, v4 and v6, and unwraps IPv4-mapped peers', () => {
    const t = trust(0, ['10.0.0.0/8', 'fd00::/8']);
    expect(clientIp(req('::ffff:10.1.2.3', '6.6.6.6, 2001:db8::1, fd00::7, 10.9.9.9'), t)).toBe('2001:db8::1');
    expect(clientIp(req('203.0.113.9', '6.6.6.6'), t)).toBe('203.0.113.9');
  });

  it('agrees with Fastify given the same trust function', async () => {
    const cases: [TrustedProxies, string, string][] = [
      [trust(1), '127.0.0.1', '6.6.6.6, 198.51.100.7'],
      [trust(2), '127.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.1'],
      [trust(0, ['127.0.0.0/8', '10.0.0.0/8']), '127.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.1'],
      [trust(0), '127.0.0.1', '6.6.6.6'],
    ];
    for (const [t, , xff] of cases) {
      const app = Fastify({ trustProxy: proxyTrust(t) });
      app.get('/', async (r) => ({ fastify: r.ip, ours: clientIp(r.raw, t) }));
      const res = await app.inject({ method: 'GET', url: '/', headers: { 'x-forwarded-for': xff }, remoteAddress: '127.0.0.1' });
      const { fastify, ours } = res.json() as { fastify: string; ours: string };
      expect(ours).toBe(fastify);
      await app.close();
    }
  });
});

describe('limitKey', () => {
  it('keys IPv4 by address and IPv6 by its /64', () => {
    expect(limitKey('198.51.100.7')).toBe('198.51.100.7');
    expect(limitKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(limitKey('2001:0db8:0001:0002::1')).toBe('2001:db8:1:2::/64');
    expect(limitKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(limitKey('2001:db8::1')).toBe(limitKey('2001:db8:0:0:ffff::9'));
    expect(limitKey('::1')).toBe('0:0:0:0::/64');
  });
});
