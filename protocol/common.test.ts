import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { address, messageId, toChecksumAddress } from './common.ts';

describe('address', () => {
  const checksummed = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

  it('accepts the checksummed, all-lowercase and all-uppercase forms', () => {
    const random = Wallet.createRandom().address;
    for (const v of [checksummed, checksummed.toLowerCase(), `0x${checksummed.slice(2).toUpperCase()}`, random, random.toLowerCase()]) {
      expect(address.safeParse(v).success, v).toBe(true);
      expect(toChecksumAddress(v)).toBe(v === random || v === random.toLowerCase() ? random : checksummed);
    }
  });

  it('refuses mixed case with a wrong checksum, with one issue', () => {
    const r = address.safeParse('0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
    expect(r.success).toBe(false);
    expect(r.error?.issues).toHaveLength(1);
    expect(r.error?.issues[0]?.message).toMatch(/checksum/);
    expect(toChecksumAddress('0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed')).toBeNull();
    for (const v of ['0x1234', '5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', `0x${'g'.repeat(40)}`, '']) {
      expect(address.safeParse(v).error?.issues, v).toHaveLength(1);
    }
  });
});

describe('messageId', () => {
  it('accepts ids up to the int8 maximum', () => {
    for (const v of ['0', '1', '42', '9223372036854775807', '0000000000000000001']) expect(messageId.safeParse(v).success, v).toBe(true);
  });

  it('refuses ids beyond the int8 range or not decimal', () => {
    for (const v of ['9223372036854775808', '9999999999999999999', '12345678901234567890', '-1', '1.5', '', ' 1', '0x10']) {
      const r = messageId.safeParse(v);
      expect(r.success, v).toBe(false);
      expect(r.error?.issues, v).toHaveLength(1);
    }
  });
});
