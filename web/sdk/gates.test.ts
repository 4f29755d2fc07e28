import { describe, expect, it } from 'vitest';
import { buildGate, describeGate } from './gates.ts';

const contract = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

describe('gate helpers', () => {
  it('builds a one-rule gate from the form and describes it for a badge', () => {
    const gate = buildGate({ standard: 'erc20', chainId: 1, contract, minAmount: '100' });
    expect(gate).toEqual({ match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract, minAmount: '100' }] });
    expect(describeGate(gate)).toBe('Holds ≥ 100 of ERC-20 0x5FbD…0aa3 (chain 1)');
  });

  it('joins rules with or / and and names token ids', () => {
    const gate = buildGate(
      [
        { standard: 'erc721', chainId: 8453, contract, tokenId: '42' },
        { standard: 'erc1155', chainId: 10, contract, tokenId: '7', minAmount: '2' },
      ],
      'all',
    );
    expect(describeGate(gate)).toBe('Holds NFT #42 of 0x5FbD…0aa3 (chain 8453) and holds ≥ 2 of token #7 of ERC-1155 0x5FbD…0aa3 (chain 10)');
  });

  it('refuses what the server would refuse before sending it', () => {
    expect(() => buildGate({ standard: 'erc20', chainId: 1, contract, minAmount: '0' })).toThrow();
    expect(() => buildGate({ standard: 'erc20', chainId: 1, contract: '0x1234', minAmount: '1' })).toThrow();
  });
});
