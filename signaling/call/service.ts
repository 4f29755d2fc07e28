import { checksumAddress } from '../address.ts';
import type { Config } from '../../config/config.ts';
import type { CallRow, CallStore, EndReason, ParticipantRow } from '../../db/calls.ts';
import { BlockRtcError } from '../../protocol/errors.ts';
import type { CallParticipant, CallSummary, IceServer, Request, ResultMap } from '../../protocol/index.ts';
import { encodeEvent, type EncodedEvent } from '../../protocol/frames.ts';
import type { EventMap, EventType } from '../../protocol/index.ts';
import type { MediaEvent, MediaEventFrame, SfuMethod, SfuParams, SfuResult } from '../../protocol/sfu.ts';
import type { SfuClient } from '../../sfu/channel.ts';
import { SfuError } from '../../sfu/errors.ts';
import type { Placement, SfuRegistry } from '../../sfu/registry/registry.ts';
import { turnCredentials } from '../../turn/credentials.ts';
import type { Logger } from '../../infra/logger.ts';
import type { Events } from '../events.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import { enforceLimit } from '../ratelimit/enforce.ts';
import type { Connection } from '../ws/connection.ts';
import type { Relations } from '../requests/relations.ts';

interface Joined {
  peerId: string;
  node: string;
}

/** How long a dropped connection keeps its place in a call before it counts as leaving. */
const LEAVE_GRACE_MS = 10_000;

/**
 * Call lifecycle (ring, accept, reject, cancel, join, leave, end) recorded in PostgreSQL,
 * media placed on SFU nodes through the registry, and media requests relayed to the node
 * that carries the call — only for connections that joined it.
 */
export class CallService {
  /** connection id → calls it joined (only connections in calls have an entry). */
  private readonly joined = new Map<string, Map<string, Joined>>();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly deps: {
      config: Config;
      calls: CallStore;
      registry: SfuRegistry;
      sfu: SfuClient;
      events: Events;
      limiter: RateLimiter;
      metrics: Metrics;
      /** Invitees who blocked the caller are not rung (see startCall). */
      relations: Pick<Relations, 'get'>;
      log: Logger;
      /** Whether an address is an active member of a group (group calls admit members late). */
      isGroupMember?: (groupId: string, address: string) => Promise<boolean>;
      /** Throws unless `address` passes the token gate of the call's group (GATE_NOT_MET, CHAIN_UNAVAILABLE…). */
      groupGate?: (groupId: string, address: string) => Promise<void>;
    },
  ) {
    deps.sfu.onEvent((frame) => this.mediaEvent(frame));
  }

  start(): void {
    const { log } = this.deps;
    this.timers.push(setInterval(() => this.expireRinging().catch((err: unknown) => log.warn({ err }, 'ring sweep failed')), 1000));
    this.timers.push(setInterval(() => this.recoverDeadNodes().catch((err: unknown) => log.warn({ err }, 'media recovery failed')), this.deps.config.presence.heartbeatMs));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  // ── lifecycle ────────────────────────────────────────────────────────────

  async startCall(conn: Connection, req: Request<'call.start'>): Promise<ResultMap['call.start']> {
    const { calls, registry, config } = this.deps;
    const invitees = [...new Set(req.to.map((a) => checksumAddress(a)))].filter((a) => a !== conn.address);
    if (invitees.length === 0) throw new BlockRtcError('BAD_REQUEST', 'Invite at least one other address');
    if (invitees.length + 1 > config.calls.maxParticipants) throw new BlockRtcError('TOO_MANY_PARTICIPANTS', `At most ${config.calls.maxParticipants} participants`);
    await enforceLimit(this.deps.limiter, this.deps.metrics, { name: 'call', metric: 'calls', id: conn.address, rule: config.limits.calls, message: 'Too many calls started; wait a moment' });
    // An invitee who blocked the caller is recorded as rung but never hears it: its ring
    // expires as `missed`, exactly what the caller sees of someone offline, so the block
    // stays hidden. Asked before anything is stored, so a failure leaves no call behind.
    const silenced = await this.blockedCaller(conn.address, invitees);
    // Invitees already in a call, or rung by too many calls at once, are marked busy.
    const created = await calls.createLimited(req.kind, conn.address, invitees, {
      maxPerCaller: config.calls.maxRingingPerCaller,
      maxPerCallee: config.calls.maxRingingPerCallee,
      ringingSince: new Date(Date.now() - config.calls.ringTimeoutMs),
    });
    if (!created) throw new BlockRtcError('CALL_RINGING_LIMIT', `At most ${config.calls.maxRingingPerCaller} of your calls can ring at once; wait for an answer or cancel one`);
    const { call, busy } = created;
    const placement = await registry.place(call.id, Date.now());
    if (!placement) {
      await calls.end(call.id, 'failed');
      throw new BlockRtcError('MEDIA_UNAVAILABLE');
    }
    await calls.setPlacement(call.id, placement.node, placement.worker);
    const ringing = invitees.filter((a) => !busy.has(a));
    const expiresAt = new Date(Date.now() + config.calls.ringTimeoutMs).toISOString();
    for (const a of ringing) if (!silenced.has(a)) this.publish(a, 'call.incoming', { callId: call.id, from: conn.address, kind: req.kind, participants: [conn.address, ...invitees], expiresAt });
    if (ringing.length === 0) await this.end(call.id, 'busy');
    const state = await calls.get(call.id);
    return { callId: call.id, participants: state!.participants.map(toParticipant) };
  }

  private async blockedCaller(caller: string, invitees: string[]): Promise<Set<string>> {
    const relations = await Promise.all(invitees.map((a) => this.deps.relations.get(caller, a)));
    return new Set(invitees.filter((_, i) => relations[i]!.blockedByPeer));
  }

  /**
   * A call to a group: one `call.incoming` on the group's channel rings every active
   * member's devices (one publish, whatever the group's size); members get a participant row
   * when they accept or join, up to CALL_MAX_PARTICIPANTS. While it runs, `group.get`
   * shows it and any member may join late; a second `group.call` answers the running call.
   */
  async startGroupCall(conn: Connection, req: Request<'group.call'>, groups: { requireActive(group: string, address: string): Promise<unknown>; activeCall(group: string): Promise<{ callId: string } | null> }): Promise<ResultMap['group.call']> {
    const { calls, registry, config, events } = this.deps;
    await groups.requireActive(req.group, conn.address);
    await this.deps.groupGate?.(req.group, conn.address);
    const running = await groups.activeCall(req.group);
    if (running) return { callId: running.callId };
    await enforceLimit(this.deps.limiter, this.deps.metrics, { name: 'call', metric: 'calls', id: conn.address, rule: config.limits.calls, message: 'Too many calls started; wait a moment' });
    const call = await calls.createForGroup(req.kind, conn.address, req.group);
    const placement = await registry.place(call.id, Date.now());
    if (!placement) {
      await calls.end(call.id, 'failed');
      throw new BlockRtcError('MEDIA_UNAVAILABLE');
    }
    await calls.setPlacement(call.id, placement.node, placement.worker);
    const expiresAt = new Date(Date.now() + config.calls.ringTimeoutMs).toISOString();
    events.toGroup(req.group, 'call.incoming', { callId: call.id, from: conn.address, kind: req.kind, participants: [conn.address], expiresAt, group: req.group }, { except: conn.address });
    events.toGroup(req.group, 'group.call', { group: req.group, callId: call.id, kind: req.kind, from: conn.address, state: 'started' });
    return { callId: call.id };
  }

  async accept(conn: Connection, req: Request<'call.accept'>): Promise<ResultMap['call.accept']> {
    const state = await this.participantOf(req.callId, conn.address);
    if (!(await this.deps.calls.transition(req.callId, conn.address, ['ringing'], 'accepted'))) throw new BlockRtcError('CALL_STATE', 'This call is not ringing for you');
    await this.deps.calls.markAnswered(req.callId);
    // Every device of the callee hears it, so the others stop ringing.
    this.notify(state.participants, 'call.participant', { callId: req.callId, address: conn.address, state: 'accepted' });
    return {};
  }

  async reject(conn: Connection, req: Request<'call.reject'>): Promise<ResultMap['call.reject']> {
    const state = await this.participantOf(req.callId, conn.address);
    if (!(await this.deps.calls.transition(req.callId, conn.address, ['ringing'], 'rejected'))) throw new BlockRtcError('CALL_STATE', 'This call is not ringing for you');
    this.notify(state.participants, 'call.participant', { callId: req.callId, address: conn.address, state: 'rejected' });
    await this.endIfUnanswerable(req.callId);
    return {};
  }

  async cancel(conn: Connection, req: Request<'call.cancel'>): Promise<ResultMap['call.cancel']> {
    const state = await this.participantOf(req.callId, conn.address);
    if (state.call.initiator !== conn.address) throw new BlockRtcError('CALL_NOT_ALLOWED', 'Only the caller can cancel');
    if (state.call.answeredAt) throw new BlockRtcError('CALL_STATE', 'The call was answered; leave it instead');
    await this.end(req.callId, 'cancelled');
    return {};
  }

  async join(conn: Connection, req: Request<'call.join'>): Promise<ResultMap['call.join']> {
    const { calls, config } = this.deps;
    const state = await this.participantOf(req.callId, conn.address);
    const me = state.participants.find((p) => p.address === conn.address)!;
    if (!['ringing', 'accepted', 'joined', 'left'].includes(me.state)) throw new BlockRtcError('CALL_STATE', `You ${me.state === 'busy' ? 'were busy' : `have ${me.state}`} this call`);
    // Media is handed out only to current members who pass the group's gate, checked before the SFU is asked.
    await this.requireGroupAccess(state.call, conn.address);
    const peerId = `${conn.address}:${req.device}`;
    const { placement, result } = await this.onPlacedNode(req.callId, (p) => this.deps.sfu.request(p.node, 'join', { callId: req.callId, peerId, address: conn.address, worker: p.worker, origin: config.nodeId }));
    if (!(await calls.joined(req.callId, conn.address, req.device, conn.id))) {
      await this.deps.sfu.request(placement.node, 'leave', { callId: req.callId, peerId }).catch(() => undefined);
      throw new BlockRtcError('CALL_STATE');
    }
    if (me.role === 'invitee') await calls.markAnswered(req.callId);
    let mine = this.joined.get(conn.id);
    if (!mine) this.joined.set(conn.id, (mine = new Map()));
    mine.set(req.callId, { peerId, node: placement.node });
    this.notify(state.participants, 'call.participant', { callId: req.callId, address: conn.address, state: 'joined' });
    const fresh = await calls.get(req.callId);
    const iceServers = this.iceServers(conn.address);
    return {
      callId: req.callId,
      peerId,
      rtpCapabilities: result.rtpCapabilities as unknown as Record<string, unknown>,
      iceServers,
      producers: result.producers,
      participants: fresh!.participants.map(toParticipant),
    };
  }

  /**
   * Fresh TURN credentials for a participant that joined this (live) call on this
   * connection: each lasts TURN_TTL_SECONDS, and a long call renews them with this request.
   */
  async turnCredentials(conn: Connection, req: Request<'call.turnCredentials'>): Promise<ResultMap['call.turnCredentials']> {
    if (!this.joined.get(conn.id)?.has(req.callId)) throw new BlockRtcError('NOT_IN_CALL');
    const state = await this.participantOf(req.callId, conn.address);
    const me = state.participants.find((p) => p.address === conn.address);
    if (me?.state !== 'joined' || me.session !== conn.id) throw new BlockRtcError('NOT_IN_CALL', 'Join the call on this connection first');
    await this.requireGroupAccess(state.call, conn.address);
    return { iceServers: this.iceServers(conn.address) };
  }

  /** A group's call: only its active members, and only while they pass its token gate. */
  private async requireGroupAccess(call: CallRow, address: string): Promise<void> {
    if (!call.groupId) return;
    if (this.deps.isGroupMember && !(await this.deps.isGroupMember(call.groupId, address))) throw new BlockRtcError('CALL_NOT_ALLOWED', 'You are no longer a member of this group');
    await this.deps.groupGate?.(call.groupId, address);
  }

  /**
   * Takes `address` out of the group's running call, wherever their connection is: the SFU
   * closes their media (leave) and everyone hears `call.participant` left. The node holding
   * their connection finds the peer gone at its next media request.
   */
  async removeFromGroupCall(groupId: string, callId: string | null, address: string): Promise<void> {
    if (!callId) return;
    const state = await this.deps.calls.get(callId);
    if (!state || state.call.groupId !== groupId || state.call.endedAt) return;
    const p = state.participants.find((x) => x.address === address && x.state === 'joined');
    if (!p?.session || !p.device) return;
    const placement = await this.deps.registry.lookup(callId);
    if (!placement) return;
    for (const mine of this.joined.values()) if (mine.get(callId)?.peerId === `${address}:${p.device}`) mine.delete(callId);
    await this.leaveCall(callId, address, { peerId: `${address}:${p.device}`, node: placement.node }, p.session);
  }

  private iceServers(address: string): IceServer[] {
    const { turn } = this.deps.config;
    return turn.secret && turn.urls.length ? [turnCredentials(turn.secret, address, turn.ttlSec, turn.urls)] : [];
  }

  async leave(conn: Connection, req: Request<'call.leave'>): Promise<ResultMap['call.leave']> {
    const j = this.joined.get(conn.id)?.get(req.callId);
    if (!j) throw new BlockRtcError('NOT_IN_CALL');
    this.forget(conn.id, req.callId);
    await this.leaveCall(req.callId, conn.address, j, conn.id);
    return {};
  }

  async history(conn: Connection, req: Request<'call.history'>): Promise<ResultMap['call.history']> {
    const rows = await this.deps.calls.history(conn.address, req.before ? new Date(req.before) : null, req.limit);
    return { calls: rows.map(({ call, participants }) => toSummary(call, participants)) };
  }

  /** A connection went away: its calls count as left unless it rejoins (any node) within the grace. */
  connectionClosed(conn: Connection): void {
    const mine = this.joined.get(conn.id);
    if (!mine) return;
    this.joined.delete(conn.id);
    const t = setTimeout(() => {
      for (const [callId, j] of mine) {
        this.leaveCall(callId, conn.address, j, conn.id).catch((err: unknown) => this.deps.log.warn({ err, callId }, 'leave after disconnect failed'));
      }
    }, LEAVE_GRACE_MS);
    t.unref();
  }

  // ── media relay ──────────────────────────────────────────────────────────

  async media<M extends SfuMethod>(conn: Connection, callId: string, method: M, params: Omit<SfuParams<M>, 'callId' | 'peerId'>): Promise<SfuResult<M>> {
    const j = this.joined.get(conn.id)?.get(callId);
    if (!j) throw new BlockRtcError('NOT_IN_CALL');
    try {
      return await this.deps.sfu.request(j.node, method, { ...params, callId, peerId: j.peerId } as SfuParams<M>);
    } catch (err) {
      throw mapSfuError(err);
    }
  }

  // ── internals ────────────────────────────────────────────────────────────

  private async participantOf(callId: string, address: string): Promise<{ call: CallRow; participants: ParticipantRow[] }> {
    const state = await this.deps.calls.get(callId);
    if (!state) throw new BlockRtcError('CALL_NOT_FOUND');
    if (!state.participants.some((p) => p.address === address)) {
      // A member of the call's group takes part from its first answer or join.
      const { groupId } = state.call;
      if (!groupId || state.call.endedAt || !(await this.deps.isGroupMember?.(groupId, address))) throw new BlockRtcError('CALL_NOT_ALLOWED');
      if (!(await this.deps.calls.addMember(callId, address, this.deps.config.calls.maxParticipants))) {
        throw new BlockRtcError('TOO_MANY_PARTICIPANTS', `At most ${this.deps.config.calls.maxParticipants} people take part in one call`);
      }
      return this.participantOf(callId, address);
    }
    if (state.call.endedAt) throw new BlockRtcError('CALL_ENDED');
    return state;
  }

  /**
   * Runs `fn` on the node carrying the call, placing it first if needed. A node that is
   * gone or draining gets the call moved to another one (once).
   */
  private async onPlacedNode<T>(callId: string, fn: (p: Placement) => Promise<T>): Promise<{ placement: Placement; result: T }> {
    const { registry, calls } = this.deps;
    let placement = (await registry.lookup(callId)) ?? (await registry.place(callId, Date.now()));
    if (!placement) throw new BlockRtcError('MEDIA_UNAVAILABLE');
    try {
      return { placement, result: await fn(placement) };
    } catch (err) {
      if (!(err instanceof SfuError) || (err.code !== 'UNAVAILABLE' && err.code !== 'DRAINING')) throw mapSfuError(err);
      this.deps.log.warn({ callId, node: placement.node, code: err.code }, 'media node unavailable; placing the call again');
      placement = await registry.replace(callId, placement.node, Date.now());
      if (!placement) throw new BlockRtcError('MEDIA_UNAVAILABLE');
      await calls.setPlacement(callId, placement.node, placement.worker);
      try {
        return { placement, result: await fn(placement) };
      } catch (again) {
        throw mapSfuError(again);
      }
    }
  }

  private forget(connId: string, callId: string): void {
    const mine = this.joined.get(connId);
    mine?.delete(callId);
    if (mine?.size === 0) this.joined.delete(connId);
  }

  private async leaveCall(callId: string, address: string, j: Joined, session: string): Promise<void> {
    // Only the connection that is still the participant's current one may take it out.
    if (!(await this.deps.calls.left(callId, address, session))) return;
    await this.deps.sfu.request(j.node, 'leave', { callId, peerId: j.peerId }).catch(() => undefined);
    const state = await this.deps.calls.get(callId);
    if (state) this.notify(state.participants, 'call.participant', { callId, address, state: 'left' });
    if ((await this.deps.calls.countIn(callId, ['joined'])) === 0) {
      const answered = state?.call.answeredAt != null;
      if (answered) await this.end(callId, 'completed');
      else if (state?.call.initiator === address) await this.end(callId, 'cancelled');
    }
  }

  /** Ends a call nobody can answer any more (everyone rejected, missed or was busy). */
  private async endIfUnanswerable(callId: string): Promise<void> {
    const state = await this.deps.calls.get(callId);
    // A group's call stays open for the members who have not answered; it ends when its last participant leaves.
    if (!state || state.call.endedAt || state.call.groupId) return;
    const invitees = state.participants.filter((p) => p.role === 'invitee');
    if (invitees.some((p) => ['ringing', 'accepted', 'joined', 'left'].includes(p.state))) return;
    const reason: EndReason = invitees.some((p) => p.state === 'rejected') ? 'rejected' : invitees.some((p) => p.state === 'missed') ? 'missed' : 'busy';
    await this.end(callId, reason);
  }

  private async end(callId: string, reason: EndReason): Promise<void> {
    if (!(await this.deps.calls.end(callId, reason))) return;
    const state = await this.deps.calls.get(callId);
    const placement = await this.deps.registry.lookup(callId);
    await this.deps.registry.release(callId);
    if (placement) await this.deps.sfu.request(placement.node, 'closeCall', { callId }).catch(() => undefined);
    if (state) this.notify(state.participants, 'call.ended', { callId, reason });
    const groupId = state?.call.groupId;
    if (groupId) this.deps.events.toGroup(groupId, 'group.call', { group: groupId, callId, kind: state.call.kind, from: state.call.initiator, state: 'ended' });
  }

  private async expireRinging(): Promise<void> {
    const expired = await this.deps.calls.expireRinging(new Date(Date.now() - this.deps.config.calls.ringTimeoutMs));
    const byCall = new Map<string, string[]>();
    for (const e of expired) byCall.set(e.callId, [...(byCall.get(e.callId) ?? []), e.address]);
    for (const [callId, addresses] of byCall) {
      const state = await this.deps.calls.get(callId);
      if (!state) continue;
      for (const address of addresses) this.notify(state.participants, 'call.participant', { callId, address, state: 'missed' });
      await this.endIfUnanswerable(callId);
    }
  }

  /** Calls on an SFU node that stopped heartbeating are placed again; participants rejoin. */
  private async recoverDeadNodes(): Promise<void> {
    const { registry, calls, config, log } = this.deps;
    const now = Date.now();
    for (const node of await registry.staleNodes(now)) {
      if (!(await registry.claimRecovery(node, config.nodeId))) continue;
      const ids = await registry.callsOn(node);
      log.warn({ node, calls: ids.length }, 'media node stopped heartbeating; moving its calls');
      for (const callId of ids) {
        const placement = await registry.replace(callId, node, now);
        const state = await calls.get(callId);
        if (!state || state.call.endedAt) {
          await registry.release(callId);
          continue;
        }
        if (placement) await calls.setPlacement(callId, placement.node, placement.worker);
        const inCall = state.participants.filter((p) => p.state === 'joined');
        for (const p of inCall) this.publish(p.address, 'call.rejoin', { callId, reason: 'media node failed' });
      }
      await registry.forget(node);
    }
  }

  private notify<E extends EventType>(participants: ParticipantRow[], ev: E, data: EventMap[E]): void {
    this.deps.events.toUsers(
      participants.map((p) => p.address),
      ev,
      data,
    );
  }

  private publish<E extends EventType>(address: string, ev: E, data: EventMap[E]): void {
    this.deps.events.toUser(address, ev, data);
  }

  /** The media tier's report about a call becomes the client event for its participants. */
  private mediaEvent({ to, event }: MediaEventFrame): void {
    const frame = toClientEvent(event);
    for (const address of to) this.deps.events.frame(address, frame);
  }
}

/** The one place media events become client events. */
export function toClientEvent(e: MediaEvent): EncodedEvent {
  switch (e.type) {
    case 'peerJoined':
      return encodeEvent('call.peerJoined', { callId: e.callId, peerId: e.peerId, address: e.address });
    case 'peerLeft':
      return encodeEvent('call.peerLeft', { callId: e.callId, peerId: e.peerId, address: e.address });
    case 'producerAdded':
      return encodeEvent('call.producer', e.producer);
    case 'producerClosed':
      return encodeEvent('call.producerClosed', { callId: e.callId, producerId: e.producerId, peerId: e.peerId });
    case 'producerPaused':
      return encodeEvent('call.producerState', { callId: e.callId, producerId: e.producerId, peerId: e.peerId, paused: e.paused });
    case 'activeSpeaker':
      return encodeEvent('call.activeSpeaker', { callId: e.callId, peerId: e.peerId, address: e.address });
    case 'rejoin':
      return encodeEvent('call.rejoin', { callId: e.callId, reason: e.reason });
  }
}

function mapSfuError(err: unknown): BlockRtcError {
  if (err instanceof BlockRtcError) return err;
  if (!(err instanceof SfuError)) return new BlockRtcError('INTERNAL');
  switch (err.code) {
    case 'CALL_NOT_FOUND':
    case 'PEER_NOT_FOUND':
    case 'UNAVAILABLE':
    case 'DRAINING':
      return new BlockRtcError('MEDIA_REJOIN', err.message);
    case 'NOT_FOUND':
      return new BlockRtcError('NOT_FOUND', err.message);
    case 'FORBIDDEN':
      return new BlockRtcError('FORBIDDEN', err.message);
    case 'CANNOT_CONSUME':
    case 'BAD_REQUEST':
      return new BlockRtcError('MEDIA_REJECTED', err.message);
    case 'LIMIT':
      return new BlockRtcError('MEDIA_LIMIT', err.message);
    case 'DUPLICATE':
      return new BlockRtcError('MEDIA_DUPLICATE', err.message);
    case 'REPLACED':
      return new BlockRtcError('MEDIA_REPLACED', err.message);
    default:
      return new BlockRtcError('INTERNAL');
  }
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

function toParticipant(p: ParticipantRow): CallParticipant {
  return { address: p.address, role: p.role, state: p.state as CallParticipant['state'], joinedAt: iso(p.joinedAt), leftAt: iso(p.leftAt) };
}

function toSummary(call: CallRow, participants: ParticipantRow[]): CallSummary {
  return {
    callId: call.id,
    kind: call.kind,
    initiator: call.initiator,
    createdAt: call.createdAt.toISOString(),
    answeredAt: iso(call.answeredAt),
    endedAt: iso(call.endedAt),
    endReason: call.endReason,
    participants: participants.map(toParticipant),
    ...(call.groupId ? { group: call.groupId } : {}),
  };
}
