import { describe, expect, it } from 'vitest';
import { tokenGate } from './gates.ts';

const contract = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

describe('tokenGate', () => {
  it('accepts each rule kind combined with any/all', () => {
    const gate = {
      match: 'all',
      rules: [
        { standard: 'erc20', chainId: 1, contract, minAmount: '1000000000000000000' },
        { standard: 'erc721', chainId: 8453, contract },
        { standard: 'erc721', chainId: 8453, contract, tokenId: '0' },
        { standard: 'erc1155', chainId: 10, contract, tokenId: '5', minAmount: '2' },
      ],
    };
    expect(tokenGate.parse(gate)).toEqual(gate);
  });

  it.each([
    ['no rules', { match: 'any', rules: [] }],
    ['unknown match', { match: 'some', rules: [{ standard: 'erc721', chainId: 1, contract }] }],
    ['unknown standard', { match: 'any', rules: [{ standard: 'erc777', chainId: 1, contract }] }],
    ['zero amount', { match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract, minAmount: '0' }] }],
    ['numeric amount', { match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract, minAmount: 5 }] }],
    ['amount past uint256', { match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract, minAmount: (2n ** 256n).toString() }] }],
    ['1155 without id', { match: 'any', rules: [{ standard: 'erc1155', chainId: 1, contract, minAmount: '1' }] }],
    ['bad checksum', { match: 'any', rules: [{ standard: 'erc721', chainId: 1, contract: contract.replace('a', 'A') }] }],
    ['extra field', { match: 'any', rules: [{ standard: 'erc721', chainId: 1, contract, owner: contract }] }],
    ['chain id 0', { match: 'any', rules: [{ standard: 'erc721', chainId: 0, contract }] }],
    ['eleven rules', { match: 'any', rules: Array(11).fill({ standard: 'erc721', chainId: 1, contract }) }],
  ])('refuses %s', (_label, gate) => {
    expect(tokenGate.safeParse(gate).success).toBe(false);
  });
});
