import { describe, expect, it } from 'vitest';
import type { GatedMembership, GroupRow, GroupStore, MemberRow } from '../../db/groups.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { TokenGate } from '../../protocol/index.ts';
import { captureLog } from '../../testkit/fakes.ts';
import { GateAccess } from '../chain/gate-policy.ts';
import type { GateEvaluator, GateResult } from '../chain/gates.ts';
import { GateKeeper, type GateRevocation } from './gate-keeper.ts';

const GATE: TokenGate = { match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3', minAmount: '1' }] };
const GRACE_MS = 60_000;
const [ALICE, BOB, CAROL] = ['0x' + 'a'.repeat(40), '0x' + 'b'.repeat(40), '0x' + 'c'.repeat(40)];

/** Answers per address: held, not held, or the chain's error. */
function evaluator(answers: Map<string, boolean | BlockRtcError>): GateEvaluator {
  const fake: Pick<GateEvaluator, 'checkGate'> = {
    async checkGate(_gate, address): Promise<GateResult> {
      const a = answers.get(address);
      if (a instanceof BlockRtcError) throw a;
      return { allowed: a === true, rules: [] };
    },
  };
  return fake as GateEvaluator;
}

function setup(answers: Map<string, boolean | BlockRtcError>, members: GatedMembership[], now = 1_000_000) {
  const verified: { address: string; at: Date }[] = [];
  const revoked: { address: string; reason: GateRevocation }[] = [];
  const groups: Pick<GroupStore, 'get' | 'member' | 'gateDue' | 'gatedOf' | 'markGateVerified'> = {
    gateDue: async () => members,
    gatedOf: async (a) => members.filter((m) => m.address === a),
    get: async (id) => ({ id, gate: GATE }) as GroupRow,
    member: async (_g, a) => {
      const m = members.find((x) => x.address === a);
      return m ? ({ state: 'active', gateVerifiedAt: m.verifiedAt } as MemberRow) : null;
    },
    markGateVerified: async (_g, address, at) => void verified.push({ address, at }),
  };
  const keeper = new GateKeeper({
    groups,
    access: new GateAccess(evaluator(answers), GRACE_MS, () => now),
    recheckSec: 300,
    revoke: async (_g, address, reason) => void revoked.push({ address, reason }),
    log: captureLog().log,
    now: () => now,
  });
  return { keeper, verified, revoked };
}

const member = (address: string, verifiedAt: number): GatedMembership => ({ groupId: 'g', address, gate: GATE, verifiedAt: new Date(verifiedAt) });
const down = () => new BlockRtcError('CHAIN_UNAVAILABLE');

describe('GateKeeper', () => {
  it('records a pass, removes a member who no longer holds, and keeps one through an outage only within the grace', async () => {
    const now = 1_000_000;
    const answers = new Map<string, boolean | BlockRtcError>([[ALICE, true], [BOB, false], [CAROL, down()]]);
    const dave = '0x' + 'd'.repeat(40);
    answers.set(dave, down());
    const { keeper, verified, revoked } = setup(answers, [member(ALICE, 0), member(BOB, 0), member(CAROL, now - GRACE_MS + 1), member(dave, now - GRACE_MS - 1)], now);
    await keeper.sweep();
    expect(verified).toEqual([{ address: ALICE, at: new Date(now) }]);
    // Checked in parallel: in any order.
    expect(revoked).toHaveLength(2);
    expect(revoked).toEqual(
      expect.arrayContaining([
        { address: BOB, reason: 'gate-not-met' },
        { address: dave, reason: 'chain-unavailable' },
      ]),
    );
  });

  it('refuses a call to a member who no longer holds (and revokes them), lets one in grace through', async () => {
    const now = 1_000_000;
    const { keeper, revoked } = setup(new Map<string, boolean | BlockRtcError>([[BOB, false], [CAROL, down()]]), [member(BOB, now - 1000), member(CAROL, now - 1000)], now);
    await expect(keeper.requireForCall('g', BOB)).rejects.toMatchObject({ code: 'GATE_NOT_MET' });
    await expect(keeper.requireForCall('g', CAROL)).resolves.toBeUndefined();
    expect(revoked).toEqual([{ address: BOB, reason: 'gate-not-met' }]);
  });

  it('admits new members fail closed and names who does not hold', async () => {
    const { keeper } = setup(new Map<string, boolean | BlockRtcError>([[ALICE, true], [BOB, false], [CAROL, down()]]), []);
    await expect(keeper.admitAll(GATE, [ALICE, BOB])).rejects.toThrow(BOB);
    await expect(keeper.admit(GATE, CAROL)).rejects.toMatchObject({ code: 'CHAIN_UNAVAILABLE' });
    expect(await keeper.admit(null, BOB)).toBeNull();
  });
});
