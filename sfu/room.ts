import type { types } from 'mediasoup';
import type { ConsumerInfo, MediaEvent, MediaSource, ProducerInfo, TransportInfo } from '../protocol/sfu.ts';
import type { Logger } from '../infra/logger.ts';
import { MEDIA_CODECS } from './codecs.ts';
import { SfuError } from './errors.ts';
import type { WorkerPool, WorkerSlot } from './worker-pool.ts';

/** Who a media event is for: a participant, and the signaling node that serves it. */
export interface Recipient {
  address: string;
  origin: string;
}
/** Reports a media event about this call to some of its participants. */
export type RoomEmit = (to: Recipient[], event: MediaEvent) => void;

/**
 * What one call may hold on this node, enforced here because the media tier is the last
 * line: signaling bugs or a bypassed check must not let one participant fill a worker.
 */
export interface RoomLimits {
  /** Consumers a worker takes before the call extends to another worker. */
  maxConsumersPerWorker: number;
  /** People (addresses) with a media peer in the call at once. */
  maxParticipants: number;
  /** Distinct devices one address may join from over the call's life; each replaces the previous. */
  maxDevicesPerParticipant: number;
  /** Live WebRTC transports per peer (send, receive, screen share). */
  maxTransportsPerPeer: number;
}

interface Peer {
  id: string;
  address: string;
  origin: string;
  worker: number;
  transports: Map<string, types.WebRtcTransport>;
  producers: Map<string, { producer: types.Producer; source: MediaSource }>;
  consumers: Map<string, types.Consumer>;
  /** Producers a consume is in flight for (so two concurrent consumes cannot both pass). */
  pendingConsumes: Set<string>;
}

/**
 * One call's media: a router on its primary worker, more routers on other workers of this
 * node once the primary is full (producers piped between them on demand), the peers and
 * their transports. `close()` is idempotent and cascades.
 */
export class Room {
  private readonly routers = new Map<number, types.Router>();
  private readonly speakers = new Map<number, types.ActiveSpeakerObserver>();
  private readonly peers = new Map<string, Peer>();
  /** The observer only reports changes, so the current speaker is kept for peers that join later. */
  private dominant: { peerId: string; address: string } | null = null;
  /** `producerId>workerIndex` pairs already piped. */
  private readonly piped = new Map<string, Promise<void>>();
  /** Per address, the peer ids (devices) it has joined from; all but the current one were replaced. */
  private readonly devices = new Map<string, Set<string>>();
  /** Transports being created per peer (counted against the limit before they exist). */
  private readonly pendingTransports = new Map<string, number>();
  closed = false;

  private constructor(
    readonly callId: string,
    readonly primary: number,
    private readonly pool: WorkerPool,
    private readonly limits: RoomLimits,
    private readonly emit: RoomEmit,
    private readonly log: Logger,
    private readonly onClose: (room: Room) => void,
  ) {}

  static async create(callId: string, worker: number, pool: WorkerPool, limits: RoomLimits, emit: RoomEmit, log: Logger, onClose: (r: Room) => void): Promise<Room> {
    const slot = pool.slots[worker]?.alive ? pool.slots[worker]! : leastLoaded(pool.alive());
    if (!slot) throw new SfuError('INTERNAL', 'no live worker');
    const room = new Room(callId, slot.index, pool, limits, emit, log, onClose);
    await room.router(slot.index);
    return room;
  }

  get workers(): number[] {
    return [...this.routers.keys()];
  }
  get size(): number {
    return this.peers.size;
  }
  usesWorker(index: number): boolean {
    return this.routers.has(index);
  }
  /** Every participant but `except`, once per address (a user's devices share its events). */
  recipients(except?: string): Recipient[] {
    const out = new Map<string, Recipient>();
    for (const p of this.peers.values()) if (p.id !== except && !out.has(p.address)) out.set(p.address, { address: p.address, origin: p.origin });
    return [...out.values()];
  }
  counts(): { peers: number; producers: number; consumers: number } {
    let producers = 0;
    let consumers = 0;
    for (const p of this.peers.values()) {
      producers += p.producers.size;
      consumers += p.consumers.size;
    }
    return { peers: this.peers.size, producers, consumers };
  }

  private async router(index: number): Promise<types.Router> {
    const existing = this.routers.get(index);
    if (existing && !existing.closed) return existing;
    const slot = this.pool.slots[index];
    if (!slot?.alive) throw new SfuError('INTERNAL', `worker ${index} is not alive`);
    const router = await slot.worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { callId: this.callId } });
    this.routers.set(index, router);
    slot.rooms++;
    router.observer.once('close', () => slot.rooms--);
    const speaker = await router.createActiveSpeakerObserver({ interval: 300 });
    speaker.on('dominantspeaker', ({ producer }) => {
      const owner = [...this.peers.values()].find((p) => p.producers.has(producer.id));
      if (!owner) return;
      this.dominant = { peerId: owner.id, address: owner.address };
      this.emit(this.recipients(), { type: 'activeSpeaker', callId: this.callId, ...this.dominant });
    });
    this.speakers.set(index, speaker);
    return router;
  }

  /** The primary worker while it has room; then the least-loaded other worker. */
  private pickWorker(): WorkerSlot {
    const primary = this.pool.slots[this.primary];
    if (primary?.alive && primary.consumers < this.limits.maxConsumersPerWorker) return primary;
    const others = this.pool.alive().filter((s) => s.index !== this.primary && s.consumers < this.limits.maxConsumersPerWorker);
    const pick = leastLoaded(others) ?? (primary?.alive ? primary : leastLoaded(this.pool.alive()));
    if (!pick) throw new SfuError('INTERNAL', 'no live worker');
    return pick;
  }

  async join(peerId: string, address: string, origin: string): Promise<{ rtpCapabilities: types.RtpCapabilities; producers: ProducerInfo[]; worker: number }> {
    if (this.closed) throw new SfuError('CALL_NOT_FOUND', 'This media session has ended; rejoin');
    const { maxDevicesPerParticipant } = this.limits;
    this.checkRoomFor(address);
    const seen = this.devices.get(address) ?? new Set<string>();
    if (!seen.has(peerId) && seen.size >= maxDevicesPerParticipant) {
      throw new SfuError('LIMIT', `At most ${maxDevicesPerParticipant} devices per participant in one call; join again from one of them`);
    }
    seen.add(peerId);
    this.devices.set(address, seen);
    const slot = this.pickWorker();
    const router = await this.router(slot.index);
    // One media peer per participant: the same device joining again (reconnect, moved call)
    // or another device of the same address replaces the old peer (the others get peerLeft
    // and its producers close). The room stays even if that was its only peer.
    if (this.closed) throw new SfuError('CALL_NOT_FOUND', 'This media session has ended; rejoin');
    this.checkRoomFor(address); // again: others may have joined while the router was made
    const old = this.peerOf(address);
    if (old) this.leave(old.id, { keepRoom: true });
    const peer: Peer = { id: peerId, address, origin, worker: slot.index, transports: new Map(), producers: new Map(), consumers: new Map(), pendingConsumes: new Set() };
    this.peers.set(peerId, peer);
    this.emit(this.recipients(peerId), { type: 'peerJoined', callId: this.callId, peerId, address });
    if (this.dominant) this.emit([{ address, origin }], { type: 'activeSpeaker', callId: this.callId, ...this.dominant });
    return { rtpCapabilities: router.rtpCapabilities, producers: this.producerInfos(peerId), worker: slot.index };
  }

  leave(peerId: string, opts: { keepRoom?: boolean } = {}): number {
    const peer = this.peers.get(peerId);
    if (!peer) return this.peers.size;
    this.peers.delete(peerId);
    if (this.dominant?.peerId === peerId) this.dominant = null;
    for (const t of peer.transports.values()) t.close();
    this.emit(this.recipients(), { type: 'peerLeft', callId: this.callId, peerId, address: peer.address });
    if (this.peers.size === 0 && !opts.keepRoom) this.close();
    return this.peers.size;
  }

  /** CALL_MAX_PARTICIPANTS counts people: a new address needs a free place, another device of a present one does not. */
  private checkRoomFor(address: string): void {
    if (this.peerOf(address)) return;
    const people = new Set([...this.peers.values()].map((p) => p.address)).size;
    if (people >= this.limits.maxParticipants) throw new SfuError('LIMIT', `This call already has ${this.limits.maxParticipants} participants in its media session`);
  }

  private peerOf(address: string): Peer | undefined {
    for (const p of this.peers.values()) if (p.address === address) return p;
    return undefined;
  }

  private peer(peerId: string): Peer {
    const p = this.peers.get(peerId);
    if (p) return p;
    const address = this.addressOfDevice(peerId);
    if (address && this.peerOf(address)) throw new SfuError('REPLACED', 'Another device of yours joined this call and took over its media');
    throw new SfuError('PEER_NOT_FOUND', 'Join the call first');
  }

  private addressOfDevice(peerId: string): string | undefined {
    for (const [address, ids] of this.devices) if (ids.has(peerId)) return address;
    return undefined;
  }

  private transport(peer: Peer, transportId: string): types.WebRtcTransport {
    const t = peer.transports.get(transportId);
    if (!t) throw new SfuError('NOT_FOUND', 'No such transport for this participant');
    return t;
  }

  async createTransport(peerId: string, direction: 'send' | 'recv'): Promise<TransportInfo> {
    const peer = this.peer(peerId);
    const max = this.limits.maxTransportsPerPeer;
    const pending = this.pendingTransports.get(peerId) ?? 0;
    if (peer.transports.size + pending >= max) throw new SfuError('LIMIT', `At most ${max} transports per participant (send, receive, screen share)`);
    this.pendingTransports.set(peerId, pending + 1);
    let t: types.WebRtcTransport;
    try {
      const slot = this.pool.slots[peer.worker]!;
      const router = await this.router(peer.worker);
      t = await router.createWebRtcTransport({
        webRtcServer: slot.server,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        initialAvailableOutgoingBitrate: 1_000_000,
        appData: { direction, peerId },
      });
    } finally {
      const n = (this.pendingTransports.get(peerId) ?? 1) - 1;
      if (n > 0) this.pendingTransports.set(peerId, n);
      else this.pendingTransports.delete(peerId);
    }
    // The peer may have been replaced or left while the transport was being made.
    if (this.peers.get(peerId) !== peer) {
      t.close();
      throw new SfuError('PEER_NOT_FOUND', 'This media session was replaced; join again');
    }
    peer.transports.set(t.id, t);
    t.observer.once('close', () => peer.transports.delete(t.id));
    return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
  }

  async connectTransport(peerId: string, transportId: string, dtlsParameters: types.DtlsParameters): Promise<void> {
    await this.transport(this.peer(peerId), transportId).connect({ dtlsParameters });
  }

  async restartIce(peerId: string, transportId: string): Promise<types.IceParameters> {
    return this.transport(this.peer(peerId), transportId).restartIce();
  }

  async produce(peerId: string, transportId: string, kind: 'audio' | 'video', rtpParameters: types.RtpParameters, source: MediaSource, paused: boolean): Promise<string> {
    const peer = this.peer(peerId);
    const t = this.transport(peer, transportId);
    if (t.appData.direction !== 'send') throw new SfuError('BAD_REQUEST', 'Produce on a send transport');
    if ((kind === 'audio') !== (source === 'mic')) throw new SfuError('BAD_REQUEST', `A ${kind} track cannot be the ${source}`);
    for (const p of peer.producers.values()) {
      if (p.source === source) throw new SfuError('LIMIT', `You already send a ${source} track (producer ${p.producer.id}); close it first`);
    }
    const slot = this.pool.slots[peer.worker]!;
    let producer: types.Producer;
    try {
      producer = await t.produce({ kind, rtpParameters, paused, appData: { source, peerId } });
    } catch (err) {
      throw new SfuError('BAD_REQUEST', `Cannot produce: ${(err as Error).message}`);
    }
    slot.producers++;
    peer.producers.set(producer.id, { producer, source });
    producer.observer.once('close', () => {
      slot.producers--;
      peer.producers.delete(producer.id);
      if (!this.closed) this.emit(this.recipients(peerId), { type: 'producerClosed', callId: this.callId, producerId: producer.id, peerId });
    });
    if (kind === 'audio') await this.speakers.get(peer.worker)?.addProducer({ producerId: producer.id }).catch(() => undefined);
    this.emit(this.recipients(peerId), { type: 'producerAdded', producer: this.producerInfo(peer, producer, source) });
    return producer.id;
  }

  pauseProducer(peerId: string, producerId: string, paused: boolean): Promise<void> {
    const entry = this.ownProducer(peerId, producerId);
    const done = paused ? entry.producer.pause() : entry.producer.resume();
    return done.then(() => this.emit(this.recipients(peerId), { type: 'producerPaused', callId: this.callId, producerId, peerId, paused }));
  }

  closeProducer(peerId: string, producerId: string): void {
    this.ownProducer(peerId, producerId).producer.close();
  }

  private ownProducer(peerId: string, producerId: string) {
    const peer = this.peer(peerId);
    const entry = peer.producers.get(producerId);
    if (!entry) {
      const other = [...this.peers.values()].some((p) => p.producers.has(producerId));
      throw new SfuError(other ? 'FORBIDDEN' : 'NOT_FOUND', other ? 'That producer belongs to another participant' : 'No such producer');
    }
    return entry;
  }

  async consume(peerId: string, transportId: string, producerId: string, rtpCapabilities: types.RtpCapabilities): Promise<ConsumerInfo> {
    const peer = this.peer(peerId);
    const t = this.transport(peer, transportId);
    if (t.appData.direction !== 'recv') throw new SfuError('BAD_REQUEST', 'Consume on a recv transport');
    const owner = [...this.peers.values()].find((p) => p.producers.has(producerId));
    if (!owner) throw new SfuError('NOT_FOUND', 'No such producer in this call');
    if (owner.id === peerId) throw new SfuError('BAD_REQUEST', 'A participant does not consume its own producer');
    // One consumer per (peer, producer): a second consume is refused and names the first.
    for (const c of peer.consumers.values()) {
      if (c.producerId === producerId) throw new SfuError('DUPLICATE', `You already consume this producer (consumer ${c.id})`);
    }
    if (peer.pendingConsumes.has(producerId)) throw new SfuError('DUPLICATE', 'You are already consuming this producer');
    peer.pendingConsumes.add(producerId);
    try {
      return await this.consumeOnce(peer, t, producerId, owner, rtpCapabilities);
    } finally {
      peer.pendingConsumes.delete(producerId);
    }
  }

  private async consumeOnce(peer: Peer, t: types.WebRtcTransport, producerId: string, owner: Peer, rtpCapabilities: types.RtpCapabilities): Promise<ConsumerInfo> {
    const peerId = peer.id;
    if (owner.worker !== peer.worker) await this.pipe(producerId, owner.worker, peer.worker);
    const router = await this.router(peer.worker);
    let can: boolean;
    try {
      can = router.canConsume({ producerId, rtpCapabilities });
    } catch (err) {
      throw new SfuError('CANNOT_CONSUME', `Invalid rtpCapabilities: ${(err as Error).message}`);
    }
    if (!can) throw new SfuError('CANNOT_CONSUME', 'Your device cannot receive this codec');
    const consumer = await t.consume({ producerId, rtpCapabilities, paused: true, appData: { peerId } });
    const slot = this.pool.slots[peer.worker]!;
    slot.consumers++;
    peer.consumers.set(consumer.id, consumer);
    consumer.observer.once('close', () => {
      slot.consumers--;
      peer.consumers.delete(consumer.id);
    });
    return { id: consumer.id, producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters, type: consumer.type, producerPaused: consumer.producerPaused };
  }

  async resumeConsumer(peerId: string, consumerId: string): Promise<void> {
    const c = this.peer(peerId).consumers.get(consumerId);
    if (!c) throw new SfuError('NOT_FOUND', 'No such consumer');
    await c.resume();
  }

  async setPreferredLayers(peerId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const c = this.peer(peerId).consumers.get(consumerId);
    if (!c) throw new SfuError('NOT_FOUND', 'No such consumer');
    await c.setPreferredLayers({ spatialLayer, ...(temporalLayer !== undefined ? { temporalLayer } : {}) });
  }

  /** Makes a producer of one worker's router consumable on another's (same id). */
  private pipe(producerId: string, from: number, to: number): Promise<void> {
    const key = `${producerId}>${to}`;
    let p = this.piped.get(key);
    if (!p) {
      p = (async () => {
        const [src, dst] = await Promise.all([this.router(from), this.router(to)]);
        await src.pipeToRouter({ producerId, router: dst });
      })();
      p.catch(() => this.piped.delete(key));
      this.piped.set(key, p);
    }
    return p;
  }

  private producerInfos(except: string): ProducerInfo[] {
    const out: ProducerInfo[] = [];
    for (const peer of this.peers.values()) {
      if (peer.id === except) continue;
      for (const { producer, source } of peer.producers.values()) out.push(this.producerInfo(peer, producer, source));
    }
    return out;
  }

  private producerInfo(peer: Peer, producer: types.Producer, source: MediaSource): ProducerInfo {
    return { callId: this.callId, producerId: producer.id, peerId: peer.id, address: peer.address, kind: producer.kind, source, paused: producer.paused };
  }

  /** Tells everyone to rejoin (their worker died) and closes. */
  abandon(reason: string): void {
    if (this.closed) return;
    this.emit(this.recipients(), { type: 'rejoin', callId: this.callId, reason });
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.routers.values()) r.close();
    this.routers.clear();
    this.peers.clear();
    this.onClose(this);
  }
}

function leastLoaded(slots: WorkerSlot[]): WorkerSlot | undefined {
  return slots.reduce<WorkerSlot | undefined>((best, s) => (!best || s.consumers + s.producers < best.consumers + best.producers ? s : best), undefined);
}
