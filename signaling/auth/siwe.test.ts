import { Wallet } from 'ethers';
import { SiweMessage } from 'siwe';
import { describe, expect, it } from 'vitest';
import { BlockRtcError } from '../../protocol/errors.ts';
import { newNonce, verifySiwe, type SiweRules } from './siwe.ts';

const rules: SiweRules = { domain: 'chat.example', uri: 'https://chat.example', chainIds: [1, 10], maxAgeSec: 300, skewSec: 60 };
const wallet = Wallet.createRandom();

async function signed(fields: Partial<SiweMessage> = {}, signer = wallet) {
  const message = new SiweMessage({
    domain: 'chat.example',
    address: wallet.address,
    uri: 'https://chat.example/app',
    version: '1',
    chainId: 1,
    nonce: newNonce(),
    issuedAt: new Date().toISOString(),
    ...fields,
  }).prepareMessage();
  return { message, signature: await signer.signMessage(message) };
}

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof BlockRtcError ? e.code : String(e);
  }
  return 'ok';
};

describe('verifySiwe', () => {
  it('returns the checksummed address and the nonce of a valid message', async () => {
    const nonce = newNonce();
    const { message, signature } = await signed({ nonce });
    expect(verifySiwe(message, signature, rules)).toEqual({ address: wallet.address, nonce });
  });

  it.each([
    ['AUTH_DOMAIN_MISMATCH', { domain: 'evil.example' }],
    ['AUTH_URI_MISMATCH', { uri: 'https://evil.example/' }],
    ['AUTH_CHAIN_NOT_ALLOWED', { chainId: 5 }],
    ['AUTH_MESSAGE_EXPIRED', { expirationTime: new Date(Date.now() - 61_000).toISOString() }],
    ['AUTH_MESSAGE_EXPIRED', { issuedAt: new Date(Date.now() - 3600_000).toISOString() }],
    ['AUTH_MESSAGE_NOT_YET_VALID', { notBefore: new Date(Date.now() + 3600_000).toISOString() }],
    ['AUTH_MESSAGE_NOT_YET_VALID', { issuedAt: new Date(Date.now() + 3600_000).toISOString() }],
  ] as const)('refuses with %s', async (code, fields) => {
    const { message, signature } = await signed(fields);
    expect(codeOf(() => verifySiwe(message, signature, rules))).toBe(code);
  });

  it('refuses a signature by another key, a tampered message and garbage', async () => {
    const forged = await signed({}, Wallet.createRandom());
    expect(codeOf(() => verifySiwe(forged.message, forged.signature, rules))).toBe('AUTH_BAD_SIGNATURE');
    const good = await signed();
    expect(codeOf(() => verifySiwe(good.message.replace('Chain ID: 1', 'Chain ID: 10'), good.signature, rules))).toBe('AUTH_BAD_SIGNATURE');
    expect(codeOf(() => verifySiwe(good.message, `0x${'00'.repeat(65)}`, rules))).toBe('AUTH_BAD_SIGNATURE');
    expect(codeOf(() => verifySiwe('hello', good.signature, rules))).toBe('AUTH_INVALID_MESSAGE');
  });
});
