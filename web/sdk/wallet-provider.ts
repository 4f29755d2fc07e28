import { getBytes, isHexString, toUtf8Bytes, type Wallet } from 'ethers';
import type { Eip1193Provider } from './auth.ts';
import { BlockRtcClientError } from './errors.ts';

/**
 * An EIP-1193 provider backed by a local ethers Wallet: enough for sign-in (accounts, chain
 * id, personal_sign). Meant for development and tests, never for real funds.
 */
export class WalletProvider implements Eip1193Provider {
  constructor(
    private readonly wallet: Pick<Wallet, 'address' | 'signMessage'>,
    private readonly chainId = 1,
  ) {}

  async request(args: { method: string; params?: unknown[] | Record<string, unknown> }): Promise<unknown> {
    switch (args.method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return [this.wallet.address];
      case 'eth_chainId':
        return `0x${this.chainId.toString(16)}`;
      case 'personal_sign': {
        const [data] = (args.params as unknown[] | undefined) ?? [];
        if (typeof data !== 'string') throw new BlockRtcClientError('PROVIDER_ERROR', 'personal_sign needs a message');
        // Wallets take hex-encoded bytes; plain text is accepted as well.
        return this.wallet.signMessage(isHexString(data) ? getBytes(data) : toUtf8Bytes(data));
      }
      default:
        throw Object.assign(new Error(`Unsupported method ${args.method}`), { code: 4200 });
    }
  }
}
