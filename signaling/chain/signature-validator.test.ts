import { describe, expect, it } from 'vitest';
import { compileContracts } from '../../testkit/chain/compile.ts';
import { SIGNATURE_VALIDATOR_BYTECODE } from './signature-validator.ts';

describe('SIGNATURE_VALIDATOR_BYTECODE', () => {
  it('is the compiled contracts/SignatureValidator.sol (regenerate: node bin/run-ts.mjs testkit/chain/build-validator.ts)', () => {
    expect(SIGNATURE_VALIDATOR_BYTECODE).toBe(compileContracts().SignatureValidator!.bytecode);
  });
});
