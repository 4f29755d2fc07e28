/**
 * Routes call events to their sessions and keeps the list of calls ringing here. A session
 * that cannot join leaves the call at once, so nobody waits for a participant who never comes.
 */
import type { CallParticipant, IncomingCallEvent } from '../../../protocol/index.ts';
import { normalize } from '../address.ts';
import type { Engine } from '../engine.ts';
import { Emitter } from '../events.ts';
import type { CallRetryPolicies } from './retry.ts';
import { CallSession } from './session.ts';
import type { CallKind, CallOptions } from './types.ts';

export interface IncomingCall extends IncomingCallEvent {}

export interface CallManagerEvents {
  /** Someone is calling; answer with accept() or reject(). */
  incoming: IncomingCall;
  /** A ringing call stopped ringing here (answered elsewhere, cancelled, missed). */
  'incoming-ended': { callId: string; reason: string };
  /** A session was created (outgoing or accepted). */
  session: CallSession;
  'session-ended': { session: CallSession; reason: string };
}

export class CallManager extends Emitter<CallManagerEvents> {
  private readonly sessions = new Map<string, CallSession>();
  private readonly ringing = new Map<string, IncomingCall>();
  /** Defaults for every call (e.g. iceTransportPolicy, video constraints). */
  defaults: CallOptions = {};

  constructor(
    private readonly engine: Engine,
    /** How joins and rejoins retry; the defaults are in retry.ts. */
    private readonly retry: Partial<CallRetryPolicies> = {},
  ) {
    super();
    const s = engine.signal;
    s.on('call.incoming', (e) => {
      this.ringing.set(e.callId, e);
      this.emit('incoming', e);
    });
    s.on('call.participant', (e) => {
      if (e.address === engine.address && e.state !== 'ringing') this.stopRinging(e.callId, e.state);
      this.sessions.get(e.callId)?.handleParticipant(e.address, e.state);
    });
    s.on('call.ended', (e) => {
      this.stopRinging(e.callId, e.reason);
      this.sessions.get(e.callId)?.handleEnded(e.reason);
    });
    s.on('call.producer', (e) => {
      // The SFU's producer event may omit callId; then it belongs to the live session(s).
      const targets = e.callId ? [this.sessions.get(e.callId)] : [...this.sessions.values()];
      for (const t of targets) t?.handleProducer(e);
    });
    s.on('call.producerClosed', (e) => this.sessions.get(e.callId)?.handleProducerClosed(e.producerId));
    s.on('call.producerState', (e) => this.sessions.get(e.callId)?.handleProducerState(e.producerId, e.paused));
    s.on('call.peerLeft', (e) => this.sessions.get(e.callId)?.handlePeerLeft(e.peerId));
    s.on('call.activeSpeaker', (e) => this.sessions.get(e.callId)?.handleActiveSpeaker(e.peerId, e.address));
    s.on('call.rejoin', (e) => void this.sessions.get(e.callId)?.rejoin(e.reason));
    s.on('signal.open', ({ reconnect }) => {
      if (!reconnect) return;
      for (const session of this.sessions.values()) void session.rejoin('signaling reconnected');
    });
  }

  /** The call in progress (the most recent one), if any. */
  get current(): CallSession | null {
    let last: CallSession | null = null;
    for (const s of this.sessions.values()) last = s;
    return last;
  }

  get incomingCalls(): IncomingCall[] {
    return [...this.ringing.values()];
  }

  session(callId: string): CallSession | null {
    return this.sessions.get(callId) ?? null;
  }

  /** Rings `to` and joins right away, so media is ready the moment someone answers. */
  async start(to: string | string[], kind: CallKind, options: CallOptions = {}): Promise<CallSession> {
    const list = (Array.isArray(to) ? to : [to]).map(normalize);
    const r = await this.engine.signal.request('call.start', { to: list, kind });
    const session = this.track(new CallSession(this.engine, r.callId, kind, this.engine.address ?? '', this.optionsFor(null, options), r.participants, 'ringing', this.retry));
    return this.joinOrLeave(session);
  }

  async accept(callId: string, options: CallOptions = {}): Promise<CallSession> {
    const ring = this.ringing.get(callId);
    await this.engine.signal.request('call.accept', { callId });
    this.ringing.delete(callId);
    const participants: CallParticipant[] = (ring?.participants ?? []).map((address) => ({ address, role: address === ring?.from ? 'initiator' : 'invitee', state: address === ring?.from ? 'joined' : 'ringing', joinedAt: null, leftAt: null }));
    const group = ring?.group ?? null;
    const session = this.track(new CallSession(this.engine, callId, ring?.kind ?? 'video', ring?.from ?? '', this.optionsFor(group, options), participants, 'joining', this.retry, group));
    return this.joinOrLeave(session);
  }

  /**
   * Starts the group's call and joins it; when the group already has a call running, the
   * server answers with that one and this joins it instead.
   */
  async startGroup(group: string, kind: CallKind, options: CallOptions = {}): Promise<CallSession> {
    const { callId } = await this.engine.signal.request('group.call', { group, kind });
    const existing = this.sessions.get(callId);
    if (existing) return existing;
    this.stopRinging(callId, 'accepted');
    const me = this.engine.address ?? '';
    const self: CallParticipant = { address: me, role: 'initiator', state: 'accepted', joinedAt: null, leftAt: null };
    const session = this.track(new CallSession(this.engine, callId, kind, me, this.optionsFor(group, options), [self], 'ringing', this.retry, group));
    return this.joinOrLeave(session);
  }

  /** Joins a group's running call without having been rung (a member arriving late). */
  async joinGroupCall(group: string, call: { callId: string; kind: CallKind; startedBy: string }, options: CallOptions = {}): Promise<CallSession> {
    const existing = this.sessions.get(call.callId);
    if (existing) return existing;
    this.stopRinging(call.callId, 'accepted');
    const session = this.track(new CallSession(this.engine, call.callId, call.kind, call.startedBy, this.optionsFor(group, options), [], 'joining', this.retry, group));
    return this.joinOrLeave(session);
  }

  /** Group calls wait for members to come rather than ending when nobody is there yet. */
  private optionsFor(group: string | null, options: CallOptions): CallOptions {
    return { ...this.defaults, ...(group ? { waitForOthers: true } : {}), ...options };
  }

  private async joinOrLeave(session: CallSession): Promise<CallSession> {
    try {
      await session.join();
    } catch (err) {
      await session.leave();
      throw err;
    }
    return session;
  }

  async reject(callId: string): Promise<void> {
    this.stopRinging(callId, 'rejected');
    await this.engine.signal.request('call.reject', { callId });
  }

  private track(session: CallSession): CallSession {
    this.sessions.set(session.callId, session);
    session.on('ended', ({ reason }) => {
      this.sessions.delete(session.callId);
      this.emit('session-ended', { session, reason });
    });
    this.emit('session', session);
    return session;
  }

  private stopRinging(callId: string, reason: string): void {
    if (this.ringing.delete(callId)) this.emit('incoming-ended', { callId, reason });
  }
}
