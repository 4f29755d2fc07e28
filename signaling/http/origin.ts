import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Requests without an Origin (non-browser clients) pass; browsers always send one. */
export function originAllowed(origin: string | undefined, allowed: string[]): boolean {
  if (origin === undefined) return true;
  return allowed.includes('*') || allowed.includes(origin);
}

export interface TrustedProxies {
  /** Proxies in front of the node, counted from the socket peer. */
  hops: number;
  /** Addresses of proxies (any of them is skipped wherever it appears in the chain). */
  cidrs: string[];
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; ports and brackets dropped from forwarded entries. */
function normalise(addr: string): string {
  let a = addr.trim();
  if (a.startsWith('[')) a = a.slice(1, a.indexOf(']') > 0 ? a.indexOf(']') : undefined);
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a)) a = a.slice(7);
  return a;
}

const trustCache = new WeakMap<TrustedProxies, (addr: string, i: number) => boolean>();

/**
 * The trust function for the address chain read from the socket outwards (index 0 = the
 * socket peer, then X-Forwarded-For from right to left). Fastify's `trustProxy` takes the
 * same function, so `request.ip` and `clientIp` always agree.
 */
export function proxyTrust(t: TrustedProxies): (addr: string, i: number) => boolean {
  let fn = trustCache.get(t);
  if (fn) return fn;
  const list = new BlockList();
  for (const c of t.cidrs) {
    const [net, bits] = c.split('/') as [string, string | undefined];
    const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(net, bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits), family);
  }
  const hasCidrs = t.cidrs.length > 0;
  fn = (addr: string, i: number) => {
    if (i < t.hops) return true;
    if (!hasCidrs) return false;
    const a = normalise(addr);
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
  trustCache.set(t, fn);
  return fn;
}

/**
 * The client's address: walking from the socket peer leftwards through X-Forwarded-For,
 * the first address that is not a trusted proxy (the rightmost untrusted one). Entries a
 * client wrote itself sit to the left of it and are never read. With no trusted proxies
 * the socket peer is the client.
 */
export function clientIp(req: IncomingMessage, trust: TrustedProxies): string {
  const peer = normalise(req.socket.remoteAddress ?? 'unknown');
  if (trust.hops === 0 && trust.cidrs.length === 0) return peer;
  const fwd = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(fwd) ? fwd.join(',') : (fwd ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  const chain = [peer, ...entries.reverse().map(normalise)];
  const trusted = proxyTrust(trust);
  for (let i = 0; i < chain.length - 1; i++) if (!trusted(chain[i]!, i)) return chain[i]!;
  // Every hop trusted: the leftmost address is as far as the chain goes.
  return chain[chain.length - 1]!;
}

/**
 * The key per-IP limits count against: an IPv4 address, or the /64 of an IPv6 one (one
 * subscriber usually holds a whole /64, so a per-address key would be free to rotate).
 */
export function limitKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::') as [string, string?];
  const left = head ? head.split(':') : [];
  const right = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => (g || '0').replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
