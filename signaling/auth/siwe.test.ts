import { Wallet, hashMessage } from 'ethers';
import { SiweMessage } from 'siwe';
import { describe, expect, it } from 'vitest';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { ContractSignatureChecker } from '../chain/signatures.ts';
import { newNonce, verifySiwe, verifySiweWallet, type SiweRules } from './siwe.ts';

const unexpected = (): never => {
  throw new Error('expected a refusal');
};

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

describe('newNonce', () => {
  it('is 32 hex characters and new each time', () => {
    const a = newNonce();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(newNonce()).not.toBe(a);
  });
});

describe('verifySiwe limits', () => {
  // A fixed clock: each time limit is checked on both sides of its boundary.
  const now = Date.parse('2030-01-01T12:00:00.000Z');
  const at = (ms: number) => new Date(now + ms).toISOString();
  const check = async (fields: Partial<SiweMessage>) => {
    const { message, signature } = await signed({ issuedAt: at(0), ...fields });
    return codeOf(() => verifySiwe(message, signature, rules, now));
  };

  it('accepts Issued At up to the skew ahead and up to the maximum age behind', async () => {
    expect(await check({ issuedAt: at(30_000) })).toBe('ok');
    expect(await check({ issuedAt: at(60_000) })).toBe('ok');
    expect(await check({ issuedAt: at(60_001) })).toBe('AUTH_MESSAGE_NOT_YET_VALID');
    expect(await check({ issuedAt: at(-300_000) })).toBe('ok');
    expect(await check({ issuedAt: at(-300_001) })).toBe('AUTH_MESSAGE_EXPIRED');
  });

  it('honours Expiration Time and Not Before with the skew', async () => {
    expect(await check({ expirationTime: at(1) })).toBe('ok');
    expect(await check({ expirationTime: at(-59_999) })).toBe('ok');
    expect(await check({ expirationTime: at(-60_000) })).toBe('AUTH_MESSAGE_EXPIRED');
    expect(await check({ notBefore: at(-1) })).toBe('ok');
    expect(await check({ notBefore: at(60_000) })).toBe('ok');
    expect(await check({ notBefore: at(60_001) })).toBe('AUTH_MESSAGE_NOT_YET_VALID');
  });

  it('uses the current time when none is given', async () => {
    const { message, signature } = await signed({ issuedAt: new Date(Date.now() - 290_000).toISOString() });
    expect(codeOf(() => verifySiwe(message, signature, rules))).toBe('ok');
  });

  it('compares the URI by origin only', async () => {
    expect(await check({ uri: 'https://chat.example/deep/path?x=1' })).toBe('ok');
    expect(await check({ uri: 'https://chat.example:8443/' })).toBe('AUTH_URI_MISMATCH');
    expect(await check({ uri: 'http://chat.example/' })).toBe('AUTH_URI_MISMATCH');
    // Valid for EIP-4361 (RFC 3986) but not a URL: the port is out of range.
    expect(await check({ uri: 'https://chat.example:99999/' })).toBe('AUTH_URI_MISMATCH');
  });

  it('accepts every allowed chain', async () => {
    expect(await check({ chainId: 10 })).toBe('ok');
  });

  it('says what was wrong in the error message', async () => {
    const message = (fields: Partial<SiweMessage>) =>
      signed({ issuedAt: at(0), ...fields }).then(({ message: m, signature }) => {
        try {
          verifySiwe(m, signature, rules, now);
        } catch (e) {
          return (e as Error).message;
        }
        return 'ok';
      });
    expect(await message({ domain: 'evil.example' })).toBe('The message was signed for "evil.example", not "chat.example"');
    expect(await message({ chainId: 5 })).toBe('Chain 5 is not accepted; use one of 1, 10');
    expect(await message({ issuedAt: at(120_000) })).toBe('The message is issued in the future');
    expect(await message({ issuedAt: at(-400_000) })).toBe('The message was issued too long ago');
    expect(await message({ expirationTime: at(-120_000) })).toBe('The sign-in message has expired');
    expect(await message({ notBefore: at(120_000) })).toBe('The sign-in message is not valid yet');
  });
});

describe('verifySiweWallet', () => {
  /** A chain that answers from a table, recording what it was asked. */
  const fakeChain = (accepts: boolean, configured = [1]) => {
    const asked: { chainId: number; address: string; hash: string; signature: string }[] = [];
    const checker: ContractSignatureChecker = {
      supports: (chainId) => configured.includes(chainId),
      isValidSignature: async (chainId, address, hash, signature) => {
        asked.push({ chainId, address, hash, signature });
        return accepts;
      },
    };
    return { checker, asked };
  };
  const contractWallet = Wallet.createRandom().address;
  const codeOfAsync = (p: Promise<unknown>) => p.then(
    () => 'ok',
    (e: unknown) => (e instanceof BlockRtcError ? e.code : String(e)),
  );

  it('settles an EOA signature offline without asking the chain', async () => {
    const { checker, asked } = fakeChain(false);
    const nonce = newNonce();
    const { message, signature } = await signed({ nonce });
    expect(await verifySiweWallet(message, signature, rules, checker)).toEqual({ address: wallet.address, nonce });
    expect(asked).toEqual([]);
  });

  it("asks the wallet contract on the message's chain with the EIP-191 hash of the message", async () => {
    const { checker, asked } = fakeChain(true);
    const { message, signature } = await signed({ address: contractWallet });
    expect((await verifySiweWallet(message, signature, rules, checker)).address).toBe(contractWallet);
    expect(asked).toEqual([{ chainId: 1, address: contractWallet, hash: hashMessage(message), signature }]);
    const long = `${signature}${'ab'.repeat(40)}`;
    expect((await verifySiweWallet(message, long, rules, checker)).address).toBe(contractWallet);
  });

  it('refuses what the contract refuses, and checks the message before any chain call', async () => {
    const { checker, asked } = fakeChain(false);
    const { message, signature } = await signed({ address: contractWallet });
    expect(await codeOfAsync(verifySiweWallet(message, signature, rules, checker))).toBe('AUTH_BAD_SIGNATURE');
    const wrongDomain = await signed({ address: contractWallet, domain: 'evil.example' });
    expect(await codeOfAsync(verifySiweWallet(wrongDomain.message, wrongDomain.signature, rules, checker))).toBe('AUTH_DOMAIN_MISMATCH');
    expect(asked).toHaveLength(1);
  });

  it('without an endpoint for the chain: a wrong key-sized signature is AUTH_BAD_SIGNATURE, a contract-wallet one CHAIN_NOT_CONFIGURED', async () => {
    const { checker, asked } = fakeChain(true, []);
    const { message, signature } = await signed({ address: contractWallet, chainId: 10 });
    const bad = await verifySiweWallet(message, signature, rules, checker).then(unexpected, (e: unknown) => e as BlockRtcError);
    expect(bad.code).toBe('AUTH_BAD_SIGNATURE');
    expect(bad.message).toMatch(/CHAIN_RPC_URLS/);
    const unset = await verifySiweWallet(message, `${signature}00`, rules, checker).then(unexpected, (e: unknown) => e as BlockRtcError);
    expect(unset.code).toBe('CHAIN_NOT_CONFIGURED');
    expect(unset.message).toBe('Contract-wallet sign-in on chain 10 is not set up: add "10=<url>" to CHAIN_RPC_URLS');
    expect(asked).toEqual([]);
  });
});
