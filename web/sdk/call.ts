import { Device, type types } from 'mediasoup-client';
import type { CallParticipant, CallParticipantState, IncomingCallEvent, JoinResult, ProducerEvent, RequestInput, RequestType, ResultMap } from '../../protocol/index.ts';
import { normalize } from './chat.ts';
import type { Engine } from './engine.ts';
import { BlockRtcClientError, errorCode } from './errors.ts';
import { Emitter } from './events.ts';

export type CallKind = 'audio' | 'video';
export type MediaSource = 'mic' | 'camera' | 'screen';
export type CallState =
  /** Outgoing: waiting for someone to answer (media is already set up). */
  | 'ringing'
  | 'joining'
  | 'connected'
  /** Media is being set up again (SFU failover, lost signaling, MEDIA_REJOIN). */
  | 'reconnecting'
  | 'ended';

export interface CallOptions {
  /** Capture the microphone (default true). */
  audio?: boolean | MediaTrackConstraints;
  /** Capture the camera (default: true for video calls). */
  video?: boolean | MediaTrackConstraints;
  /** 'relay' sends everything through TURN (the join answer carries the servers). */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Upper bound for the camera encoding (its top layer with simulcast), bits per second. */
  maxVideoBitrate?: number;
  /**
   * Send the camera as simulcast layers so receivers (or the app for small tiles) can pick a
   * lower one (default true). Only from 640 px wide: smaller pictures get one layer anyway.
   */
  simulcast?: boolean;
  /** Leave by itself when every other participant has left, declined or missed (default true). */
  autoLeaveWhenAlone?: boolean;
}

const JOIN_TIMEOUT_MS = 25_000;

export interface RemoteTrack {
  producerId: string;
  consumerId: string;
  peerId: string;
  address: string;
  kind: CallKind;
  source: MediaSource;
  track: MediaStreamTrack;
  /** The sender muted it (mic) or turned it off (camera). */
  paused: boolean;
  /** Sent as simulcast layers: setPreferredLayers picks which one arrives. */
  simulcast: boolean;
}

export interface InboundStat {
  producerId: string;
  peerId: string;
  address: string;
  kind: CallKind;
  source: MediaSource;
  bytesReceived: number;
  packetsReceived: number;
  framesDecoded: number;
  totalAudioEnergy: number;
  audioLevel: number;
  /** Size of the last decoded video frame (0 for audio or before the first frame). */
  frameWidth: number;
  frameHeight: number;
}

export type TransportDirection = 'send' | 'recv';

export interface CallSessionEvents {
  state: { state: CallState; previous: CallState };
  'track-added': RemoteTrack;
  'track-removed': RemoteTrack;
  'track-paused': RemoteTrack;
  participants: CallParticipant[];
  'active-speaker': { peerId: string; address: string };
  'local-track': { source: MediaSource; track: MediaStreamTrack | null; enabled: boolean };
  /** Transport connection state, for a connection indicator. */
  connection: { direction: TransportDirection; state: RTCPeerConnectionState };
  rejoin: { reason: string };
  ended: { reason: string };
}

interface Consumed {
  consumer: types.Consumer;
  remote: RemoteTrack;
}

/** A closed session's pending work must not touch the next join's transports. */
class Superseded extends Error {}

const DEFAULT_VIDEO: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24, max: 30 } };

/**
 * One call: the signaling lifecycle (leave/cancel), the mediasoup Device with a send and a
 * recv transport, local producers and one consumer per remote producer. Rejoins by itself
 * (new Device and transports, same local tracks) when the server says the media session is
 * gone or the signaling connection came back.
 */
export class CallSession extends Emitter<CallSessionEvents> {
  private _state: CallState;
  private device: Device | null = null;
  private sendTransport: types.Transport | null = null;
  private recvTransport: types.Transport | null = null;
  private readonly producers = new Map<MediaSource, types.Producer>();
  private readonly localTracks = new Map<MediaSource, MediaStreamTrack>();
  private readonly enabled = new Map<MediaSource, boolean>([
    ['mic', true],
    ['camera', true],
  ]);
  private readonly consumed = new Map<string, Consumed>();
  private readonly knownProducers = new Map<string, ProducerEvent>();
  private readonly participantsByAddress = new Map<string, CallParticipant>();
  private generation = 0;
  private joinedOnce = false;
  private rejoining = false;
  private rejoinAgain = false;
  private readonly iceRestarting = new Set<string>();
  private consumeChain: Promise<void> = Promise.resolve();
  private _peerId: string | null = null;
  private _iceServers: RTCIceServer[] = [];
  private _activeSpeaker: string | null = null;
  private connectedAt: number | null = null;
  private readonly transportStates = new Map<TransportDirection, RTCPeerConnectionState>();
  private endTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly engine: Engine,
    readonly callId: string,
    readonly kind: CallKind,
    readonly initiator: string,
    readonly options: CallOptions,
    participants: CallParticipant[],
    initial: CallState,
  ) {
    super();
    this._state = initial;
    for (const p of participants) this.participantsByAddress.set(p.address, p);
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
    return [...this.consumed.values()].map((c) => c.remote);
  }

  localTrack(source: MediaSource): MediaStreamTrack | null {
    return this.localTracks.get(source) ?? null;
  }

  isEnabled(source: 'mic' | 'camera'): boolean {
    return this.enabled.get(source) ?? false;
  }

  get transportState(): Partial<Record<TransportDirection, RTCPeerConnectionState>> {
    return Object.fromEntries(this.transportStates) as Partial<Record<TransportDirection, RTCPeerConnectionState>>;
  }

  // ── public actions ────────────────────────────────────────────────────────

  /** Captures local media (if not yet) and joins the media session. */
  async join(): Promise<void> {
    if (this._state === 'ended') throw new BlockRtcClientError('CALL_ENDED', 'The call has ended');
    await this.captureLocal();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.joinMedia();
        return;
      } catch (err) {
        // A busy or just-replaced media node: worth another try before giving up on the call.
        const code = errorCode(err);
        const transient = code === 'MEDIA_UNAVAILABLE' || code === 'UNAVAILABLE' || code === 'TIMEOUT' || code === 'INTERNAL';
        if (!transient || attempt >= 3 || this.ended) throw err;
        await sleep(500 * attempt);
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

  async setMicEnabled(on: boolean): Promise<void> {
    await this.setEnabled('mic', on);
  }

  async setCameraEnabled(on: boolean): Promise<void> {
    if (on && !this.localTracks.has('camera')) {
      // An audio call (or a failed camera) can turn the camera on later.
      const track = await this.capture('camera');
      if (!track) return;
      this.enabled.set('camera', true);
      await this.produce('camera', this.generation).catch((e: unknown) => this.onMediaError(e));
      this.emit('local-track', { source: 'camera', track, enabled: true });
      return;
    }
    await this.setEnabled('camera', on);
  }

  async startScreenShare(): Promise<void> {
    if (this.localTracks.has('screen')) return;
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { max: 10 } }, audio: false });
    } catch (err) {
      throw new BlockRtcClientError('MEDIA_DEVICE_ERROR', `Screen capture refused: ${(err as Error).message}`);
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    track.addEventListener('ended', () => void this.stopScreenShare());
    this.localTracks.set('screen', track);
    this.enabled.set('screen', true);
    this.emit('local-track', { source: 'screen', track, enabled: true });
    await this.produce('screen', this.generation).catch((e: unknown) => this.onMediaError(e));
  }

  async stopScreenShare(): Promise<void> {
    const track = this.localTracks.get('screen');
    if (!track) return;
    this.localTracks.delete('screen');
    this.enabled.delete('screen');
    track.stop();
    const producer = this.producers.get('screen');
    this.producers.delete('screen');
    if (producer) {
      producer.close();
      await this.request('call.closeProducer', { callId: this.callId, producerId: producer.id }).catch(() => undefined);
    }
    this.emit('local-track', { source: 'screen', track: null, enabled: false });
  }

  /** Per remote producer: bytes, packets, decoded frames, audio energy (what tests assert on). */
  async inboundStats(): Promise<InboundStat[]> {
    const out: InboundStat[] = [];
    for (const { consumer, remote } of this.consumed.values()) {
      const report = await consumer.getStats().catch(() => null);
      const s: InboundStat = {
        producerId: remote.producerId,
        peerId: remote.peerId,
        address: remote.address,
        kind: remote.kind,
        source: remote.source,
        bytesReceived: 0,
        packetsReceived: 0,
        framesDecoded: 0,
        totalAudioEnergy: 0,
        audioLevel: 0,
        frameWidth: 0,
        frameHeight: 0,
      };
      report?.forEach((r: Record<string, unknown>) => {
        if (r.type !== 'inbound-rtp') return;
        s.bytesReceived += num(r.bytesReceived);
        s.packetsReceived += num(r.packetsReceived);
        s.framesDecoded += num(r.framesDecoded);
        s.totalAudioEnergy += num(r.totalAudioEnergy);
        s.audioLevel = Math.max(s.audioLevel, num(r.audioLevel));
        s.frameWidth = Math.max(s.frameWidth, num(r.frameWidth));
        s.frameHeight = Math.max(s.frameHeight, num(r.frameHeight));
      });
      out.push(s);
    }
    return out;
  }

  /** Raw transport statistics (RTCStatsReport), e.g. to check the selected ICE candidate pair. */
  async transportStats(direction: TransportDirection): Promise<RTCStatsReport | null> {
    const t = direction === 'send' ? this.sendTransport : this.recvTransport;
    return t ? t.getStats() : null;
  }

  /** Transport stats as plain objects (serialisable across page.evaluate). */
  async transportStatsJson(direction: TransportDirection): Promise<Record<string, unknown>[]> {
    const report = await this.transportStats(direction);
    const out: Record<string, unknown>[] = [];
    report?.forEach((r: Record<string, unknown>) => out.push({ ...r }));
    return out;
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
    this.knownProducers.set(p.producerId, p);
    if (this.recvTransport) this.queueConsume(p, this.generation);
  }

  /** @internal */
  handleProducerClosed(producerId: string): void {
    this.knownProducers.delete(producerId);
    this.dropConsumer(producerId);
  }

  /** @internal */
  handleProducerState(producerId: string, paused: boolean): void {
    const p = this.knownProducers.get(producerId);
    if (p) p.paused = paused;
    const c = this.consumed.get(producerId);
    if (c) {
      c.remote.paused = paused;
      this.emit('track-paused', c.remote);
    }
  }

  /** @internal */
  handlePeerLeft(peerId: string): void {
    for (const [producerId, p] of this.knownProducers) if (p.peerId === peerId) this.handleProducerClosed(producerId);
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
    try {
      for (let attempt = 0; !this.ended; attempt++) {
        this.rejoinAgain = false;
        if (this.engine.signal.state !== 'open') return; // the reconnect triggers another rejoin
        try {
          await this.joinMedia();
          if (!this.rejoinAgain) return;
        } catch (err) {
          const code = errorCode(err);
          if (code === 'CALL_ENDED' || code === 'CALL_NOT_FOUND' || code === 'CALL_NOT_ALLOWED' || code === 'CALL_STATE') {
            this.finish(code === 'CALL_ENDED' ? 'ended' : 'failed');
            return;
          }
          // MEDIA_UNAVAILABLE while the call is being placed again, a timeout, …: try again.
          await sleep(Math.min(4000, 300 * 2 ** attempt));
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
    if (this.othersPresent()) return;
    // Short grace: a participant state flip during a rejoin must not end the call.
    this.endTimer = setTimeout(() => {
      if (!this.othersPresent()) void this.leave();
    }, 1500);
  }

  private async request<T extends RequestType>(type: T, payload: RequestInput<T>, opts: { timeoutMs?: number } = {}): Promise<ResultMap[T]> {
    try {
      return await this.engine.signal.request(type, payload, opts);
    } catch (err) {
      if (errorCode(err) === 'MEDIA_REJOIN') void this.rejoin('MEDIA_REJOIN');
      throw err;
    }
  }

  private async captureLocal(): Promise<void> {
    const wantAudio = this.options.audio !== false;
    const wantVideo = this.options.video !== undefined ? this.options.video !== false : this.kind === 'video';
    if (wantAudio && !this.localTracks.has('mic')) await this.capture('mic');
    if (wantVideo && !this.localTracks.has('camera')) await this.capture('camera');
    else if (!wantVideo) this.enabled.set('camera', false);
  }

  private async capture(source: 'mic' | 'camera'): Promise<MediaStreamTrack | null> {
    const constraints: MediaStreamConstraints =
      source === 'mic'
        ? { audio: typeof this.options.audio === 'object' ? this.options.audio : { echoCancellation: true, noiseSuppression: true, autoGainControl: true } }
        : { video: typeof this.options.video === 'object' ? this.options.video : DEFAULT_VIDEO };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const track = source === 'mic' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      if (!track) return null;
      this.localTracks.set(source, track);
      this.emit('local-track', { source, track, enabled: this.enabled.get(source) ?? true });
      return track;
    } catch (err) {
      // No device or permission refused: the call goes on receive-only for this kind.
      console.warn(`blockrtc: ${source} unavailable`, err);
      this.enabled.set(source, false);
      return null;
    }
  }

  private async setEnabled(source: 'mic' | 'camera', on: boolean): Promise<void> {
    this.enabled.set(source, on);
    const track = this.localTracks.get(source);
    if (track) track.enabled = on;
    const producer = this.producers.get(source);
    this.emit('local-track', { source, track: track ?? null, enabled: on });
    if (!producer) return;
    if (on) producer.resume();
    else producer.pause();
    await this.request('call.pauseProducer', { callId: this.callId, producerId: producer.id, paused: !on }).catch(() => undefined);
  }

  private async joinMedia(): Promise<void> {
    const gen = ++this.generation;
    this.teardownMedia();
    if (this._state !== 'ringing' && this._state !== 'reconnecting') this.setState('joining');
    // Producers of an earlier media session are gone; events from now on belong to this one.
    this.knownProducers.clear();
    // A join may be placed on a second media node after the first one fails to answer, so
    // it gets more time than an ordinary request.
    const res: JoinResult = await this.request('call.join', { callId: this.callId, device: this.engine.deviceId }, { timeoutMs: JOIN_TIMEOUT_MS });
    this.check(gen);
    this.joinedOnce = true;
    this._peerId = res.peerId;
    this._iceServers = res.iceServers;
    for (const p of res.participants) this.participantsByAddress.set(p.address, p);
    this.emit('participants', this.participants);
    const device = new Device();
    await device.load({ routerRtpCapabilities: res.rtpCapabilities as unknown as types.RtpCapabilities });
    this.check(gen);
    this.device = device;
    this.sendTransport = await this.createTransport('send', res, gen);
    this.recvTransport = await this.createTransport('recv', res, gen);
    for (const source of ['mic', 'camera', 'screen'] as const) {
      if (this.localTracks.has(source)) await this.produce(source, gen);
    }
    for (const p of res.producers) this.knownProducers.set(p.producerId, p);
    // Includes producers announced by events while the transports were being set up.
    for (const p of this.knownProducers.values()) this.queueConsume(p, gen);
    await this.consumeChain;
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
    const device = this.device!;
    const params: types.TransportOptions = {
      id: info.id,
      iceParameters: info.iceParameters as unknown as types.IceParameters,
      iceCandidates: info.iceCandidates as unknown as types.IceCandidate[],
      dtlsParameters: info.dtlsParameters as unknown as types.DtlsParameters,
      iceServers: join.iceServers,
      ...(this.options.iceTransportPolicy ? { iceTransportPolicy: this.options.iceTransportPolicy } : {}),
    };
    const t = direction === 'send' ? device.createSendTransport(params) : device.createRecvTransport(params);
    t.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.request('call.connectTransport', { callId: this.callId, transportId: t.id, dtlsParameters: dtlsParameters as unknown as Record<string, unknown> }).then(
        () => callback(),
        (e: unknown) => errback(e as Error),
      );
    });
    if (direction === 'send') {
      t.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        const source = (appData.source as MediaSource | undefined) ?? (kind === 'audio' ? 'mic' : 'camera');
        this.request('call.produce', {
          callId: this.callId,
          transportId: t.id,
          kind,
          rtpParameters: rtpParameters as unknown as Record<string, unknown>,
          source,
          paused: appData.paused === true,
        }).then(
          (r) => callback({ id: r.producerId }),
          (e: unknown) => errback(e as Error),
        );
      });
    }
    t.on('connectionstatechange', (state) => {
      if (gen !== this.generation) return;
      this.transportStates.set(direction, state);
      this.emit('connection', { direction, state });
      if (state === 'disconnected' || state === 'failed') void this.restartIce(t, gen);
    });
    return t;
  }

  /** ICE restart on a transport that lost connectivity (network change, NAT rebinding). */
  private async restartIce(t: types.Transport, gen: number): Promise<void> {
    if (this.iceRestarting.has(t.id)) return;
    this.iceRestarting.add(t.id);
    try {
      const r = await this.request('call.restartIce', { callId: this.callId, transportId: t.id });
      if (gen !== this.generation || t.closed) return;
      await t.restartIce({ iceParameters: r.iceParameters as unknown as types.IceParameters });
    } catch {
      // The node may be gone: call.rejoin (or MEDIA_REJOIN above) takes over.
    } finally {
      this.iceRestarting.delete(t.id);
    }
  }

  private async produce(source: MediaSource, gen: number): Promise<void> {
    const track = this.localTracks.get(source);
    const t = this.sendTransport;
    if (!track || !t || t.closed || this.producers.has(source) || !this.device?.canProduce(track.kind as CallKind)) return;
    const enabled = this.enabled.get(source) ?? true;
    const video = track.kind === 'video';
    const producer = await t.produce({
      track,
      // We own the tracks: a rejoin produces the same tracks on new transports.
      stopTracks: false,
      zeroRtpOnPause: true,
      ...(video ? { encodings: this.videoEncodings(source, track), codecOptions: { videoGoogleStartBitrate: 300 } } : {}),
      appData: { source, paused: !enabled },
    });
    if (gen !== this.generation) {
      producer.close();
      return;
    }
    if (!enabled) producer.pause();
    this.producers.set(source, producer);
  }

  /** Camera: two or three simulcast layers (quarter, half, full size) when big enough; otherwise one. */
  private videoEncodings(source: MediaSource, track: MediaStreamTrack): RTCRtpEncodingParameters[] {
    if (source === 'screen') return [{ maxBitrate: 1_000_000 }];
    const top = this.options.maxVideoBitrate ?? 600_000;
    const width = track.getSettings().width ?? 0;
    if (this.options.simulcast === false || width < 640) return [{ maxBitrate: top }];
    const scales = width >= 1280 ? [4, 2, 1] : [2, 1];
    return scales.map((scale) => ({ scaleResolutionDownBy: scale, maxBitrate: Math.round(top / (scale * scale)) }));
  }

  /**
   * Which simulcast layer of a remote video arrives (0 = smallest), e.g. the top one for the
   * active speaker and a small one for thumbnails. Without simulcast there is nothing to pick.
   */
  async setPreferredLayers(producerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const c = this.consumed.get(producerId);
    if (!c) throw new BlockRtcClientError('NOT_FOUND', 'Not receiving that track');
    if (!c.remote.simulcast) return;
    await this.request('call.setPreferredLayers', { callId: this.callId, consumerId: c.consumer.id, spatialLayer, ...(temporalLayer !== undefined ? { temporalLayer } : {}) });
  }

  private queueConsume(p: ProducerEvent, gen: number): void {
    if (p.peerId === this._peerId) return;
    this.consumeChain = this.consumeChain.then(() => this.consume(p, gen)).catch((err: unknown) => this.onMediaError(err));
  }

  private async consume(p: ProducerEvent, gen: number): Promise<void> {
    if (gen !== this.generation || this.consumed.has(p.producerId) || !this.knownProducers.has(p.producerId)) return;
    const t = this.recvTransport;
    const device = this.device;
    if (!t || !device || t.closed) return;
    const info = await this.request('call.consume', { callId: this.callId, transportId: t.id, producerId: p.producerId, rtpCapabilities: device.rtpCapabilities as unknown as Record<string, unknown> });
    if (gen !== this.generation || t.closed) return;
    const consumer = await t.consume({ id: info.id, producerId: info.producerId, kind: info.kind, rtpParameters: info.rtpParameters as unknown as types.RtpParameters });
    if (gen !== this.generation) {
      consumer.close();
      return;
    }
    const remote: RemoteTrack = {
      producerId: p.producerId,
      consumerId: consumer.id,
      peerId: p.peerId,
      address: p.address,
      kind: info.kind,
      source: p.source,
      track: consumer.track,
      paused: info.producerPaused || p.paused,
      simulcast: info.type === 'simulcast',
    };
    this.consumed.set(p.producerId, { consumer, remote });
    this.emit('track-added', remote);
    await this.request('call.resumeConsumer', { callId: this.callId, consumerId: consumer.id });
    // A producer that closed while we were setting up.
    if (!this.knownProducers.has(p.producerId)) this.dropConsumer(p.producerId);
  }

  private dropConsumer(producerId: string): void {
    const c = this.consumed.get(producerId);
    if (!c) return;
    this.consumed.delete(producerId);
    c.consumer.close();
    this.emit('track-removed', c.remote);
  }

  private onMediaError(err: unknown): void {
    if (err instanceof Superseded) return;
    const code = errorCode(err);
    if (code === 'DISCONNECTED') return; // the reconnect rejoins
    console.warn('blockrtc: media step failed', err);
  }

  private teardownMedia(): void {
    for (const producerId of [...this.consumed.keys()]) this.dropConsumer(producerId);
    for (const p of this.producers.values()) p.close();
    this.producers.clear();
    this.sendTransport?.close();
    this.recvTransport?.close();
    this.sendTransport = null;
    this.recvTransport = null;
    this.device = null;
    this.transportStates.clear();
    this.consumeChain = Promise.resolve();
  }

  private finish(reason: string): void {
    if (this._state === 'ended') return;
    this.generation++;
    if (this.endTimer) clearTimeout(this.endTimer);
    this.teardownMedia();
    for (const t of this.localTracks.values()) t.stop();
    this.localTracks.clear();
    this.setState('ended');
    this.emit('ended', { reason });
  }
}

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

/** Routes call events to sessions and keeps the ringing list. */
export class CallManager extends Emitter<CallManagerEvents> {
  private readonly sessions = new Map<string, CallSession>();
  private readonly ringing = new Map<string, IncomingCall>();
  /** Defaults for every call (e.g. iceTransportPolicy, video constraints). */
  defaults: CallOptions = {};

  constructor(private readonly engine: Engine) {
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
    const session = this.track(new CallSession(this.engine, r.callId, kind, this.engine.address ?? '', { ...this.defaults, ...options }, r.participants, 'ringing'));
    return this.joinOrLeave(session);
  }

  async accept(callId: string, options: CallOptions = {}): Promise<CallSession> {
    const ring = this.ringing.get(callId);
    await this.engine.signal.request('call.accept', { callId });
    this.ringing.delete(callId);
    const participants: CallParticipant[] = (ring?.participants ?? []).map((address) => ({ address, role: address === ring?.from ? 'initiator' : 'invitee', state: address === ring?.from ? 'joined' : 'ringing', joinedAt: null, leftAt: null }));
    const session = this.track(new CallSession(this.engine, callId, ring?.kind ?? 'video', ring?.from ?? '', { ...this.defaults, ...options }, participants, 'joining'));
    return this.joinOrLeave(session);
  }

  /** A session that cannot join leaves the call at once instead of lingering as a participant. */
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

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
