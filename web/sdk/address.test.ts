import { describe, expect, it } from 'vitest';
import { normalize } from './address.ts';
import { BlockRtcClientError } from './errors.ts';

describe('normalize', () => {
  it('gives every spelling of an address its checksummed form', () => {
    const checksummed = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
    expect(normalize(checksummed.toLowerCase())).toBe(checksummed);
    expect(normalize(`  ${checksummed.toUpperCase().replace('0X', '0x')} `)).toBe(checksummed);
  });

  it('rejects what is not an address with INVALID_FIELDS', () => {
    for (const bad of ['', 'bob', '0x1234', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedZZ']) {
      const err = (() => {
        try {
          normalize(bad);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(BlockRtcClientError);
      expect(err).toMatchObject({ code: 'INVALID_FIELDS' });
    }
  });
});
