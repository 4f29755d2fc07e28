import { tokenGate, type GateRule, type GroupInfo, type TokenGate } from '../../protocol/index.ts';
import type { Engine } from './engine.ts';

/** The form of a one-rule gate, as a person fills it in (amounts and ids in base units, decimal). */
export type SimpleGate =
  | { standard: 'erc20'; chainId: number; contract: string; minAmount: string }
  | { standard: 'erc721'; chainId: number; contract: string; tokenId?: string }
  | { standard: 'erc1155'; chainId: number; contract: string; tokenId: string; minAmount: string };

/** Builds a gate from rules, checked as the server checks it (a bad rule throws before anything is sent). */
export function buildGate(rules: GateRule[] | SimpleGate, match: 'any' | 'all' = 'any'): TokenGate {
  return tokenGate.parse({ match, rules: Array.isArray(rules) ? rules : [rules] });
}

/** One line a badge can show: "Holds ≥ 100 of 0x12…cd (chain 1)", rules joined with "or"/"and". */
export function describeGate(gate: TokenGate): string {
  const short = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;
  const one = (r: GateRule): string => {
    const where = `${short(r.contract)} (chain ${r.chainId})`;
    switch (r.standard) {
      case 'erc20':
        return `holds ≥ ${r.minAmount} of ERC-20 ${where}`;
      case 'erc721':
        return r.tokenId === undefined ? `holds an NFT of ${where}` : `holds NFT #${r.tokenId} of ${where}`;
      case 'erc1155':
        return `holds ≥ ${r.minAmount} of token #${r.tokenId} of ERC-1155 ${where}`;
    }
  };
  const text = gate.rules.map(one).join(gate.match === 'any' ? ' or ' : ' and ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Token gates of groups. Only a group's admins may set or clear one, and the admin setting it
 * must pass it; the server answers GATE_NOT_MET, CHAIN_UNAVAILABLE or CHAIN_NOT_CONFIGURED
 * (as `BlockRtcClientError` codes) when that cannot be shown.
 */
export class GateClient {
  constructor(private readonly engine: Engine) {}

  async set(group: string, gate: TokenGate | SimpleGate): Promise<GroupInfo> {
    const full = 'rules' in gate ? buildGate(gate.rules, gate.match) : buildGate(gate);
    return (await this.engine.signal.request('group.update', { group, gate: full })).group;
  }

  async clear(group: string): Promise<GroupInfo> {
    return (await this.engine.signal.request('group.update', { group, gate: null })).group;
  }
}
