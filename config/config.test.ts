import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig } from './config.ts';

const base = { JWT_SECRET: 'x'.repeat(40), DATABASE_URL: 'postgres://u:pw@db/blockrtc', REDIS_URL: 'redis://r:6379' };

describe('loadConfig', () => {
  it('gives the embedded mode working defaults with no environment at all', () => {
    const c = loadConfig('all', {});
    expect(c.db.url).toBeNull();
    expect(c.redis.url).toBeNull();
    expect(c.auth.jwtSecretGenerated).toBe(true);
    expect(c.auth.devWallet).toBe(true);
    expect(c.http).toMatchObject({ host: '127.0.0.1', port: 8080, publicOrigin: 'http://localhost:8080' });
    expect(c.auth.domain).toBe('localhost:8080');
  });

  it('names every bad variable in one error', () => {
    let err: unknown;
    try {
      loadConfig('signaling', { ...base, PORT: 'eighty', RATE_LIMIT_MESSAGES: '10 per second', AUTH_CHAIN_IDS: '1,x' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toContain('PORT="eighty"');
    expect(problems).toContain('RATE_LIMIT_MESSAGES');
    expect(problems).toContain('AUTH_CHAIN_IDS');
  });

  it('requires the shared pieces of a signaling node and never echoes secrets', () => {
    expect(() => loadConfig('signaling', {})).toThrow(/JWT_SECRET: required[\s\S]*REDIS_URL or REDIS_CLUSTER_NODES[\s\S]*DATABASE_URL/);
    try {
      loadConfig('signaling', { ...base, JWT_SECRET: 'short-secret-value' });
      expect.unreachable();
    } catch (e) {
      expect(String(e)).toContain('JWT_SECRET=<hidden>');
      expect(String(e)).not.toContain('short-secret-value');
    }
  });

  it('parses lists, rates and cluster nodes', () => {
    const c = loadConfig('signaling', { ...base, REDIS_URL: '', REDIS_CLUSTER_NODES: 'a:7000, b:7001', AUTH_CHAIN_IDS: '1,137', RATE_LIMIT_AUTH: '5/30' });
    expect(c.redis.clusterNodes).toEqual(['a:7000', 'b:7001']);
    expect(c.auth.chainIds).toEqual([1, 137]);
    expect(c.limits.auth).toEqual({ limit: 5, windowMs: 30_000 });
  });

  it('reads trusted proxies, session limits and upload limits', () => {
    const d = loadConfig('signaling', base);
    expect(d.http.trustProxy).toEqual({ hops: 0, cidrs: [] });
    expect(d.auth).toMatchObject({ sessionMaxAgeSec: 7 * 86400, maxConnectionsPerUser: 10 });
    expect(d.http).toMatchObject({ uploadQuotaBytes: 200 * 1024 * 1024, attachmentOrphanTtlSec: 86400 });
    // TRUST_PROXY=true alone is one proxy; the hop count wins when both are set.
    expect(loadConfig('signaling', { ...base, TRUST_PROXY: 'true' }).http.trustProxy.hops).toBe(1);
    expect(loadConfig('signaling', { ...base, TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '2' }).http.trustProxy.hops).toBe(2);
    expect(loadConfig('signaling', { ...base, TRUST_PROXY_CIDRS: '10.0.0.0/8, fd00::/8,192.0.2.1' }).http.trustProxy.cidrs).toEqual(['10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
    expect(() => loadConfig('signaling', { ...base, TRUST_PROXY_CIDRS: '10.0.0.0/33' })).toThrow(/TRUST_PROXY_CIDRS/);
    expect(() => loadConfig('signaling', { ...base, MAX_CONNECTIONS_PER_USER: '0' })).toThrow(/MAX_CONNECTIONS_PER_USER/);
  });

  it('keeps the development wallet out of production nodes', () => {
    expect(() => loadConfig('signaling', { ...base, DEV_WALLET: 'true' })).toThrow(/DEV_WALLET/);
  });

  it('redacts secrets and credentials for logging', () => {
    const shown = JSON.stringify(redactConfig(loadConfig('signaling', base)));
    expect(shown).not.toContain('x'.repeat(40));
    expect(shown).not.toContain(':pw@');
  });
});

describe('chain settings', () => {
  it('has no endpoints by default and ENS on chain 1', () => {
    const c = loadConfig('signaling', base).chain;
    expect(c.rpcUrls.size).toBe(0);
    expect(c).toMatchObject({ rpcTimeoutMs: 5000, rpcRetries: 2, cacheTtlSec: 60, gateGraceSec: 3600, ens: { chainId: 1, registry: null, ttlSec: 900 } });
  });

  it('reads one endpoint per chain and refuses bad lists without echoing them', () => {
    const c = loadConfig('signaling', { ...base, CHAIN_RPC_URLS: '1=https://eth.example/v3/KEY, 8453=http://base.example', ENS_REGISTRY: `0x${'1'.repeat(40)}` }).chain;
    expect([...c.rpcUrls]).toEqual([[1, 'https://eth.example/v3/KEY'], [8453, 'http://base.example']]);
    expect(c.ens.registry).toBe(`0x${'1'.repeat(40)}`);
    for (const bad of ['https://eth.example', '1=ftp://x', '1=https://a,1=https://b', 'x=https://a']) {
      expect(() => loadConfig('signaling', { ...base, CHAIN_RPC_URLS: bad })).toThrow(/CHAIN_RPC_URLS=<hidden>/);
    }
    expect(() => loadConfig('signaling', { ...base, ENS_REGISTRY: '0x12' })).toThrow(/ENS_REGISTRY/);
    expect(JSON.stringify(redactConfig(loadConfig('signaling', { ...base, CHAIN_RPC_URLS: '1=https://eth.example/v3/KEY' })))).not.toContain('KEY');
  });
});
