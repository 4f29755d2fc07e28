import type { MediaEventFrame, SfuMethod, SfuParams, SfuResult } from '../protocol/sfu.ts';
import type { Logger } from '../infra/logger.ts';
import { SfuError } from './errors.ts';
import { Room, type RoomEmit, type RoomLimits } from './room.ts';
import type { WorkerPool } from './worker-pool.ts';

type Handler<M extends SfuMethod> = (p: SfuParams<M>) => Promise<SfuResult<M>>;

/** Where media events go: `origin` is the signaling node serving the recipients. */
export type MediaEventSink = (origin: string, frame: MediaEventFrame) => void;

/** Executes media commands for the calls placed on this node. */
export class SfuService {
  readonly rooms = new Map<string, Room>();
  private readonly creating = new Map<string, Promise<Room>>();
  draining = false;
  private sink: MediaEventSink = () => undefined;

  /** Rooms report to their participants' signaling nodes: one frame per node, not per participant. */
  private readonly emit: RoomEmit = (to, event) => {
    const byOrigin = new Map<string, string[]>();
    for (const r of to) {
      const list = byOrigin.get(r.origin);
      if (list) list.push(r.address);
      else byOrigin.set(r.origin, [r.address]);
    }
    for (const [origin, addresses] of byOrigin) this.sink(origin, { to: addresses, event });
  };

  private readonly limits: RoomLimits;

  /** Limits not given are unbounded (benchmarks); nodes pass every one from the configuration. */
  constructor(
    private readonly pool: WorkerPool,
    maxConsumersPerWorker: number,
    private readonly log: Logger,
    limits: Partial<Omit<RoomLimits, 'maxConsumersPerWorker'>> = {},
  ) {
    this.limits = {
      maxConsumersPerWorker,
      maxParticipants: limits.maxParticipants ?? Infinity,
      maxDevicesPerParticipant: limits.maxDevicesPerParticipant ?? Infinity,
      maxTransportsPerPeer: limits.maxTransportsPerPeer ?? Infinity,
    };
    pool.on('died', (index) => {
      for (const room of [...this.rooms.values()]) if (room.usesWorker(index)) room.abandon('media worker restarted');
    });
  }

  /** One sink: the command channel (Redis) or the in-process client (embedded). */
  onEvent(sink: MediaEventSink): void {
    this.sink = sink;
  }

  private room(callId: string): Room {
    const r = this.rooms.get(callId);
    if (!r) throw new SfuError('CALL_NOT_FOUND', 'This call has no media session here; rejoin');
    return r;
  }

  private async roomFor(callId: string, worker: number): Promise<Room> {
    const existing = this.rooms.get(callId);
    if (existing && !existing.closed) return existing;
    if (this.draining) throw new SfuError('DRAINING', 'This media node is draining');
    let p = this.creating.get(callId);
    if (!p) {
      p = Room.create(callId, worker, this.pool, this.limits, this.emit, this.log, (r) => {
        if (this.rooms.get(r.callId) === r) this.rooms.delete(r.callId);
      });
      this.creating.set(callId, p);
      p.then(
        (r) => (this.rooms.set(callId, r), this.creating.delete(callId)),
        () => this.creating.delete(callId),
      );
    }
    return p;
  }

  private readonly handlers: { [M in SfuMethod]: Handler<M> } = {
    join: async (p) => (await this.roomFor(p.callId, p.worker)).join(p.peerId, p.address, p.origin),
    leave: async (p) => ({ remaining: this.rooms.get(p.callId)?.leave(p.peerId) ?? 0 }),
    createTransport: (p) => this.room(p.callId).createTransport(p.peerId, p.direction),
    connectTransport: async (p) => (await this.room(p.callId).connectTransport(p.peerId, p.transportId, p.dtlsParameters), {}),
    restartIce: async (p) => ({ iceParameters: await this.room(p.callId).restartIce(p.peerId, p.transportId) }),
    produce: async (p) => ({ producerId: await this.room(p.callId).produce(p.peerId, p.transportId, p.kind, p.rtpParameters, p.source, p.paused) }),
    pauseProducer: async (p) => (await this.room(p.callId).pauseProducer(p.peerId, p.producerId, p.paused), {}),
    closeProducer: async (p) => (this.room(p.callId).closeProducer(p.peerId, p.producerId), {}),
    consume: (p) => this.room(p.callId).consume(p.peerId, p.transportId, p.producerId, p.rtpCapabilities),
    resumeConsumer: async (p) => (await this.room(p.callId).resumeConsumer(p.peerId, p.consumerId), {}),
    setPreferredLayers: async (p) => (await this.room(p.callId).setPreferredLayers(p.peerId, p.consumerId, p.spatialLayer, p.temporalLayer), {}),
    closeCall: async (p) => (this.rooms.get(p.callId)?.close(), {}),
    callStats: async (p) => {
      const r = this.room(p.callId);
      return { workers: r.workers, ...r.counts() };
    },
  };

  handle<M extends SfuMethod>(method: M, params: SfuParams<M>): Promise<SfuResult<M>> {
    const h = this.handlers[method] as Handler<M> | undefined;
    if (!h) return Promise.reject(new SfuError('BAD_REQUEST', `unknown method ${String(method)}`));
    // Some handlers throw before their first await; callers always get a rejected promise.
    try {
      return h(params);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Totals for the registry heartbeat. */
  load() {
    return this.pool.slots.map((s) => ({ index: s.index, alive: s.alive, consumers: s.consumers, producers: s.producers, rooms: s.rooms, cpu: s.cpu }));
  }

  close(): void {
    for (const r of [...this.rooms.values()]) r.close();
  }
}
