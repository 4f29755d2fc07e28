import { EnsPlugin, FetchRequest, JsonRpcProvider, Network, isError } from 'ethers';
import type { Config } from '../../config/config.ts';
import { LogThrottle, type Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';

/** What ethers reports when the contract itself answered (a revert, or no code): an answer, never retried. */
const CONTRACT_ANSWERS = ['CALL_EXCEPTION', 'BAD_DATA'] as const;
const BACKOFF_BASE_MS = 200;

export function isContractAnswer(err: unknown): boolean {
  return CONTRACT_ANSWERS.some((code) => isError(err, code));
}

/**
 * One JSON-RPC provider per configured chain (CHAIN_RPC_URLS), each request bounded by a
 * timeout, failed requests retried with backoff. Everything that reads the chain goes
 * through `read()`, which turns transport failures into CHAIN_UNAVAILABLE and a missing
 * endpoint into CHAIN_NOT_CONFIGURED, so callers only see the catalogue's codes.
 */
export class ChainRpc {
  private readonly providers = new Map<number, JsonRpcProvider>();
  private readonly warn = new LogThrottle(10_000);

  constructor(
    private readonly settings: Config['chain'],
    private readonly log: Logger,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  configured(chainId: number): boolean {
    return this.settings.rpcUrls.has(chainId);
  }

  /** The provider for a chain; CHAIN_NOT_CONFIGURED (naming the setting) when there is none. */
  provider(chainId: number): JsonRpcProvider {
    const existing = this.providers.get(chainId);
    if (existing) return existing;
    const url = this.settings.rpcUrls.get(chainId);
    if (url === undefined) {
      throw new BlockRtcError('CHAIN_NOT_CONFIGURED', `Chain ${chainId} has no JSON-RPC endpoint: add "${chainId}=<url>" to CHAIN_RPC_URLS`);
    }
    const request = new FetchRequest(url);
    request.timeout = this.settings.rpcTimeoutMs;
    // Retries are ours (below), with our backoff and budget; ethers' own 429 loop would multiply them.
    request.setThrottleParams({ maxAttempts: 1 });
    const network = this.network(chainId);
    // A static network: no eth_chainId round trip before each use, and no retry loop in the
    // background when the endpoint is down at start-up.
    const provider = new JsonRpcProvider(request, network, { staticNetwork: network });
    this.providers.set(chainId, provider);
    return provider;
  }

  /**
   * Runs a read against a chain: each attempt that fails in transport (timeout, refused,
   * HTTP or JSON-RPC server error) is retried after 200 ms, 400 ms, … (with jitter), up to
   * CHAIN_RPC_RETRIES more times. A contract's answer (a revert) is passed through as is.
   */
  async read<T>(chainId: number, what: string, fn: (provider: JsonRpcProvider) => Promise<T>): Promise<T> {
    const provider = this.provider(chainId);
    let last: unknown;
    for (let attempt = 0; attempt <= this.settings.rpcRetries; attempt++) {
      if (attempt > 0) await this.sleep(BACKOFF_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random()));
      try {
        return await fn(provider);
      } catch (err) {
        if (isContractAnswer(err) || err instanceof BlockRtcError) throw err;
        last = err;
      }
    }
    const timedOut = isError(last, 'TIMEOUT');
    if (this.warn.due()) {
      this.log.warn({ chainId, what, cause: errorCode(last), held: this.warn.takeHeld() }, 'chain RPC unavailable');
    }
    throw new BlockRtcError(
      'CHAIN_UNAVAILABLE',
      `Chain ${chainId} ${timedOut ? 'timed out' : 'RPC failed'} (${what}, ${this.settings.rpcRetries + 1} attempts)`,
      { retryAfterMs: 5000 },
    );
  }

  /** Whether ethers can do ENS on this chain: a registry override, or one it knows (mainnet, Sepolia). */
  hasEns(chainId: number): boolean {
    return this.network(chainId).getPlugin('org.ethers.plugins.network.Ens') !== null;
  }

  close(): void {
    for (const p of this.providers.values()) p.destroy();
    this.providers.clear();
  }

  /** Chain networks carry the ENS registry ethers' ENS code reads: the override, or the one ethers knows. */
  private network(chainId: number): Network {
    const { ens } = this.settings;
    if (chainId === ens.chainId && ens.registry) {
      const network = new Network(`chain-${chainId}`, chainId);
      network.attachPlugin(new EnsPlugin(ens.registry, chainId));
      return network;
    }
    return Network.from(chainId);
  }
}

function errorCode(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) return String((err as { code: unknown }).code);
  return err instanceof Error ? err.name : 'unknown';
}
