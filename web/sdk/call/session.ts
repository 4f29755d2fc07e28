/**
 * One call: the signaling lifecycle (join, leave/cancel, rejoin) and its state. Every
 * join gets a new generation; work that belongs to an older one stops at the next check()
 * instead of touching the new Device and transports. Retries go through the injected
 * ReconnectPolicy pair (retry.ts), not fixed counts.
 */
import { TurnRenewal } from './turn-renewal.ts';
import { Device, type types } from 'mediasoup-client';
import type { CallParticipant, CallParticipantState, JoinResult, ProducerEvent, RequestInput, RequestType, ResultMap } from '../../../protocol/index.ts';
import type { Engine } from '../engine.ts';
import { BlockRtcClientError, errorCode } from '../errors.ts';
import { Emitter } from '../events.ts';
import { Receiver } from './receive.ts';
import { defaultCallRetry, isFinalRejoinError, isTransientJoinError, retryDelay, sleep, type CallRetryPolicies } from './retry.ts';
import { Sender } from './send.ts';
import { statsToJson } from './stats.ts';
import { IceRestarter, openTransport } from './transports.ts';
import type { CallKind, CallOptions, CallSessionEvents, CallState, InboundStat, MediaSource, RemoteTrack, TransportDirection } from './types.ts';

/** A join may be placed on a second media node after the first fails to answer. */
const JOIN_TIMEOUT_MS = 25_000;
/** Short grace before leaving alone: a participant state flip during a rejoin must not end the call. */
const ALONE_GRACE_MS = 1500;

/** A closed session's pending work must not touch the next join's transports. */
class Superseded extends Error {}

/**
 * Rejoins by itself (new Device and transports, same local tracks) when the server says the
 * media session is gone or the signaling connection came back.
 */
export class CallSession extends Emitter<CallSessionEvents> {
  private _state: CallState;
  private device: Device | null = null;
  private sendTransport: types.Transport | null = null;
  private recvTransport: types.Transport | null = null;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly ice: IceRestarter;
  private readonly turn: TurnRenewal;
  private readonly retry: CallRetryPolicies;
  private readonly participantsByAddress = new Map<string, CallParticipant>();
  private generation = 0;
  private joinedOnce = false;
  private rejoining = false;
  private rejoinAgain = false;
  private _peerId: string | null = null;
  private _iceServers: RTCIceServer[] = [];
  private _activeSpeaker: string | null = null;
  private connectedAt: number | null = null;
  private readonly transportStates = new Map<TransportDirection, RTCPeerConnectionState>();
  private endTimer: ReturnType<typeof setTimeout> | null = null;
  /** Someone else has been in the call (see CallOptions.waitForOthers). */
  private othersSeen = false;

  constructor(
    private readonly engine: Engine,
    readonly callId: string,
    readonly kind: CallKind,
    readonly initiator: string,
    readonly options: CallOptions,
    participants: CallParticipant[],
    initial: CallState,
    retry: Partial<CallRetryPolicies> = {},
    /** The group the call was started to, if any. */
    readonly group: string | null = null,
  ) {
    super();
    this._state = initial;
    this.retry = defaultCallRetry(retry);
    for (const p of participants) this.participantsByAddress.set(p.address, p);
    const request = this.request.bind(this) as typeof this.request;
    this.turn = new TurnRenewal(
      async () => (await request('call.turnCredentials', { callId })).iceServers,
      async (iceServers) => {
        this._iceServers = iceServers;
        for (const t of [this.sendTransport, this.recvTransport]) if (t && !t.closed) await t.updateIceServers({ iceServers });
      },
    );
    this.sender = new Sender({
      callId,
      kind,
      options,
      request,
      generation: () => this.generation,
      device: () => this.device,
      sendTransport: () => this.sendTransport,
      emit: (e) => this.emit('local-track', e),
      onError: (err) => this.onMediaError(err),
    });
    this.ice = new IceRestarter(callId, request);
    this.receiver = new Receiver({
      callId,
      request,
      generation: () => this.generation,
      peerId: () => this._peerId,
      device: () => this.device,
      recvTransport: () => this.recvTransport,
      emit: (event, remote) => this.emit(event, remote),
      onError: (err) => this.onMediaError(err),
    });
  }

  get state(): CallState {
    return this._state;
  }

  /** The TURN servers of the current media session (from the join answer). */
  get iceServers(): { urls: string[]; username?: string }[] {
    return this._iceServers.map((s) => ({ urls: Array.isArray(s.urls) ? s.urls : [s.urls], ...(s.username ? { username: s.username } : {}) }));
  }

  get ended(): boolean {
    return this._state === 'ended';
  }

  get peerId(): string | null {
    return this._peerId;
  }

  get activeSpeaker(): string | null {
    return this._activeSpeaker;
  }

  /** When media first connected (ms since epoch), for a call timer. */
  get startedAt(): number | null {
    return this.connectedAt;
  }

  get participants(): CallParticipant[] {
    return [...this.participantsByAddress.values()];
  }

  get remoteTracks(): RemoteTrack[] {
    return this.receiver.tracks;
  }

  localTrack(source: MediaSource): MediaStreamTrack | null {
    return this.sender.local.tracks.get(source) ?? null;
  }

  isEnabled(source: 'mic' | 'camera'): boolean {
    return this.sender.local.enabled.get(source) ?? false;
  }

  get transportState(): Partial<Record<TransportDirection, RTCPeerConnectionState>> {
    return Object.fromEntries(this.transportStates) as Partial<Record<TransportDirection, RTCPeerConnectionState>>;
  }

  // ── public actions ────────────────────────────────────────────────────────

  /** Captures local media (if not yet) and joins the media session. */
  async join(): Promise<void> {
    if (this._state === 'ended') throw new BlockRtcClientError('CALL_ENDED', 'The call has ended');
    await this.sender.local.captureInitial();
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.joinMedia();
        return;
      } catch (err) {
        const code = errorCode(err);
        if (!isTransientJoinError(code) || this.ended) throw err;
        const delay = retryDelay(this.retry.join, attempt, since, code);
        if (delay === null) throw err;
        await sleep(delay);
      }
    }
  }

  /** Hangs up: leaves the media session (or cancels a call nobody answered yet). */
  async leave(): Promise<void> {
    if (this._state === 'ended') return;
    const joined = this.joinedOnce;
    this.finish('left');
    const req = joined ? this.engine.signal.request('call.leave', { callId: this.callId }) : this.engine.signal.request('call.cancel', { callId: this.callId });
    await req.catch(async (err: unknown) => {
      // Not joined on this connection (e.g. mid-reconnect): cancel if we still can.
      if (errorCode(err) === 'NOT_IN_CALL') await this.engine.signal.request('call.cancel', { callId: this.callId }).catch(() => undefined);
    });
  }

  setMicEnabled(on: boolean): Promise<void> {
    return this.sender.setEnabled('mic', on);
  }

  setCameraEnabled(on: boolean): Promise<void> {
    return this.sender.setCameraEnabled(on);
  }

  startScreenShare(): Promise<void> {
    return this.sender.startScreenShare();
  }

  stopScreenShare(): Promise<void> {
    return this.sender.stopScreenShare();
  }

  /**
   * Which simulcast layer of a remote video arrives (0 = smallest), e.g. the top one for the
   * active speaker and a small one for thumbnails. Without simulcast there is nothing to pick.
   */
  setPreferredLayers(producerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    return this.receiver.setPreferredLayers(producerId, spatialLayer, temporalLayer);
  }

  /** Per remote producer: bytes, packets, decoded frames, audio energy (what tests assert on). */
  inboundStats(): Promise<InboundStat[]> {
    return this.receiver.inboundStats();
  }

  /** Raw transport statistics (RTCStatsReport), e.g. to check the selected ICE candidate pair. */
  async transportStats(direction: TransportDirection): Promise<RTCStatsReport | null> {
    const t = direction === 'send' ? this.sendTransport : this.recvTransport;
    return t ? t.getStats() : null;
  }

  /** Transport stats as plain objects (serialisable across page.evaluate). */
  async transportStatsJson(direction: TransportDirection): Promise<Record<string, unknown>[]> {
    return statsToJson(await this.transportStats(direction));
  }

  // ── events routed by CallManager ─────────────────────────────────────────

  /** @internal */
  handleParticipant(address: string, state: CallParticipantState): void {
    const p = this.participantsByAddress.get(address);
    const now = new Date().toISOString();
    if (p) p.state = state;
    else this.participantsByAddress.set(address, { address, role: 'invitee', state, joinedAt: state === 'joined' ? now : null, leftAt: null });
    if (state === 'joined' && address !== this.engine.address && this._state === 'ringing') this.setState('connected');
    this.emit('participants', this.participants);
    this.checkAlone();
  }

  /** @internal */
  handleProducer(p: ProducerEvent): void {
    this.receiver.announce(p);
  }

  /** @internal */
  handleProducerClosed(producerId: string): void {
    this.receiver.producerClosed(producerId);
  }

  /** @internal */
  handleProducerState(producerId: string, paused: boolean): void {
    this.receiver.producerState(producerId, paused);
  }

  /** @internal */
  handlePeerLeft(peerId: string): void {
    this.receiver.peerLeft(peerId);
  }

  /** @internal */
  handleActiveSpeaker(peerId: string, address: string): void {
    this._activeSpeaker = peerId;
    this.emit('active-speaker', { peerId, address });
  }

  /** @internal: the server ended the call. */
  handleEnded(reason: string): void {
    this.finish(reason);
  }

  /**
   * Builds the media session again: after `call.rejoin`, a MEDIA_REJOIN answer, or a
   * signaling reconnect. Runs one at a time; a request arriving meanwhile runs once more.
   */
  async rejoin(reason: string): Promise<void> {
    if (this._state === 'ended' || !this.joinedOnce) return;
    if (this.rejoining) {
      this.rejoinAgain = true;
      return;
    }
    this.rejoining = true;
    this.emit('rejoin', { reason });
    this.setState('reconnecting');
    const since = Date.now();
    try {
      for (let attempt = 1; !this.ended; attempt++) {
        this.rejoinAgain = false;
        if (this.engine.signal.state !== 'open') return; // the reconnect triggers another rejoin
        try {
          await this.joinMedia();
          if (!this.rejoinAgain) return;
        } catch (err) {
          const code = errorCode(err);
          if (isFinalRejoinError(code)) {
            this.finish(code === 'CALL_ENDED' ? 'ended' : 'failed');
            return;
          }
          // MEDIA_UNAVAILABLE while the call is being placed again, a timeout, …: try again,
          // unless the policy has given up.
          const delay = retryDelay(this.retry.rejoin, attempt, since, code);
          if (delay === null) {
            this.finish('failed');
            return;
          }
          await sleep(delay);
        }
      }
    } finally {
      this.rejoining = false;
    }
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private setState(state: CallState): void {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    if (state === 'connected' && this.connectedAt === null) this.connectedAt = Date.now();
    this.emit('state', { state, previous });
  }

  private othersPresent(): boolean {
    const me = this.engine.address;
    return [...this.participantsByAddress.values()].some((p) => p.address !== me && ['ringing', 'accepted', 'joined'].includes(p.state));
  }

  private checkAlone(): void {
    if (this.options.autoLeaveWhenAlone === false || this._state === 'ended') return;
    if (this.endTimer) clearTimeout(this.endTimer);
    this.endTimer = null;
    if (this.othersPresent()) {
      this.othersSeen = true;
      return;
    }
    if (this.options.waitForOthers && !this.othersSeen) return;
    this.endTimer = setTimeout(() => {
      if (!this.othersPresent()) void this.leave();
    }, ALONE_GRACE_MS);
  }

  private async request<T extends RequestType>(type: T, payload: RequestInput<T>, opts: { timeoutMs?: number } = {}): Promise<ResultMap[T]> {
    try {
      return await this.engine.signal.request(type, payload, opts);
    } catch (err) {
      if (errorCode(err) === 'MEDIA_REJOIN') void this.rejoin('MEDIA_REJOIN');
      throw err;
    }
  }

  private async joinMedia(): Promise<void> {
    const gen = ++this.generation;
    this.teardownMedia();
    if (this._state !== 'ringing' && this._state !== 'reconnecting') this.setState('joining');
    this.receiver.forgetProducers();
    const res: JoinResult = await this.request('call.join', { callId: this.callId, device: this.engine.deviceId }, { timeoutMs: JOIN_TIMEOUT_MS });
    this.check(gen);
    this.joinedOnce = true;
    this._peerId = res.peerId;
    this._iceServers = res.iceServers;
    this.turn.schedule(res.iceServers);
    for (const p of res.participants) this.participantsByAddress.set(p.address, p);
    this.emit('participants', this.participants);
    const device = new Device();
    await device.load({ routerRtpCapabilities: res.rtpCapabilities });
    this.check(gen);
    this.device = device;
    this.sendTransport = await this.createTransport('send', res, gen);
    this.recvTransport = await this.createTransport('recv', res, gen);
    await this.sender.produceAll(gen);
    for (const p of res.producers) this.receiver.remember(p);
    // Includes producers announced by events while the transports were being set up.
    await this.receiver.consumeAll(gen);
    this.check(gen);
    const othersJoined = res.participants.some((p) => p.address !== this.engine.address && p.state === 'joined');
    const outgoingUnanswered = this.initiator === this.engine.address && !othersJoined && !this.connectedAt;
    this.setState(outgoingUnanswered ? 'ringing' : 'connected');
    this.checkAlone();
  }

  private check(gen: number): void {
    if (gen !== this.generation || this._state === 'ended') throw new Superseded('superseded');
  }

  private async createTransport(direction: TransportDirection, join: JoinResult, gen: number): Promise<types.Transport> {
    const info = await this.request('call.createTransport', { callId: this.callId, direction });
    this.check(gen);
    return openTransport(this.device!, direction, info, {
      callId: this.callId,
      request: this.request.bind(this) as typeof this.request,
      iceServers: join.iceServers,
      iceTransportPolicy: this.options.iceTransportPolicy,
      isCurrent: () => gen === this.generation,
      onConnectionState: (dir, state) => {
        this.transportStates.set(dir, state);
        this.emit('connection', { direction: dir, state });
      },
      ice: this.ice,
    });
  }

  private onMediaError(err: unknown): void {
    if (err instanceof Superseded) return;
    const code = errorCode(err);
    if (code === 'DISCONNECTED') return; // the reconnect rejoins
    console.warn('blockrtc: media step failed', err);
  }

  private teardownMedia(): void {
    this.turn.stop();
    this.receiver.teardown();
    this.sender.closeProducers();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    this.device = null;
    this.transportStates.clear();
  }

  private finish(reason: string): void {
    if (this._state === 'ended') return;
    this.generation++;
    if (this.endTimer) clearTimeout(this.endTimer);
    this.teardownMedia();
    this.sender.local.stopAll();
    this.setState('ended');
    this.emit('ended', { reason });
  }
}
