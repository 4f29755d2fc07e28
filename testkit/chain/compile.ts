import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InterfaceAbi } from 'ethers';
import solc from 'solc';

export interface Artifact {
  abi: InterfaceAbi;
  /** Creation code, 0x-prefixed. */
  bytecode: string;
}

const TEST_CONTRACTS = fileURLToPath(new URL('./contracts/', import.meta.url));
const VALIDATOR = fileURLToPath(new URL('../../signaling/chain/contracts/SignatureValidator.sol', import.meta.url));

/**
 * Paris: ganache 7.9 runs Shanghai at most, and without PUSH0 the code also runs on older
 * chains. No metadata hash, so the same source always gives the same bytes (the validator's
 * creation code is checked in and compared against a fresh compile).
 */
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'paris',
  metadata: { bytecodeHash: 'none' },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
} as const;

let compiled: Record<string, Artifact> | null = null;

/**
 * Every contract of testkit/chain/contracts and the sign-in validator, by contract name.
 * solc-js takes seconds, so the output is kept in the temp directory under a hash of the
 * sources, compiler version and settings: one compile per change, shared by test files.
 */
export function compileContracts(): Record<string, Artifact> {
  if (compiled) return compiled;
  const sources: Record<string, { content: string }> = {};
  for (const file of readdirSync(TEST_CONTRACTS).filter((f) => f.endsWith('.sol')).sort()) {
    sources[file] = { content: readFileSync(join(TEST_CONTRACTS, file), 'utf8') };
  }
  sources[basename(VALIDATOR)] = { content: readFileSync(VALIDATOR, 'utf8') };
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const key = createHash('sha256').update(solc.version()).update(JSON.stringify(input)).digest('hex').slice(0, 24);
  const dir = join(tmpdir(), 'blockrtc-solc');
  const file = join(dir, `${key}.json`);
  try {
    compiled = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Artifact>;
    return compiled;
  } catch {
    // Not compiled yet (or a partial file from a crash): compile below.
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: (path: string) => (sources[path] ? { contents: sources[path].content } : { error: `not found: ${path}` }) })) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: InterfaceAbi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const artifacts: Record<string, Artifact> = {};
  for (const contracts of Object.values(output.contracts)) {
    for (const [name, c] of Object.entries(contracts)) artifacts[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
  }
  mkdirSync(dir, { recursive: true });
  // Written aside and renamed: test files compiling at once never read half a file.
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(artifacts));
  renameSync(partial, file);
  compiled = artifacts;
  return artifacts;
}
