import type { GatedMembership, GroupStore } from '../../db/groups.ts';
import type { Logger } from '../../infra/logger.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { TokenGate } from '../../protocol/index.ts';
import type { GateAccess } from '../chain/gate-policy.ts';

/** Why a member lost access (the system message and membership event say it). */
export type GateRevocation = 'gate-not-met' | 'chain-unavailable';

/** Members rechecked per sweep at most, and at once: the chain and PostgreSQL see bounded work per tick. */
const SWEEP_BATCH = 200;
const SWEEP_PARALLEL = 8;

/**
 * Token gates on groups and the calls started from them. New members are admitted only on a
 * pass (fail closed); current members are checked again at each connect (in the background)
 * and every GATE_RECHECK_SECONDS (the members checked longest ago first, bounded per sweep),
 * and at a gated call's join and TURN renewal. A member who fails a recheck — or whose chain
 * stayed unreachable past GATE_GRACE_SECONDS — is handed to `revoke` (removed from the group,
 * dropped from its running call).
 */
export class GateKeeper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  /** Memberships being checked now: a connect and a sweep never ask the chain twice for one. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      groups: Pick<GroupStore, 'get' | 'member' | 'gateDue' | 'gatedOf' | 'markGateVerified'>;
      access: GateAccess;
      recheckSec: number;
      revoke: (groupId: string, address: string, reason: GateRevocation) => Promise<void>;
      log: Logger;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** For someone joining or added: resolves with the pass time, or throws GATE_NOT_MET / the chain's error. */
  async admit(gate: TokenGate | null, address: string): Promise<Date | null> {
    if (!gate) return null;
    return new Date(await this.deps.access.admit(gate, address));
  }

  /** Several people at once (an admin adding members): the first refusal names who. */
  async admitAll(gate: TokenGate | null, addresses: string[]): Promise<Date | null> {
    if (!gate || addresses.length === 0) return gate ? new Date(this.now()) : null;
    const outcomes = await Promise.allSettled(addresses.map((a) => this.deps.access.admit(gate, a)));
    outcomes.forEach((o, i) => {
      if (o.status === 'rejected') {
        const err = o.reason instanceof BlockRtcError ? o.reason : new BlockRtcError('INTERNAL');
        throw err.code === 'GATE_NOT_MET' ? new BlockRtcError('GATE_NOT_MET', `${addresses[i]} does not hold the tokens this group requires`) : err;
      }
    });
    return new Date(this.now());
  }

  /**
   * Access of a current member to the group's call (join, TURN credentials): a pass or the
   * grace of an outage lets them through; otherwise GATE_NOT_MET / the chain's error, and
   * their membership is revoked in the background.
   */
  async requireForCall(groupId: string, address: string): Promise<void> {
    const group = await this.deps.groups.get(groupId);
    if (!group?.gate) return;
    const member = await this.deps.groups.member(groupId, address);
    if (member?.state !== 'active' || !member.gateVerifiedAt) {
      await this.deps.access.admit(group.gate, address);
      return;
    }
    const outcome = await this.recheck({ groupId, address, gate: group.gate, verifiedAt: member.gateVerifiedAt });
    if (outcome === 'gate-not-met') throw new BlockRtcError('GATE_NOT_MET');
    if (outcome === 'chain-unavailable') throw new BlockRtcError('CHAIN_UNAVAILABLE', 'The token gate could not be checked for too long; try again');
  }

  /** A user connected: their gated memberships are checked in the background, never holding up the connect. */
  connected(address: string): void {
    this.deps.groups
      .gatedOf(address)
      .then((rows) => Promise.all(rows.map((r) => this.recheckOnce(r))))
      .catch((err: unknown) => this.deps.log.warn({ err, user: address }, 'gate check at connect failed'));
  }

  start(): void {
    // Several sweeps per recheck period, so a member is checked within about 1.25 periods.
    const everyMs = Math.min(60_000, Math.max(1000, (this.deps.recheckSec * 1000) / 4));
    this.timer = setInterval(() => void this.sweep(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One bounded pass over the members due for a check. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const due = await this.deps.groups.gateDue(new Date(this.now() - this.deps.recheckSec * 1000), SWEEP_BATCH);
      for (let i = 0; i < due.length; i += SWEEP_PARALLEL) await Promise.all(due.slice(i, i + SWEEP_PARALLEL).map((m) => this.recheckOnce(m)));
    } catch (err) {
      this.deps.log.warn({ err }, 'gate recheck sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  private recheckOnce(m: GatedMembership): Promise<void> {
    const key = `${m.groupId}:${m.address}`;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.recheck(m)
        .then(() => undefined)
        .catch((err: unknown) => this.deps.log.warn({ err, group: m.groupId, user: m.address }, 'gate recheck failed'))
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    return p;
  }

  /** Applies the policy's answer: a pass is recorded, a revocation carried out; 'keep' covers the grace too. */
  private async recheck(m: GatedMembership): Promise<'keep' | GateRevocation> {
    const answer = await this.deps.access.recheck(m.gate, m.address, m.verifiedAt.getTime());
    if (answer.access === 'keep') {
      await this.deps.groups.markGateVerified(m.groupId, m.address, new Date(answer.verifiedAt));
      return 'keep';
    }
    if (answer.access === 'grace') return 'keep';
    const reason: GateRevocation = answer.reason === 'not-met' ? 'gate-not-met' : 'chain-unavailable';
    this.deps.log.info({ group: m.groupId, user: m.address, reason }, 'token gate no longer passed; removing the member');
    await this.deps.revoke(m.groupId, m.address, reason);
    return reason;
  }
}
