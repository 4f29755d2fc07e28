/**
 * Receiving: one consumer per remote producer. Producers announced at any time are remembered
 * and consumed one after another on the current recv transport; work started for an older
 * join (a different generation) is dropped instead of mixing into the new transports.
 */
import type { Device, types } from 'mediasoup-client';
import type { ProducerEvent } from '../../../protocol/index.ts';
import { BlockRtcClientError } from '../errors.ts';
import { inboundStat } from './stats.ts';
import type { CallRequest } from './transports.ts';
import type { InboundStat, RemoteTrack } from './types.ts';

export interface ReceiverContext {
  callId: string;
  request: CallRequest;
  generation(): number;
  /** This tab's peer id: its own producers are never consumed. */
  peerId(): string | null;
  device(): Device | null;
  recvTransport(): types.Transport | null;
  emit(event: 'track-added' | 'track-removed' | 'track-paused', remote: RemoteTrack): void;
  onError(err: unknown): void;
}

interface Consumed {
  consumer: types.Consumer;
  remote: RemoteTrack;
}

export class Receiver {
  private readonly consumed = new Map<string, Consumed>();
  private readonly known = new Map<string, ProducerEvent>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: ReceiverContext) {}

  get tracks(): RemoteTrack[] {
    return [...this.consumed.values()].map((c) => c.remote);
  }

  /** Producers of an earlier media session are gone; events from now on belong to the next one. */
  forgetProducers(): void {
    this.known.clear();
  }

  /** A producer listed in the join answer: consumed by consumeAll. */
  remember(p: ProducerEvent): void {
    this.known.set(p.producerId, p);
  }

  /** A producer announced by an event: consumed now if the transports are up, else by consumeAll. */
  announce(p: ProducerEvent): void {
    this.known.set(p.producerId, p);
    if (this.ctx.recvTransport()) this.queue(p, this.ctx.generation());
  }

  /** Consumes every known producer (including ones announced during the join); resolves when done. */
  consumeAll(gen: number): Promise<void> {
    for (const p of this.known.values()) this.queue(p, gen);
    return this.chain;
  }

  producerClosed(producerId: string): void {
    this.known.delete(producerId);
    this.drop(producerId);
  }

  producerState(producerId: string, paused: boolean): void {
    const p = this.known.get(producerId);
    if (p) p.paused = paused;
    const c = this.consumed.get(producerId);
    if (c) {
      c.remote.paused = paused;
      this.ctx.emit('track-paused', c.remote);
    }
  }

  peerLeft(peerId: string): void {
    for (const [producerId, p] of this.known) if (p.peerId === peerId) this.producerClosed(producerId);
  }

  /** Closes every consumer (the transports are about to close). */
  teardown(): void {
    for (const producerId of [...this.consumed.keys()]) this.drop(producerId);
    this.chain = Promise.resolve();
  }

  async setPreferredLayers(producerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const c = this.consumed.get(producerId);
    if (!c) throw new BlockRtcClientError('NOT_FOUND', 'Not receiving that track');
    if (!c.remote.simulcast) return;
    await this.ctx.request('call.setPreferredLayers', { callId: this.ctx.callId, consumerId: c.consumer.id, spatialLayer, ...(temporalLayer !== undefined ? { temporalLayer } : {}) });
  }

  async inboundStats(): Promise<InboundStat[]> {
    const out: InboundStat[] = [];
    for (const { consumer, remote } of this.consumed.values()) {
      const report = await consumer.getStats().catch(() => null);
      out.push(inboundStat(remote, report));
    }
    return out;
  }

  private queue(p: ProducerEvent, gen: number): void {
    if (p.peerId === this.ctx.peerId()) return;
    this.chain = this.chain.then(() => this.consume(p, gen)).catch((err: unknown) => this.ctx.onError(err));
  }

  private async consume(p: ProducerEvent, gen: number): Promise<void> {
    const ctx = this.ctx;
    if (gen !== ctx.generation() || this.consumed.has(p.producerId) || !this.known.has(p.producerId)) return;
    const t = ctx.recvTransport();
    const device = ctx.device();
    if (!t || !device || t.closed) return;
    const info = await ctx.request('call.consume', { callId: ctx.callId, transportId: t.id, producerId: p.producerId, rtpCapabilities: device.rtpCapabilities });
    if (gen !== ctx.generation() || t.closed) return;
    const consumer = await t.consume({ id: info.id, producerId: info.producerId, kind: info.kind, rtpParameters: info.rtpParameters });
    if (gen !== ctx.generation()) {
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
    ctx.emit('track-added', remote);
    await ctx.request('call.resumeConsumer', { callId: ctx.callId, consumerId: consumer.id });
    // A producer that closed while we were setting up.
    if (!this.known.has(p.producerId)) this.drop(p.producerId);
  }

  private drop(producerId: string): void {
    const c = this.consumed.get(producerId);
    if (!c) return;
    this.consumed.delete(producerId);
    c.consumer.close();
    this.ctx.emit('track-removed', c.remote);
  }
}
