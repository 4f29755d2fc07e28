import { describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { checksumAddress } from './address.ts';

describe('checksumAddress', () => {
  it('returns the EIP-55 form for any casing, the same on repeat calls', () => {
    const addr = Wallet.createRandom().address;
    expect(checksumAddress(addr.toLowerCase())).toBe(addr);
    expect(checksumAddress(addr.toLowerCase())).toBe(addr);
    expect(checksumAddress(addr)).toBe(addr);
  });

  it('refuses invalid addresses every time', () => {
    // The EIP-55 example address with one letter's case flipped fails its checksum.
    expect(checksumAddress('0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed')).toBe('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
    const bad = '0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
    expect(() => checksumAddress(bad)).toThrow();
    expect(() => checksumAddress(bad)).toThrow();
    expect(() => checksumAddress('0x1234')).toThrow();
  });
});
